#!/usr/bin/env bash
# Micro-benchmark of the Bayesian A/B functions (pipeline/udf/bayes.rs):
# chance_to_beat_control and expected_loss over ROWS rows of counts near two
# million users per arm, through `medallion query` on the sample's output.
#   scripts/bench_bayes.sh [ROWS]      (default 1000000)
# Needs a published output root: run `cargo run --release -- run` first.
set -euo pipefail
ROWS=${1:-1000000}
BIN=${CARGO_TARGET_DIR:-target}/release/medallion
OUT=${OUTPUT:-artifacts}
for fn in chance_to_beat_control expected_loss; do
  sql="select sum(${fn}(40000 + value % 997, 2000000, 40500 + value % 991, 2000000)) as total from range(${ROWS})"
  start=$(date +%s.%N)
  "$BIN" --quiet query --output "$OUT" --format csv "$sql" >/dev/null
  end=$(date +%s.%N)
  printf '%s: %d rows in %.2f s (%.1f µs per row)\n' "$fn" "$ROWS" \
    "$(echo "$end - $start" | bc)" "$(echo "($end - $start) * 1000000 / $ROWS" | bc -l)"
done
