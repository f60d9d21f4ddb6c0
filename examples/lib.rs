//! Runnable examples of ATE: `cargo run --release --example hello-world`.
//!
//! The README's Rust snippets are complete programs, compiled and run as this crate's
//! doctests (`cargo test -p ate-examples --doc`), so they cannot rot either. They are kept apart
//! from the `ate` crate's own documentation examples because the doctests of one crate are
//! linked into one program, and two model types of one program may not share a stable type
//! name.

/// The README, whose Rust snippets run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct Readme;

#[path = "coin/mod.rs"]
pub mod coin;

#[path = "bank/mod.rs"]
pub mod bank;
