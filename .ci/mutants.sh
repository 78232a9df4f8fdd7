#!/usr/bin/env bash
# Mutant components: each protocol bug the simulator knows, compiled into the real component
# (feature `mutations`, bug named by S3E_MUTATION at build time), run against the real store
# by the integration tests that guard the README's safety claims. Every mutant must make its
# tests FAIL; a mutant that passes means a claim has no test that would notice it is false.
#
#   .ci/mutants.sh [NAME...]     (default: all below; needs `cargo build -p host-test`)
set -euo pipefail
cd "$(dirname "$0")/.."

# mutation -> the test binary and test name filter that must fail with it
declare -A GUARD=(
  [trust-node-id]="safety two_processes_sharing_a_node_id_never_lead_together"
  [create-lease-on-missing]="safety a_lease_deleted_under_a_running_leader_is_waited_out"
  [release-at-quorum-loss]="quorum three_of_three_elect_lose_the_quorum_and_recover"
  [ignore-quorum]="quorum three_of_three_elect_lose_the_quorum_and_recover"
  [ignore-failed-quorum-checks]="safety failing_quorum_checks_end_leadership_after_the_grace"
  [no-store-clock-skew-margin]="safety a_skewed_store_clock_does_not_hasten_a_stateless_takeover"
  [unbounded-members]="safety a_large_membership_never_jams_the_lease_record"
  [slot-won-by-node-id]="safety slot_claims_by_replicas_sharing_a_node_id_win_once"
  [unconditional-renewal]="election terms_grow_across_leaders_and_hold_across_renewals"
  [conflict-as-lost]="faults error_statuses_are_retried_without_losing_the_lease"
  [vacancy-own-lease]="safety nodes_with_shorter_leases_wait_out_a_deleted_long_lease"
  [slot-trusts-a-missing-record]="cron a_lost_slot_record_is_refused_until_an_operator_acts"
)
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  names=(trust-node-id create-lease-on-missing release-at-quorum-loss ignore-quorum
         ignore-failed-quorum-checks no-store-clock-skew-margin unbounded-members
         slot-won-by-node-id unconditional-renewal conflict-as-lost vacancy-own-lease
         slot-trusts-a-missing-record)
fi

out=target/mutants
mkdir -p "$out"
# The tests themselves are built once, against the normal component's interface.
cargo test -p s3-election --tests --no-run --quiet
survived=()
printf '%-30s %-12s %s\n' mutation result "guarding test"
for m in "${names[@]}"; do
  read -r binary filter <<<"${GUARD[$m]:?unknown mutation $m}"
  S3E_MUTATION="$m" cargo rustc --quiet --release --target wasm32-unknown-unknown -p s3-election \
    --lib --crate-type cdylib --features mutations --target-dir "$out/build"
  target/tools/bin/wasm-tools component new \
    "$out/build/wasm32-unknown-unknown/release/s3_election.wasm" -o "$out/$m.wasm"
  started=$(date +%s)
  if S3_ELECTION_WASM="$PWD/$out/$m.wasm" cargo test --quiet -p s3-election --test "$binary" \
      "$filter" >"$out/$m.log" 2>&1; then
    result=SURVIVED
    survived+=("$m")
  else
    result="caught ($(( $(date +%s) - started ))s)"
  fi
  printf '%-30s %-12s %s\n' "$m" "$result" "$binary::$filter"
done
if [ ${#survived[@]} -gt 0 ]; then
  echo "mutants that no test caught: ${survived[*]} (logs in $out/)" >&2
  exit 1
fi
echo "every mutant was caught by its test on the real store"
