//! A whole log file: recovery in both modes, every payload decoded and verified, the log replayed.
#![no_main]

use libfuzzer_sys::{fuzz_mutator, fuzz_target, fuzzer_mutate};

fuzz_target!(|data: &[u8]| ate_runtime::fuzzing::frames(data));

// Three mutants in four get their frame checksums rewritten, so that mutated payloads reach the
// decoders and the replay; the others exercise recovery from damaged frames.
fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    let size = fuzzer_mutate(data, size, max_size);
    if seed % 4 != 0 {
        ate_runtime::fuzzing::seal_frames(&mut data[..size]);
    }
    size
});
