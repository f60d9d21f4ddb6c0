//! A handshake message of the network protocol: canonical decoding.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ate_runtime::fuzzing::net_handshake_message(data));
