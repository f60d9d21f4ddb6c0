//! A transaction payload: canonical decoding, trailers, trust metadata, signatures, keys trailer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ate_runtime::fuzzing::transaction(data));
