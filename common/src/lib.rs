//! What every tool of the workspace shares: the records and their writers, the line readers,
//! the port and target languages, the service data, and the error and exit-status rules.
//! Nothing tool-specific lives here.

mod clap_error;
pub mod csv_line;
pub mod entry;
pub mod error;
pub mod input;
pub mod output;
pub mod owners;
pub mod ports;
pub mod record;
pub mod services;
pub mod sockets;
pub mod target;
pub mod text;
pub mod timestamp;
pub mod users;

pub use error::{Error, Result, Status};
