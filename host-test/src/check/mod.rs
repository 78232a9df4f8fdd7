//! Judging what nodes believed: histories and the safety invariants every run is checked
//! against ([`history`]), timelines drawn as SVG ([`timeline`]), and the deterministic
//! simulator that runs the real election core against an in-memory store ([`sim`]), and the
//! exhaustive model checker of the same core in small worlds ([`model`]).

pub mod history;
pub mod model;
pub mod sim;
pub mod timeline;
