//! s3-election: leader election over an S3-compatible bucket with conditional writes.
//!
//! - [`core`]: the election state machine. No IO, no clock reads: time and store answers are
//!   inputs, requests and events are outputs.
//! - [`protocol`]: the requests and store answers every sans-IO part shares.
//! - [`s3`]: builds and signs S3 requests, and turns HTTP answers into
//!   [`protocol::Outcome`]s, normalising store quirks in one place.
//! - `guest` (wasm32 only): the WIT exports, driving the core with wasi:http and wasi:clocks.
//! - [`members`]: the quorum of observers (heartbeats, listing, freshness).
//! - [`slot`]: singleton jobs on a schedule (one winner per slot).
//! - [`probe`]: checks that a store honours conditional writes (and how).
//! - [`memstore`]: an in-memory model of S3's conditional writes, for tests and the simulator.

pub mod config;
pub mod core;
pub mod error;
pub mod members;
pub mod memstore;
pub mod probe;
pub mod protocol;
pub mod record;
pub mod s3;
pub mod slot;
pub mod time;

#[cfg(target_arch = "wasm32")]
mod guest;

pub use crate::error::Error;
