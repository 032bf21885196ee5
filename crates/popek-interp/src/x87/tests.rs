//! x87 tests.
