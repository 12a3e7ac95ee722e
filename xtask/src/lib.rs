//! What xtask shares with the end-to-end tests: the impairment line that stands in for
//! `tc netem` in portscan's slow-link test and bench.

pub mod impair;
