//! End-to-end tests of proctree.
