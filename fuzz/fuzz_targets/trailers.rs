//! The trailers ending a payload: signatures, vouch and keys trailer decoded and verified.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ate_runtime::fuzzing::trailers(data));
