//! Deliberate protocol bugs for the simulator, the model checker and the mutant components:
//! each one must be caught by the invariants (see `host-test sim --mutation`, `make mutants`).
//! Nothing here is ever switched on in a release: the setters exist only with the
//! `mutations` feature.

/// Deliberate protocol bugs, one at a time, to show that the simulator's and the model
/// checker's invariants catch each. They can only be switched on with the `mutations`
/// feature (`core::Elector::set_mutation`, `slot::SlotClaim::set_mutation`). Most are an old behaviour of this very code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mutation {
    /// Renew with an unconditional PUT.
    UnconditionalRenewal,
    /// Count the whole lease as valid and wait no grace: no allowance for clock drift.
    NoDriftMargin,
    /// Judge expiry by the record's `Last-Modified` against the local wall clock (gonsensus).
    TakeoverByRecordTimestamp,
    /// Take `409 Conflict` as a lost race instead of retrying.
    ConflictAsLost,
    /// Keep leading below quorum (never release for a lost quorum).
    IgnoreQuorum,
    /// Treat every record naming this node id as this elector's own: resume it, and adopt
    /// it after a 412 (two processes sharing an id both lead).
    TrustNodeId,
    /// Create a held lease at once where the object is missing, with the next term after
    /// the highest seen (a deleted lease: overlapping leaders, terms back to 1).
    CreateLeaseOnMissing,
    /// Release at once when the quorum is lost, cutting the promised window short.
    ReleaseAtQuorumLoss,
    /// A failed quorum check counts for nothing (a leader renews on with no quorum checked).
    IgnoreFailedQuorumChecks,
    /// Stateless takeover without the store-clock skew margin.
    NoStoreClockSkewMargin,
    /// Publish every member in the lease record, unbounded.
    UnboundedMembers,
    /// Time a confirmed write from its answer instead of its sending: the store may have
    /// applied it at any moment between, so a leader paused with its renewal in flight
    /// counts a lease that began long before as fresh.
    TimeFromAnswer,
    /// A slot record naming this node id counts as this claim's win, whatever its nonce
    /// (replicas that share an id all run the job). Read by `slot::SlotClaim`.
    SlotWonByNodeId,
}
