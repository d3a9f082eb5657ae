"""Read every gold table of a Delta output root (table_format = "delta")
with the Python `deltalake` package and with Polars (`read_delta`).

Usage:
    check_delta.py <delta-root> <earlier-parquet-root>
    check_delta.py s3://bucket/prefix <earlier-parquet-root>   (AWS_* as for medallion)

<delta-root> (a folder or an S3 prefix) has had two runs with different as-of dates; <earlier-parquet-root>
holds a Parquet run with the first as-of date. For every gold table it checks:
- deltalake and Polars read the version `_SUCCESS` names, with its row count;
- the column types BI tools need (scripts/check_readers.py, type_problems);
- time travel: the version before the current one (or the current one, if
  the second run did not change the table) holds exactly the rows of the
  earlier Parquet run.
Fails (exit 1) on any difference.
"""

import json
import pathlib
import sys

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable

from check_readers import type_problems
from polars.testing import assert_frame_equal

# The tolerance keywords were renamed in Polars 1.x.
_params = assert_frame_equal.__code__.co_varnames
TOLERANCE = {"rel_tol": 1e-9} if "rel_tol" in _params else {"rtol": 1e-9}


def sorted_table(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    return frame.sort(frame.columns, nulls_last=True)


def gold_tables(root: str):
    """(name, table location, storage options, `_SUCCESS` as JSON) of each gold table."""
    if not root.startswith("s3://"):
        for p in sorted((pathlib.Path(root) / "gold").iterdir()):
            if (p / "_SUCCESS").exists():
                yield p.name, str(p), None, json.loads((p / "_SUCCESS").read_text())
        return
    from pyarrow import fs

    from check_readers import s3_access

    s3, options = s3_access()
    base = root.removeprefix("s3://").rstrip("/")
    folders = [i for i in s3.get_file_info(fs.FileSelector(f"{base}/gold")) if i.type == fs.FileType.Directory]
    for info in sorted(folders, key=lambda i: i.path):
        with s3.open_input_stream(f"{info.path}/_SUCCESS") as f:
            yield info.base_name, f"s3://{info.path}", options, json.loads(f.read())


def check(root: str, earlier: pathlib.Path) -> list[str]:
    failures = []
    travelled = 0
    tables = 0
    for name, path, options, marker in gold_tables(root):
        tables += 1
        version = marker.get("delta_version")
        if version is None:
            failures.append(f"{name}: _SUCCESS names no Delta version")
            continue
        delta = DeltaTable(path, version=version, storage_options=options)
        current = delta.to_pyarrow_table()
        frame = pl.read_delta(path, version=version, storage_options=options)
        counts = {"deltalake": current.num_rows, "polars": frame.height}
        failures += [f"{name}: {r} read {n} rows, _SUCCESS says {marker['rows']}" for r, n in counts.items() if n != marker["rows"]]
        failures += type_problems(name, pa.schema([f.with_type(pa_type(f.type)) for f in current.schema]))
        newest = DeltaTable(path, storage_options=options).version()
        if newest != version:
            failures.append(f"{name}: the log is at {newest}, _SUCCESS at {version}")
        # Time travel: the version the first run published.
        previous = version - 1 if version > 0 else version
        travelled += previous != version
        then = sorted_table(DeltaTable(path, version=previous, storage_options=options).to_pyarrow_table())
        expected = sorted_table(pa.dataset.dataset(earlier / "gold" / name, format="parquet").to_table())
        try:
            # Floats within 1e-9: parallel sums may differ in the last digit.
            assert_frame_equal(then, expected, check_exact=False, **TOLERANCE)
        except AssertionError as e:
            failures.append(f"{name}: version {previous} differs from the first run's table: {e}")
        print(f"{name:<32} v{version} {marker['rows']:>8} rows  deltalake polars ok; v{previous} = first run")
    if tables == 0:
        failures.append(f"no gold tables under {root}")
    if travelled == 0:
        failures.append("no gold table got a second version: were the two as-of dates different?")
    return failures


def pa_type(t: pa.DataType) -> pa.DataType:
    """Readers choose their string layout; the stored type is what counts."""
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    return t


def main() -> int:
    import pyarrow.dataset  # noqa: F401  (pa.dataset above)

    failures = check(sys.argv[1], pathlib.Path(sys.argv[2]))
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
