//! Judging what nodes believed: histories and the safety invariants every run is checked
//! against ([`history`]), timelines drawn as SVG ([`timeline`]), and the deterministic
//! simulator that runs the real election core against an in-memory store ([`sim`]).

pub mod history;
pub mod sim;
pub mod timeline;
