#!/usr/bin/env bash
# What scale-out costs (docs/cluster.md): the same run with
# the local engine and on a scheduler plus two executors on this machine,
# both writing to a moto S3 server (executors cannot write to local disk),
# alternated, each timed by wall clock.
# Usage: scripts/bench_cluster.sh [SCALE]     default: the bundled sample
# Env:   BENCH_DIR (kept between runs to reuse generated data), BENCH_ROUNDS (3),
#        MOTO_SERVER (default: moto_server on PATH, else installed into BENCH_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
bin="${CARGO_TARGET_DIR:-target}/release/medallion"
work="${BENCH_DIR:-$(mktemp -d)}"
mkdir -p "$work"
rounds="${BENCH_ROUNDS:-3}"

moto="${MOTO_SERVER:-$(command -v moto_server || true)}"
if [ -z "$moto" ]; then
    [ -x "$work/venv/bin/moto_server" ] || {
        python3 -m venv "$work/venv"
        "$work/venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]'
    }
    moto="$work/venv/bin/moto_server"
fi

input=datasets
if [ -n "${1:-}" ]; then
    input="$work/scale-$1"
    [ -d "$input" ] || "$bin" generate --scale "$1" --seed 42 --out "$input" >/dev/null
fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "nothing listens on $1" >&2; exit 1; }

s3=$(port)
"$moto" -H 127.0.0.1 -p "$s3" >"$work/moto.log" 2>&1 & pids+=($!)
wait_port "$s3"
curl -fsS -X PUT "http://127.0.0.1:$s3/bench" >/dev/null
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="http://127.0.0.1:$s3" AWS_ALLOW_HTTP=true

sched=$(port)
"$bin" scheduler --bind-host 127.0.0.1 --external-host 127.0.0.1 --port "$sched" \
    2>"$work/scheduler.log" & pids+=($!)
wait_port "$sched"
for i in 1 2; do
    flight=$(port) grpc=$(port)
    mkdir -p "$work/executor-$i"
    "$bin" executor --scheduler "df://127.0.0.1:$sched" --bind-host 127.0.0.1 \
        --external-host 127.0.0.1 --port "$flight" --grpc-port "$grpc" \
        --work-dir "$work/executor-$i" 2>"$work/executor-$i.log" & pids+=($!)
    wait_port "$flight"
done
sleep 2 # executors register with their first heartbeat

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr); input $input; $rounds rounds"
timed() { # run args…: wall seconds of one run (a failed run stops the script)
    local start end
    start=$(date +%s.%N)
    "$bin" run --input "$input" --as-of 2026-10-31 --quiet "$@" >/dev/null 2>>"$work/runs.log"
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.2f}')"
}
local_times=() cluster_times=()
for r in $(seq 1 "$rounds"); do
    l=$(timed --output s3://bench/local)
    c=$(timed --output s3://bench/cluster --engine ballista --scheduler "df://127.0.0.1:$sched")
    echo "round $r: local $l s, cluster $c s"
    local_times+=("$l") cluster_times+=("$c")
done
python3 - "${local_times[*]}" "${cluster_times[*]}" <<'EOF'
import statistics, sys
local = [float(x) for x in sys.argv[1].split()]
cluster = [float(x) for x in sys.argv[2].split()]
l, c = statistics.median(local), statistics.median(cluster)
print(f"median: local engine {l:.2f} s, 2-executor cluster {c:.2f} s, cluster / local = {c / l:.2f}")
EOF
