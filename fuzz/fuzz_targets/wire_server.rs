//! A server's application message: shape check, decoding, and the batch limit.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ate_runtime::fuzzing::net_wire_server(data));
