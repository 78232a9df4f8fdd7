//! s3-election: leader election over an S3-compatible bucket with conditional writes.
//!
//! Start with [`core`], the election state machine: no IO and no clock reads (time and store
//! answers are inputs, requests and events outputs). Modules import each other one way, from
//! the glue down to the vocabulary (`.ci/import-graph.py` checks there are no circles):
//!
//! | layer | modules | |
//! |---|---|---|
//! | glue | `guest` (wasm32 only) | the WIT exports: drives the machines with wasi:http and wasi:clocks |
//! | election | [`core`] | the elector, split by phase: `follow`, `lead`, `quorum` |
//! | parts | [`members`], [`probe`], [`slot`] | the quorum's members, the store probe, singleton-job slots: sans-IO machines of their own |
//! | formats | [`record`], [`s3`], [`memstore`] | the lease record, S3 requests and answers (signing, store quirks), an in-memory S3 for tests |
//! | vocabulary | [`protocol`], [`config`], [`error`], [`time`], [`mutation`] | requests and answers, settings, errors, the one time type, test-only bugs |

pub mod config;
pub mod core;
pub mod error;
pub mod members;
pub mod memstore;
pub mod mutation;
pub mod probe;
pub mod protocol;
pub mod record;
pub mod s3;
pub mod slot;
pub mod time;

#[cfg(target_arch = "wasm32")]
mod guest;

pub use crate::error::Error;
