"""Read every gold table of an output root with the BI readers of docs/models.md §2.

Locally, it also decodes every value of every bronze, silver and quarantine
table with all three readers (those are written in Parquet format 2.0 with
delta encodings, docs/performance.md), and checks pyarrow and Polars decode
the same values.

Usage:
    check_readers.py <local-root>            pyarrow.dataset, Polars and DuckDB
    check_readers.py s3://bucket/prefix      pyarrow.dataset and Polars over S3
                                             (AWS_* variables as for medallion)

Each table is read the way docs/operations.md tells BI users to: a local table folder
as a whole; on S3, the files its `_SUCCESS` manifest lists (the current
version). Fails (exit 1) when a table cannot be read, when a reader's row
count differs from the manifest's, or when a column has a type BI tools would
mis-read: string views, unsigned integers, timestamps not in µs UTC, money
columns not Decimal128(18,2), date columns stored as text.
"""

import json
import os
import pathlib
import sys

import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds

MONEY = ("revenue", "price", "profit", "order_value", "lifetime_value")


def type_problems(table: str, schema: pa.Schema) -> list[str]:
    out = []
    for field in schema:
        t, name = field.type, field.name
        if pa.types.is_string_view(t) or pa.types.is_large_string(t) or pa.types.is_unsigned_integer(t):
            out.append(f"{table}.{name}: unexpected type {t}")
        if pa.types.is_timestamp(t) and (t.unit != "us" or t.tz != "UTC"):
            out.append(f"{table}.{name}: timestamp {t}, expected timestamp[us, tz=UTC]")
        if any(m in name for m in MONEY) and not any(x in name for x in ("percent", "growth", "rate", "rank", "score")):
            if t != pa.decimal128(18, 2):
                out.append(f"{table}.{name}: money column is {t}, expected decimal128(18, 2)")
        if (name in ("date", "month") or name.endswith(("_date", "_dt"))) and not (
            pa.types.is_date32(t) or pa.types.is_timestamp(t)
        ):
            out.append(f"{table}.{name}: date column is {t}")
    return out


def check_local(root: pathlib.Path) -> list[str]:
    import duckdb

    tables = sorted(p for p in (root / "gold").iterdir() if (p / "_SUCCESS").exists())
    if not tables:
        return [f"no gold tables under {root}"]
    failures = []
    for table in tables:
        expected = json.loads((table / "_SUCCESS").read_text())["rows"]
        dataset = ds.dataset(table, format="parquet")
        counts = {
            "pyarrow": dataset.count_rows(),
            "polars": pl.scan_parquet(f"{table}/**/*.parquet").select(pl.len()).collect().item(),
            "duckdb": duckdb.sql(f"select count(*) from read_parquet('{table}/**/*.parquet')").fetchall()[0][0],
        }
        failures += [f"{table.name}: {r} read {n} rows, manifest says {expected}" for r, n in counts.items() if n != expected]
        failures += type_problems(table.name, dataset.schema)
        failures += partition_problems(table)
        print(f"{table.name:<32} {expected:>8} rows  pyarrow polars duckdb ok")
    return failures


def partition_problems(table: pathlib.Path) -> list[str]:
    """A partitioned table (`<column>=YYYY-MM-DD/` folders): DuckDB and Polars,
    which read the folder names as columns, must see that column as a date."""
    import duckdb

    columns = {p.name.split("=", 1)[0] for p in table.iterdir() if p.is_dir() and "=" in p.name}
    out = []
    for column in columns:
        described = {r[0]: r[1] for r in duckdb.sql(f"describe select * from read_parquet('{table}/**/*.parquet')").fetchall()}
        if described.get(column) != "DATE":
            out.append(f"{table.name}.{column}: DuckDB reads the partition column as {described.get(column)}, expected DATE")
        dtype = pl.scan_parquet(f"{table}/**/*.parquet").collect_schema().get(column)
        if dtype != pl.Date:
            out.append(f"{table.name}.{column}: Polars reads the partition column as {dtype}, expected Date")
    return out


