//! Readers of this host's state, shared by sockls and proctree: the sockets the kernel
//! reports (sock_diag over netlink, or /proc/net), the processes whose descriptors hold
//! them, and the names of users.

pub mod owners;
pub mod sockets;
pub mod users;
