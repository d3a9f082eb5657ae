"""Benchmark: medallion against the same work in DuckDB (the same work, see
scripts/bench_duckdb.py), on data from `medallion generate --scale F`.

Usage (normally through scripts/bench.sh, which builds and sets up DuckDB):
    bench.py --binary PATH --work DIR [--rounds N] [--as-of D] SCALE...

For each scale: generate the data once, then N rounds alternating which tool
goes first; each run starts from an empty output folder. Reports per-tool
wall time (median of rounds), input rows per second, peak RSS (the process's
maximum resident set, from wait4), the ratio medallion / DuckDB, and
medallion's slowest models from run_results.json.
"""

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def timed(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS in MiB of one process."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.stderr.write(proc.stderr.read().decode(errors="replace")[-3000:])
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return wall, usage.ru_maxrss // 1024


def input_rows(data: pathlib.Path) -> int:
    rows = 0
    for csv in data.rglob("*.csv"):
        with open(csv, "rb") as f:
            rows += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b"")) - 1
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--as-of", default="2026-10-31")
    ap.add_argument("--memory-limit-mb", default=None)
    ap.add_argument("scales", nargs="*", default=["1"])
    args = ap.parse_args()
    work = pathlib.Path(args.work)
    python = sys.executable
    summary = []
    for scale in args.scales:
        data = work / f"data-scale-{scale}"
        if not data.exists():
            wall, _ = timed([args.binary, "generate", "--scale", scale, "--seed", "42", "--out", str(data)])
            print(f"scale {scale}: generated in {wall:.1f} s")
        rows = input_rows(data)
        size = sum(p.stat().st_size for p in data.rglob("*") if p.is_file()) / 2**20
        print(f"scale {scale}: {rows:,} input rows, {size:,.0f} MiB of CSV/JSON")
        med_cmd = [args.binary, "run", "--quiet", "--input", str(data), "--output", str(work / "out-medallion"), "--as-of", args.as_of]
        if args.memory_limit_mb:
            med_cmd += ["--memory-limit-mb", args.memory_limit_mb]
        duck_cmd = [python, str(ROOT / "scripts/bench_duckdb.py"), str(data), str(work / "out-duckdb"), args.as_of]
        results = {"medallion": [], "duckdb": []}
        for r in range(args.rounds):
            order = [("medallion", med_cmd), ("duckdb", duck_cmd)]
            if r % 2:
                order.reverse()
            for name, cmd in order:
                shutil.rmtree(work / f"out-{name}", ignore_errors=True)
                wall, rss = timed(cmd)
                results[name].append((wall, rss))
                print(f"  round {r + 1} {name:<9} {wall:8.2f} s  peak RSS {rss:6d} MiB")
        med = statistics.median(w for w, _ in results["medallion"])
        duck = statistics.median(w for w, _ in results["duckdb"])
        row = {
            "scale": scale,
            "input_rows": rows,
            "medallion_s": round(med, 2),
            "duckdb_s": round(duck, 2),
            "ratio": round(med / duck, 3),
            "medallion_rows_per_s": round(rows / med),
            "duckdb_rows_per_s": round(rows / duck),
            "medallion_peak_rss_mib": max(m for _, m in results["medallion"]),
            "duckdb_peak_rss_mib": max(m for _, m in results["duckdb"]),
        }
        summary.append(row)
        run = json.loads((work / "out-medallion/_runs/latest.json").read_text())
        slowest = sorted(run["models"], key=lambda m: -m["duration_seconds"])[:12]
        print("  medallion's slowest models (last round):")
        for m in slowest:
            print(f"    {m['name']:<34} {m['duration_seconds']:7.2f} s  {m['rows_written']:>11,} rows")
        print(f"  => medallion {med:.2f} s, DuckDB {duck:.2f} s, ratio {med / duck:.2f}")
    print("\n| scale | input rows | medallion s | DuckDB s | medallion / DuckDB | medallion rows/s | medallion peak RSS MiB | DuckDB peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in summary:
        print(f"| {r['scale']} | {r['input_rows']:,} | {r['medallion_s']} | {r['duckdb_s']} | {r['ratio']} | {r['medallion_rows_per_s']:,} | {r['medallion_peak_rss_mib']} | {r['duckdb_peak_rss_mib']} |")
    (work / "bench-results.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
