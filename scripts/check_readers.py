"""Read every gold table of an output root with pyarrow and DuckDB.

Usage: check_readers.py <output-root>

Fails (exit 1) when a table cannot be read, when the two readers disagree on
its row count, or when a column has a type BI tools would mis-read
(string views, non-UTC or non-microsecond timestamps, unsigned integers).
"""

import pathlib
import sys

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds


def main() -> int:
    root = pathlib.Path(sys.argv[1])
    tables = sorted(p for p in (root / "gold").iterdir() if (p / "_SUCCESS").exists())
    if not tables:
        print(f"no gold tables under {root}", file=sys.stderr)
        return 1
    failures = []
    for table in tables:
        dataset = ds.dataset(table, format="parquet")
        arrow_rows = dataset.count_rows()
        duck_rows = duckdb.sql(f"select count(*) from read_parquet('{table}/**/*.parquet')").fetchall()[0][0]
        if arrow_rows != duck_rows:
            failures.append(f"{table.name}: pyarrow {arrow_rows} rows, duckdb {duck_rows}")
        for field in dataset.schema:
            t = field.type
            bad = (
                pa.types.is_string_view(t)
                or pa.types.is_large_string(t)
                or pa.types.is_unsigned_integer(t)
                or (pa.types.is_timestamp(t) and (t.unit != "us" or t.tz != "UTC"))
            )
            if bad:
                failures.append(f"{table.name}.{field.name}: unexpected type {t}")
        print(f"{table.name:<32} {arrow_rows:>8} rows  ok")
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
