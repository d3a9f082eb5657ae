#!/usr/bin/env bash
# Benchmark medallion against the same work in DuckDB (docs/performance.md).
# Usage: scripts/bench.sh [SCALE ...]        default: 1
# Env:   BENCH_DIR (kept between runs to reuse generated data), BENCH_ROUNDS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
bin="${CARGO_TARGET_DIR:-target}/release/medallion"
work="${BENCH_DIR:-$(mktemp -d)}"
mkdir -p "$work"
if [ ! -x "$work/venv/bin/python" ]; then
    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install --quiet --disable-pip-version-check duckdb
fi
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr); DuckDB $("$work/venv/bin/python" -c 'import duckdb; print(duckdb.__version__)')"
exec "$work/venv/bin/python" scripts/bench.py --binary "$bin" --work "$work" --rounds "${BENCH_ROUNDS:-2}" "${@:-1}"
