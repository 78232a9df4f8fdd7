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
    /// A vacancy carries its writer's own lease only (not the longest it saw or was told of),
    /// and nobody raises a vacancy's lease: a node with a short lease takes over while a
    /// deleted object's leader with a longer one still acts.
    VacancyOwnLease,
    /// Nobody raises a vacancy's term to the highest they saw: after a deletion, a fresh
    /// node's term comes from the store's clock alone, and goes back when that clock did.
    VacancyKeepsItsTerm,
    /// A claim that finds no slot record creates it, never asking whether the job ran
    /// before (its marker): a slot record lost after a run lets a straggler run it again.
    SlotTrustsAMissingRecord,
    /// A key listed twice in one quorum check (overlapping pages) counts as two members.
    ListedTwiceCounts,
    /// A member's heartbeat counts as fresh however far ahead of the listing's `Date` its
    /// `Last-Modified` is (after a store clock stepped back, a dead member stays fresh for as
    /// long as the step).
    TrustMemberClock,
    /// A caller retries a slot claim that erred with a new random nonce (plain `claim-slot`,
    /// no claim id): it loses to its own earlier write, and the slot runs nowhere. Read by
    /// the drivers of slot claims (the simulator, the model checker), as a caller's habit.
    RetryWithoutClaimId,
    /// Every probe of a node id uses the same scratch object: probes that overlap (two
    /// processes with one id, stateless invocations) break each other's and refuse an
    /// honest store.
    SharedProbeScratch,
}

impl Mutation {
    /// Every mutation, in the order the mutation tests run them.
    pub const ALL: [Mutation; 21] = [
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
        Mutation::VacancyOwnLease,
        Mutation::VacancyKeepsItsTerm,
        Mutation::SlotTrustsAMissingRecord,
        Mutation::ListedTwiceCounts,
        Mutation::TrustMemberClock,
        Mutation::RetryWithoutClaimId,
        Mutation::SharedProbeScratch,
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
            Mutation::VacancyOwnLease => "vacancy-own-lease",
            Mutation::VacancyKeepsItsTerm => "vacancy-keeps-its-term",
            Mutation::SlotTrustsAMissingRecord => "slot-trusts-a-missing-record",
            Mutation::ListedTwiceCounts => "listed-twice-counts",
            Mutation::TrustMemberClock => "trust-member-clock",
            Mutation::RetryWithoutClaimId => "retry-without-claim-id",
            Mutation::SharedProbeScratch => "shared-probe-scratch",
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