def table_files(table: pathlib.Path) -> list[str]:
    """The data files of a table folder, partition folders included, without
    the names readers skip (`_…`, `.…`)."""
    return sorted(
        str(f) for f in table.rglob("*.parquet") if not any(part.startswith(("_", ".")) for part in f.relative_to(table).parts)
    )


def check_decoded(root: pathlib.Path) -> list[str]:
    """Decode every value of every bronze, silver and quarantine table with each reader."""
    import duckdb

    tables = sorted(p for layer in ("bronze", "silver", "_quarantine") for p in (root / layer).iterdir() if (p / "_SUCCESS").exists())
    if not tables:
        return [f"no bronze, silver or quarantine tables under {root}"]
    failures = []
    for table in tables:
        expected = json.loads((table / "_SUCCESS").read_text())["rows"]
        files = table_files(table)
        arrow = ds.dataset(files, format="parquet").to_table()
        frame = pl.read_parquet(files)
        duck = duckdb.sql(f"select * from read_parquet({files!r})").arrow()
        duck = duck.read_all() if hasattr(duck, "read_all") else duck  # a reader in DuckDB 1.4+
        counts = {"pyarrow": arrow.num_rows, "polars": frame.height, "duckdb": duck.num_rows}
        failures += [f"{table.name}: {r} decoded {n} rows, manifest says {expected}" for r, n in counts.items() if n != expected]
        if not pl.from_arrow(arrow).equals(frame):
            failures.append(f"{table.name}: pyarrow and Polars decode different values")
        print(f"{table.parent.name + '/' + table.name:<40} {expected:>8} rows decoded  pyarrow polars duckdb ok")
    return failures


def s3_access():
    """A pyarrow S3 filesystem and the storage options of Polars and
    deltalake, both from the AWS_* variables medallion reads."""
    from pyarrow import fs

    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    scheme = "http" if endpoint.startswith("http://") else "https"
    s3 = fs.S3FileSystem(
        endpoint_override=endpoint.split("://", 1)[-1] or None,
        scheme=scheme,
        region=os.environ.get("AWS_REGION", "us-east-1"),
        access_key=os.environ.get("AWS_ACCESS_KEY_ID"),
        secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
    )
    storage_options = {
        "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", ""),
        "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
        "aws_region": os.environ.get("AWS_REGION", "us-east-1"),
        "aws_endpoint_url": endpoint,
        "aws_allow_http": "true" if scheme == "http" else "false",
    }
    return s3, storage_options


def check_s3(url: str) -> list[str]:
    from pyarrow import fs

    s3, storage_options = s3_access()
    base = url.removeprefix("s3://").rstrip("/")
    gold = [i for i in s3.get_file_info(fs.FileSelector(f"{base}/gold")) if i.type == fs.FileType.Directory]
    if not gold:
        return [f"no gold tables under {url}"]
    failures = []
    for info in sorted(gold, key=lambda i: i.path):
        name = info.base_name
        with s3.open_input_stream(f"{info.path}/_SUCCESS") as f:
            manifest = json.loads(f.read())
        files = [f"{info.path}/{file}" for file in manifest["files"]]
        dataset = ds.dataset(files, format="parquet", filesystem=s3)
        counts = {
            "pyarrow": dataset.count_rows(),
            "polars": pl.scan_parquet([f"s3://{p}" for p in files], storage_options=storage_options)
            .select(pl.len())
            .collect()
            .item(),
        }
        failures += [f"{name}: {r} read {n} rows, manifest says {manifest['rows']}" for r, n in counts.items() if n != manifest["rows"]]
        failures += type_problems(name, dataset.schema)
        print(f"{name:<32} {manifest['rows']:>8} rows  pyarrow polars (S3) ok")
    return failures


def main() -> int:
    target = sys.argv[1]
    if target.startswith("s3://"):
        failures = check_s3(target)
    else:
        failures = check_local(pathlib.Path(target)) + check_decoded(pathlib.Path(target))
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
