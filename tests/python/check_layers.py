"""External check of the deep-net tables: pyarrow and polars read the per-layer
sample columns and layers.parquet / layers_bags.parquet as-is, and reproduce them.

Usage: python3 check_layers.py DATA_DIR
"""
import json
import sys

import polars as pl
import pyarrow.parquet as pq

data = sys.argv[1]

lay = pl.read_parquet(f"{data}/layers.parquet")
want = ["arch", "activation", "c_w", "c_b", "width", "layer", "point", "K", "K_stderr", "g4c", "g4c_stderr",
        "kurtosis", "kurtosis_stderr", "K_theory", "kurtosis_theory", "kurtosis_exact", "z", "unreliable", "unreliable_reason"]
assert lay.columns == want, lay.columns
footer = json.loads(pq.ParquetFile(f"{data}/layers.parquet").metadata.metadata[b"nnqft"])
assert footer["stage"] == "moments" and footer["config_hash"]
bags = pl.read_parquet(f"{data}/layers_bags.parquet")
assert bags.columns == ["arch", "width", "layer", "point", "bag", "m2", "m4"], bags.columns

# 1. Per-bag moments of one hidden layer straight from the raw sample columns.
arch = lay["arch"][0]
width = int(lay.filter(pl.col("arch") == arch)["width"][0])
raw = (
    pl.scan_parquet(f"{data}/samples/arch={arch}/width={width}/**/*.parquet", hive_partitioning=True)
    .select("bag", pl.col("l2_f0").cast(pl.Float64).alias("z"))
    .group_by("bag")
    .agg((pl.col("z") ** 2).mean().alias("m2_raw"), (pl.col("z") ** 4).mean().alias("m4_raw"))
    .collect()
)
j = bags.filter((pl.col("arch") == arch) & (pl.col("width") == width) & (pl.col("layer") == 2) & (pl.col("point") == 0)).join(
    raw.with_columns(pl.col("bag").cast(pl.UInt32)), on="bag"
)
assert j.height == raw.height > 1, (j.height, raw.height)
for r in j.iter_rows(named=True):
    assert abs(r["m2"] - r["m2_raw"]) <= 1e-9 * r["m2"], r
    assert abs(r["m4"] - r["m4_raw"]) <= 1e-9 * r["m4"], r

# 2. layers.parquet's pooled jackknife estimates from the per-bag moments.
def jackknife(m2, m4, f):
    b = len(m2)
    full = f(sum(m2) / b, sum(m4) / b)
    loo = [f((sum(m2) - m2[i]) / (b - 1), (sum(m4) - m4[i]) / (b - 1)) for i in range(b)]
    mean = sum(loo) / b
    return b * full - (b - 1) * mean, ((b - 1) / b * sum((x - mean) ** 2 for x in loo)) ** 0.5

groups = bags.sort("bag").group_by("arch", "width", "layer", "point", maintain_order=True).agg("m2", "m4")
n = 0
for g in groups.iter_rows(named=True):
    row = lay.filter(
        (pl.col("arch") == g["arch"]) & (pl.col("width") == g["width"]) & (pl.col("layer") == g["layer"]) & (pl.col("point") == g["point"])
    ).row(0, named=True)
    for name, f in [("K", lambda a, b: a), ("kurtosis", lambda a, b: b / a**2 - 3.0), ("g4c", lambda a, b: b - 3 * a * a)]:
        est, se = jackknife(g["m2"], g["m4"], f)
        assert abs(est - row[name]) <= 1e-9 * (abs(est) + se), (name, est, row[name])
        assert abs(se - row[f"{name}_stderr"]) <= 1e-6 * se, (name, se, row[f"{name}_stderr"])
    n += 1
assert n == lay.height, (n, lay.height)
print(f"check_layers: {n} layer rows reproduced from layers_bags.parquet; raw l2_f0 moments of {arch} match")
