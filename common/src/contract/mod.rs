//! The record contract: what every tool promises its users about its output and its end —
//! one record type per kind of fact, printed as text, NDJSON or CSV with the same field
//! names (docs/FORMAT.md), untrusted bytes escaped by one rule, lines read the same way by
//! every tool that reads them, and one error type whose kind decides the exit status.

pub mod baseline;
mod clap_error;
pub mod entry;
pub mod error;
pub mod input;
pub mod manual;
pub mod output;
pub mod record;
pub mod text;
pub mod timestamp;
pub mod watch;
