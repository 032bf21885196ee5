//! The command-line parser on arbitrary arguments (see `popek::fuzzing::cli`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| popek::fuzzing::cli(data));
