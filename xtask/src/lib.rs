//! What xtask shares with the end-to-end tests: the impairment line that stands in for
//! `tc netem` in portscan's slow-link test and bench, and the man pages and completions
//! that the tests check and the Debian package ships.

pub mod completion;
pub mod impair;
pub mod manual;
