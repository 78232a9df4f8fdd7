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
    /// Write again at once after a write the store did not apply, and never switch the ETag
    /// form: on a store that refuses the form in use (Ceph RGW and quoted ETags) every tick
    /// sends its whole request budget and asks for the next tick at once.
    BusyRetry,
}

impl Mutation {
    /// Every mutation, in the order the mutation tests run them.
    pub const ALL: [Mutation; 14] = [
        Mutation::UnconditionalRenewal,
        Mutation::NoDriftMargin,
        Mutation::TakeoverByRecordTimestamp,
        Mutation::ConflictAsLost,
        Mutation::IgnoreQuorum,
        Mutation::TrustNodeId,
        Mutation::CreateLeaseOnMissing,
        Mutation::ReleaseAtQuorumLoss,
        Mutation::IgnoreFailedQuorumChecks,
        Mutation::NoStoreClockSkewMargin,
        Mutation::UnboundedMembers,
        Mutation::TimeFromAnswer,
        Mutation::SlotWonByNodeId,
        Mutation::BusyRetry,
    ];

    /// The name used on command lines (`--mutation`) and by `make mutants` (`S3E_MUTATION`).
    pub fn name(self) -> &'static str {
        match self {
            Mutation::UnconditionalRenewal => "unconditional-renewal",
            Mutation::NoDriftMargin => "no-drift-margin",
            Mutation::TakeoverByRecordTimestamp => "record-timestamp",
            Mutation::ConflictAsLost => "conflict-as-lost",
            Mutation::IgnoreQuorum => "ignore-quorum",
            Mutation::TrustNodeId => "trust-node-id",
            Mutation::CreateLeaseOnMissing => "create-lease-on-missing",
            Mutation::ReleaseAtQuorumLoss => "release-at-quorum-loss",
            Mutation::IgnoreFailedQuorumChecks => "ignore-failed-quorum-checks",
            Mutation::NoStoreClockSkewMargin => "no-store-clock-skew-margin",
            Mutation::UnboundedMembers => "unbounded-members",
            Mutation::TimeFromAnswer => "time-from-answer",
            Mutation::SlotWonByNodeId => "slot-won-by-node-id",
            Mutation::BusyRetry => "busy-retry",
        }
    }

    /// The mutation named `name` (see [`Mutation::name`]).
    pub fn parse(name: &str) -> Option<Mutation> {
        Mutation::ALL.into_iter().find(|m| m.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mutation_has_a_name_that_parses_back() {
        for m in Mutation::ALL {
            assert_eq!(Mutation::parse(m.name()), Some(m));
        }
        assert_eq!(Mutation::parse("no-such-bug"), None);
    }
}
