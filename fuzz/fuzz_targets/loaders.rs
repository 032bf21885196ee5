//! The Multiboot loader on arbitrary kernel images (see `popek::fuzzing::loaders`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| popek::fuzzing::loaders(data));
