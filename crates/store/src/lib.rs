//! # nnqft-store
//!
//! The on-disk contract of nnqft (docs/data.md): Parquet schemas, crash-safe
//! atomic writes, the `nnqft` footer metadata, and what resume needs to tell
//! finished work from missing or foreign work.

pub mod atomic;
pub mod inputs;
pub mod keys;
pub mod lock;
pub mod plan;
pub mod samples;
pub mod tables;

pub use samples::{FOOTER_KEY, PartMeta};
