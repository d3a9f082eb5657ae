"""Nightly-run benchmark (docs/performance.md, "Nightly runs").

Usage (normally through scripts/bench_nightly.sh, which builds first):
    bench_nightly.py --binary PATH --work DIR SCALE...

For each scale: `generate --daily` data (seed 42) once; the last two days of
every daily source are held back. Then, from an empty output root: a full
run as of the day before the held-back days; the first day added, a nightly
run as of it (ordered by the full run's durations); the second day added,
another (ordered by the first nightly's, as every later night is); a run
with nothing new. Reports wall time, peak RSS (from wait4) and each nightly
run's share of the full run, and the models the last nightly run built.
"""

import argparse
import datetime
import json
import pathlib
import shutil
import sys

from bench import timed  # wall seconds and peak RSS of one process

DAILY = ["orders", "order_items", "events", "usage_logs", "bt_users_transactions"]


def hold_back(data, held, days):
    """Move the last `days` days of every daily source under `held`, one folder per day."""
    for source in DAILY:
        files = sorted((data / source).iterdir())[-days:]
        for i, f in enumerate(files):
            (held / str(i) / source).mkdir(parents=True, exist_ok=True)
            shutil.move(str(f), held / str(i) / source / f.name)


def bring_back(data, held, day):
    """Return the `day`-th held-back day (0 is the earlier) to the data."""
    for source in DAILY:
        folder = held / str(day) / source
        if folder.is_dir():
            for f in folder.iterdir():
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
            for day in range(2):
                bring_back(data, held, day)
            shutil.rmtree(held)
        size = sum(p.stat().st_size for p in data.rglob("*") if p.is_file()) / 2**20
        files = sum(1 for p in data.rglob("*.csv"))
        print(f"scale {scale}: {size:,.0f} MiB in {files:,} CSV files")
        hold_back(data, held, 2)
        out = work / f"out-nightly-{scale}"
        shutil.rmtree(out, ignore_errors=True)
        run = [args.binary, "run", "--quiet", "--input", str(data), "--output", str(out), "--as-of"]
        # As a nightly schedule runs: the full run as of the day before the
        # held-back days, then each of those days added, run as of that day.
        last = datetime.date.fromisoformat(args.as_of)
        full, full_rss = timed(run + [str(last - datetime.timedelta(days=2))])
        print(f"  full run           {full:8.2f} s  peak RSS {full_rss:6d} MiB")
        for day, label in [(0, "first new day"), (1, "next new day")]:
            bring_back(data, held, day)
            nightly, nightly_rss = timed(run + [str(last - datetime.timedelta(days=1 - day))])
            print(f"  {label:<18} {nightly:8.2f} s  peak RSS {nightly_rss:6d} MiB  ({nightly / full:.1%} of the full run)")
        results = json.loads((out / "_runs/latest.json").read_text())
        built = [m for m in results["models"] if m.get("skipped") != "unchanged"]
        idle, idle_rss = timed(run + [str(last)])
        print(f"  nothing new        {idle:8.2f} s  peak RSS {idle_rss:6d} MiB")
        slow = sorted(built, key=lambda m: -m["duration_seconds"])[:8]
        print(f"  the next new day built {len(built)} of {len(results['models'])} models; slowest: "
              + ", ".join(f"{m['name']} {m['duration_seconds']:.1f} s" for m in slow))
        shutil.rmtree(held)
    return 0


if __name__ == "__main__":
    sys.exit(main())
