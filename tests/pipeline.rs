//! End-to-end tests of the tools piped into each other.
