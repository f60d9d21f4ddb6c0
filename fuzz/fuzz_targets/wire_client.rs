//! A client's application message: shape check (depth, claimed lengths), then decoding.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ate_runtime::fuzzing::net_wire_client(data));
