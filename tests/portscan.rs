//! End-to-end tests of portscan.
