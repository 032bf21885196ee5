//! Random code under the interpreter and the translator in lockstep (see
//! `popek::fuzzing::engines`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| popek::fuzzing::engines(data));
