#!/usr/bin/env bash
# Nightly-run benchmark: a full run, then one new day, then nothing new
# (docs/performance.md, "Nightly runs").
# Usage: scripts/bench_nightly.sh [SCALE ...]    default: 1
# Env:   BENCH_DIR (kept between runs to reuse generated data).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
bin="${CARGO_TARGET_DIR:-target}/release/medallion"
work="${BENCH_DIR:-$(mktemp -d)}"
mkdir -p "$work"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr); commit $(git rev-parse --short HEAD)"
exec python3 scripts/bench_nightly.py --binary "$bin" --work "$work" "${@:-1}"
