//! End-to-end tests of svcname.
