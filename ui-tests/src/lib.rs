//! Compile tests of the derive macros live in `tests/`.
