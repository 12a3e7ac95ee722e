//! End-to-end tests: they run the built binaries against real sockets, processes and pipes.
//! One integration crate, one module per tool (see the README's development section).

mod util;

mod baseline;
mod edges;
mod errors;
mod faults;
mod fixtures;
mod manuals;
mod many_machines;
mod pipeline;
mod portscan;
mod portscan_files;
mod proctree;
mod proctree_ps;
mod recipes;
mod sockls;
mod sockls_filter;
mod sockls_ss;
mod svcname;
mod watch;
