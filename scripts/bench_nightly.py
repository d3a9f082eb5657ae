"""Nightly-run benchmark (docs/performance.md, "Nightly runs").

Usage (normally through scripts/bench_nightly.sh, which builds first):
    bench_nightly.py --binary PATH --work DIR SCALE...

For each scale: `generate --daily` data (seed 42) once; the last day of every
daily source is held back. Then, from an empty output root: a full run as
of the day before the held-back day; that day added, a nightly run as of
it; a run with nothing new. Reports wall
time, peak RSS (from wait4) and the nightly run's share of the full run,
and the models the nightly run built.
"""

import argparse
import datetime
import json
import pathlib
import shutil
import sys

from bench import timed  # wall seconds and peak RSS of one process

DAILY = ["orders", "order_items", "events", "usage_logs", "bt_users_transactions"]


def hold_back(data, held):
    """Move the last day of every daily source to `held`."""
    held.mkdir(parents=True, exist_ok=True)
    for source in DAILY:
        days = sorted((data / source).iterdir())
        (held / source).mkdir(exist_ok=True)
        shutil.move(str(days[-1]), held / source / days[-1].name)


def bring_back(data, held):
    for source in DAILY:
        for f in (held / source).iterdir():
            shutil.move(str(f), data / source / f.name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--as-of", default="2026-10-31")
    ap.add_argument("scales", nargs="*", default=["1"])
    args = ap.parse_args()
    work = pathlib.Path(args.work)
    for scale in args.scales:
        data = work / f"daily-scale-{scale}"
        held = work / f"held-scale-{scale}"
        if not data.exists():
            wall, _ = timed([args.binary, "generate", "--daily", "--scale", scale, "--seed", "42", "--out", str(data)])
            print(f"scale {scale}: generated in {wall:.1f} s")
        if held.exists():
            bring_back(data, held)
        size = sum(p.stat().st_size for p in data.rglob("*") if p.is_file()) / 2**20
        files = sum(1 for p in data.rglob("*.csv"))
        print(f"scale {scale}: {size:,.0f} MiB in {files:,} CSV files")
        hold_back(data, held)
        out = work / f"out-nightly-{scale}"
        shutil.rmtree(out, ignore_errors=True)
        run = [args.binary, "run", "--quiet", "--input", str(data), "--output", str(out), "--as-of"]
        # As a nightly schedule runs: the full run the day before, as of the
        # day before the held-back one; the nightly run as of that day.
        day = datetime.date.fromisoformat(args.as_of)
        full, full_rss = timed(run + [str(day - datetime.timedelta(days=1))])
        bring_back(data, held)
        run.append(str(day))
        nightly, nightly_rss = timed(run)
        results = json.loads((out / "_runs/latest.json").read_text())
        built = [m for m in results["models"] if m.get("skipped") != "unchanged"]
        idle, idle_rss = timed(run)
        print(f"  full run           {full:8.2f} s  peak RSS {full_rss:6d} MiB")
        print(f"  one new day        {nightly:8.2f} s  peak RSS {nightly_rss:6d} MiB  ({nightly / full:.1%} of the full run)")
        print(f"  nothing new        {idle:8.2f} s  peak RSS {idle_rss:6d} MiB")
        slow = sorted(built, key=lambda m: -m["duration_seconds"])[:8]
        print(f"  the new day built {len(built)} of {len(results['models'])} models; slowest: "
              + ", ".join(f"{m['name']} {m['duration_seconds']:.1f} s" for m in slow))
    return 0


if __name__ == "__main__":
    sys.exit(main())
