#!/usr/bin/env bash
# Installs the Spin CLI into target/tools/bin/spin and Spin's cron trigger plugin into an
# isolated Spin home under target/spin-home, for tests/spin.rs. Offline: both come from a
# folder of prebuilt tools ($S3E_SPIN_TOOLS, or ../shared/tools next to the repository or
# next to the local checkout it was cloned from), since `spin plugins install cron` needs the internet. Idempotent: a run
# that finds both installed (and matching their digests) changes nothing.
#
#   .ci/spin.sh           install (or check) both
#   .ci/spin.sh env       also print the XDG_* exports that make `spin` find the plugin
#
# Without that folder, a `spin` on PATH is used and the plugin comes from `spin plugins
# install cron` (which needs the internet): that is the path for users, who install Spin the
# usual way (https://spinframework.dev). S3E_SKIP_SPIN=1 skips this (and the Spin tests say
# SKIPPED).
set -euo pipefail
if [ "${S3E_SKIP_SPIN:-0}" = 1 ]; then
    echo "== spin.sh: SKIPPED (S3E_SKIP_SPIN=1): nothing installed, the Spin tests will say so" >&2
    exit 0
fi

repo="$(cd "$(dirname "$0")/.." && pwd)"
# The tools folder: $S3E_SPIN_TOOLS, else ../shared/tools next to this checkout, else next to
# the checkout it was cloned from (CI clones into a scratch folder).
tools="${S3E_SPIN_TOOLS:-$repo/../shared/tools}"
if [ -z "${S3E_SPIN_TOOLS:-}" ] && [ ! -d "$tools" ]; then
    origin="$(git -C "$repo" remote get-url origin 2>/dev/null || true)"
    if [ -n "$origin" ] && [ -d "$origin/../shared/tools" ]; then
        tools="$(cd "$origin/../shared/tools" && pwd)"
    fi
fi
spin_xz="spin-4.1.0-pre0-x86_64-linux.xz"
cron_tgz="trigger-cron-0.3.0-linux-amd64.tar.gz"
cron_version="0.3.0"
bin="$repo/target/tools/bin/spin"
home="$repo/target/spin-home"

export XDG_DATA_HOME="$home/data" XDG_CACHE_HOME="$home/cache" XDG_CONFIG_HOME="$home/config"

say() { echo "== spin.sh: $*" >&2; }
fail() { echo "spin.sh: error: $*" >&2; exit 1; }
elapsed() { local ms=$(($(date +%s%3N) - $1)); printf '%d.%03d s' $((ms / 1000)) $((ms % 1000)); }

# The digest SHA256SUMS gives for `name` (empty when the file or the line is missing).
digest() { [ -f "$tools/SHA256SUMS" ] && awk -v n="$1" '{f=$2; for (i=3;i<=NF;i++) f=f" "$i} f==n {print $1}' "$tools/SHA256SUMS" || true; }

# --- the Spin CLI --------------------------------------------------------------------------
want_bin="$(digest "spin (decompressed)")"
if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1 &&
    { [ -z "$want_bin" ] || [ "$(sha256sum "$bin" | cut -d' ' -f1)" = "$want_bin" ]; }; then
    say "Spin already installed: $bin ($("$bin" --version))"
elif [ ! -f "$tools/$spin_xz" ] && command -v spin >/dev/null; then
    mkdir -p "$(dirname "$bin")"
    ln -sf "$(command -v spin)" "$bin"
    say "using $(command -v spin) ($("$bin" --version))"
else
    [ -f "$tools/$spin_xz" ] || fail "$tools/$spin_xz not found: install Spin (https://spinframework.dev) \
so that \`spin\` is on PATH, or set S3E_SPIN_TOOLS to a folder that holds $spin_xz and $cron_tgz \
(and SHA256SUMS); S3E_SKIP_SPIN=1 skips the Spin tests"
    if want="$(digest "$spin_xz")" && [ -n "$want" ]; then
        [ "$(sha256sum "$tools/$spin_xz" | cut -d' ' -f1)" = "$want" ] ||
            fail "$tools/$spin_xz does not match its SHA256SUMS digest"
    fi
    say "installing Spin from $tools/$spin_xz into $bin"
    start=$(date +%s%3N)
    mkdir -p "$(dirname "$bin")"
    xz -dc "$tools/$spin_xz" > "$bin.tmp"
    chmod +x "$bin.tmp"
    mv -f "$bin.tmp" "$bin"
    say "installed $("$bin" --version) in $(elapsed "$start")"
fi

# --- the cron trigger plugin, in target/spin-home ------------------------------------------
installed="$("$bin" plugins list --installed --format json 2>/dev/null || echo '[]')"
if echo "$installed" | grep -q '"name": *"trigger-cron"' &&
    echo "$installed" | grep -q "\"version\": *\"$cron_version\""; then
    say "cron trigger plugin $cron_version already installed under $XDG_DATA_HOME"
elif [ ! -f "$tools/$cron_tgz" ]; then
    say "installing the cron trigger plugin with \`spin plugins install cron\` (needs the internet)"
    "$bin" plugins install cron --yes >&2 ||
        fail "spin plugins install cron failed; or set S3E_SPIN_TOOLS to a folder that holds $cron_tgz"
else
    sha="$(sha256sum "$tools/$cron_tgz" | cut -d' ' -f1)"
    want="$(digest "$cron_tgz")"
    [ -z "$want" ] || [ "$sha" = "$want" ] || fail "$tools/$cron_tgz does not match its SHA256SUMS digest"
    tgz="$(cd "$tools" && pwd)/$cron_tgz"
    mkdir -p "$home"
    cat > "$home/trigger-cron.json" <<EOF
{"name":"trigger-cron","description":"A Spin trigger for Cron events","version":"$cron_version",
 "spinCompatibility":">=3.0","license":"Apache-2.0",
 "packages":[{"os":"linux","arch":"amd64","url":"file://$tgz","sha256":"$sha"}]}
EOF
    say "installing the cron trigger plugin $cron_version from $tgz into $XDG_DATA_HOME"
    start=$(date +%s%3N)
    "$bin" plugins install --file "$home/trigger-cron.json" --yes >&2
    say "installed the cron trigger plugin in $(elapsed "$start")"
fi

if [ "${1:-}" = env ]; then
    echo "export XDG_DATA_HOME='$XDG_DATA_HOME' XDG_CACHE_HOME='$XDG_CACHE_HOME' XDG_CONFIG_HOME='$XDG_CONFIG_HOME'"
fi
