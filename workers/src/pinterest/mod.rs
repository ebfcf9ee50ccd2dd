//! The emulator's records: a deterministic generator of Pinterest posts, each a pin, a geo and
//! a user record joined on `ind`, with dirty values and duplicates at configurable rates
//! (`docs/emulator.md`).
//!
//! - [`generator`]: [`Generator`], the stream of [`Post`]s of one [`GeneratorConfig`].
//! - [`files`]: [`write_dir`], the posts as JSON-lines files, one directory per table.
//! - [`send`]: [`send::send`], the posts through the gateway's produce API.

pub mod files;
pub mod generator;
pub mod send;
mod vocabulary;

pub use files::{RECORDS_PER_FILE, WriteError, Written, write_dir};
pub use generator::{ConfigError, Generator, GeneratorConfig, Post, Table, format_follower_count};
