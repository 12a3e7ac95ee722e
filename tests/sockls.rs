//! End-to-end tests of sockls.
