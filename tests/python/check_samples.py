"""External check of nnqft's sample files: pyarrow and polars read them as-is.

Usage: python3 check_samples.py DATA_DIR PIPELINE.toml
Asserts schema, row counts, footer JSON and hive partition columns; exits
non-zero with a message on the first mismatch.
"""
import glob
import json
import os
import sys
import tomllib

import polars as pl
import pyarrow.dataset as ds
import pyarrow.parquet as pq

data, pipeline_path = sys.argv[1], sys.argv[2]
with open(pipeline_path, "rb") as f:
    cfg = tomllib.load(f)
s = cfg["sample"]
per_part = s.get("nets_per_part", 65536)
parts = -(-s["nets_per_bag"] // per_part)
archs = {a["name"]: a for a in s["arch"]}


def widths_of(a):
    return a.get("widths", s["widths"])


def columns(a):
    """f0..f{k-1}, then for deep nets l{l}_f{j} per hidden layer (README "Deep networks")."""
    k, layers = len(a["inputs"]), a.get("hidden_layers", 1)
    names = [f"f{j}" for j in range(k)]
    if layers > 1:
        names += [f"l{l}_f{j}" for l in range(1, layers + 1) for j in range(k)]
    return names


pairs = sum(len(widths_of(a)) for a in archs.values())
files = sorted(glob.glob(f"{data}/samples/**/*.parquet", recursive=True))
assert len(files) == pairs * s["bags"] * parts, len(files)
checked = 0
for path in files:
    rel = os.path.relpath(path, f"{data}/samples").split(os.sep)
    arch, width, bag = rel[0][5:], int(rel[1][6:]), int(rel[2][4:])
    part = int(rel[3][5:10])
    a = archs[arch]
    pf = pq.ParquetFile(path)
    schema = pf.schema_arrow
    assert schema.names == columns(a), (path, schema.names)
    assert all(str(t) == "float" for t in schema.types), (path, schema.types)
    meta = json.loads(pf.metadata.metadata[b"nnqft"])
    want_nets = min(per_part, s["nets_per_bag"] - part * per_part)
    assert pf.metadata.num_rows == want_nets == meta["nets"], (path, pf.metadata.num_rows, meta["nets"])
    for key in ["pipeline", "seed", "arch", "inputs", "width", "bag", "part", "nets", "config_hash", "version"]:
        assert key in meta, (path, key)
    assert meta["pipeline"] == cfg["name"] and meta["seed"] == cfg["seed"]
    assert (meta["arch"]["name"], meta["width"], meta["bag"], meta["part"]) == (arch, width, bag, part)
    assert meta["inputs"] == a["inputs"] and meta["arch"]["activation"] == a["activation"]
    checked += 1

# Hive partitions through pyarrow.dataset (one arch: equal schemas).
first = next(iter(archs))
dset = ds.dataset(f"{data}/samples/arch={first}", format="parquet", partitioning="hive")
t = dset.to_table()
assert {"width", "bag"} <= set(t.column_names), t.column_names
assert t.num_rows == len(widths_of(archs[first])) * s["bags"] * s["nets_per_bag"]

# polars over the whole tree: archs with fewer inputs get nulls in the extra columns.
df = pl.scan_parquet(
    f"{data}/samples/**/*.parquet", hive_partitioning=True, missing_columns="insert", extra_columns="ignore"
).collect()
assert {"arch", "width", "bag"} <= set(df.columns), df.columns
counts = df.group_by("arch", "width", "bag").len()
assert counts.height == pairs * s["bags"], counts
assert (counts["len"] == s["nets_per_bag"]).all(), counts

inputs = pq.read_table(f"{data}/inputs.parquet")
assert inputs.column_names == ["arch", "point", "x"], inputs.column_names
assert str(inputs.schema.field("point").type) == "uint16"
assert inputs.num_rows == sum(len(a["inputs"]) for a in archs.values())
print(f"check_samples: {checked} part files OK, {df.height} rows via polars")
