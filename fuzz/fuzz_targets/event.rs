//! One event: canonical decoding and its trust metadata.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ate_runtime::fuzzing::event(data));
