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
        "kurtosis", "kurtosis_stderr", "c6", "c6_stderr", "c8", "c8_stderr", "K_theory", "K_nlo", "kurtosis_theory",
        "c6_theory", "c8_theory", "K_exact", "kurtosis_exact", "c6_exact", "c8_exact", "z", "z_c6", "z_c8", "z_K", "spread_ratio",
        "unreliable", "unreliable_reason"]
assert lay.columns == want, lay.columns
footer = json.loads(pq.ParquetFile(f"{data}/layers.parquet").metadata.metadata[b"nnqft"])
assert footer["stage"] == "moments" and footer["config_hash"]
bags = pl.read_parquet(f"{data}/layers_bags.parquet")
assert bags.columns == ["arch", "width", "layer", "point", "bag", "m2", "m4", "m6", "m8"], bags.columns

# 1. Per-bag moments of one hidden layer straight from the raw sample columns.
arch = lay["arch"][0]
width = int(lay.filter(pl.col("arch") == arch)["width"][0])
raw = (
    pl.scan_parquet(f"{data}/samples/arch={arch}/width={width}/**/*.parquet", hive_partitioning=True)
    .select("bag", pl.col("l2_f0").cast(pl.Float64).alias("z"))
    .group_by("bag")
    .agg(*[(pl.col("z") ** p).mean().alias(f"m{p}_raw") for p in (2, 4, 6, 8)])
    .collect()
)
j = bags.filter((pl.col("arch") == arch) & (pl.col("width") == width) & (pl.col("layer") == 2) & (pl.col("point") == 0)).join(
    raw.with_columns(pl.col("bag").cast(pl.UInt32)), on="bag"
)
assert j.height == raw.height > 1, (j.height, raw.height)
for r in j.iter_rows(named=True):
    for p in (2, 4, 6, 8):
        assert abs(r[f"m{p}"] - r[f"m{p}_raw"]) <= 1e-9 * r[f"m{p}"], (p, r)

# 2. layers.parquet's pooled jackknife estimates from the per-bag moments.
def jackknife(ms, f):
    b = len(ms[0])
    tot = [sum(m) for m in ms]
    full = f(*[t / b for t in tot])
    loo = [f(*[(t - m[i]) / (b - 1) for t, m in zip(tot, ms)]) for i in range(b)]
    mean = sum(loo) / b
    return b * full - (b - 1) * mean, ((b - 1) / b * sum((x - mean) ** 2 for x in loo)) ** 0.5


def c6(a, b, c, d):
    return (c - 15 * b * a + 30 * a**3) / a**3


def c8(a, b, c, d):
    return (d - 28 * c * a - 35 * b * b + 420 * b * a * a - 630 * a**4) / a**4


groups = bags.sort("bag").group_by("arch", "width", "layer", "point", maintain_order=True).agg("m2", "m4", "m6", "m8")
n = 0
for g in groups.iter_rows(named=True):
    row = lay.filter(
        (pl.col("arch") == g["arch"]) & (pl.col("width") == g["width"]) & (pl.col("layer") == g["layer"]) & (pl.col("point") == g["point"])
    ).row(0, named=True)
    fs = [("K", lambda a, b, c, d: a), ("kurtosis", lambda a, b, c, d: b / a**2 - 3.0), ("g4c", lambda a, b, c, d: b - 3 * a * a), ("c6", c6), ("c8", c8)]
    for name, f in fs:
        est, se = jackknife([g["m2"], g["m4"], g["m6"], g["m8"]], f)
        assert abs(est - row[name]) <= 1e-9 * (abs(est) + se), (name, est, row[name])
        assert abs(se - row[f"{name}_stderr"]) <= 1e-6 * se, (name, se, row[f"{name}_stderr"])
    n += 1
assert n == lay.height, (n, lay.height)

# 3. layer_moments.parquet: its diagonal 4-point connected function is layers.parquet's g4c,
#    and its order-2 means are the bag means of m2 on the diagonal.
lm = pl.read_parquet(f"{data}/layer_moments.parquet")
assert lm.columns == ["arch", "width", "layer", "order", "tuple", "mean", "stderr", "connected", "connected_stderr", "theory", "exact", "z"], lm.columns
diag = lm.filter((pl.col("order") == 4) & (pl.col("tuple").list.n_unique() == 1)).with_columns(pl.col("tuple").list.first().cast(pl.UInt32).alias("point"))
j = diag.join(lay, on=["arch", "width", "layer", "point"])
assert j.height == lay.height, (j.height, lay.height)
for r in j.iter_rows(named=True):
    assert abs(r["connected"] - r["g4c"]) <= 1e-9 * (abs(r["g4c"]) + r["g4c_stderr"]), r
    assert abs(r["exact"] - r["kurtosis_exact"] * r["K_exact"] ** 2) <= 1e-9 * abs(r["exact"]) + 1e-300, r
print(f"check_layers: {n} layer rows reproduced from layers_bags.parquet; raw l2_f0 moments of {arch} match; {lm.height} layer_moments rows, diagonal 4-point = g4c")
