//! The wasmtime host: it loads the component ([`runtime`]), runs many nodes as one cluster
//! and records what each believed ([`cluster`]), gives each node its own clock
//! ([`clocks`]), injects faults into every outgoing request ([`faults`]), keeps per-node
//! request and tick statistics ([`stats`]), and runs the component under Node.js ([`jco`]).

pub mod clocks;
pub mod cluster;
pub mod faults;
pub mod jco;
pub mod runtime;
pub mod stats;
