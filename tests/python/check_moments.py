"""External check of the moments tables: pyarrow and polars read them as-is.

Usage: python3 check_moments.py DATA_DIR PIPELINE.toml
"""
import json
import math
import sys
import tomllib
from math import comb

import duckdb
import polars as pl
import pyarrow.parquet as pq

data, pipeline_path = sys.argv[1], sys.argv[2]
with open(pipeline_path, "rb") as f:
    cfg = tomllib.load(f)
s = cfg["sample"]
orders = cfg.get("moments", {}).get("orders", [2, 4, 6])
# moments.parquet holds the single-hidden-layer archs (deep ones go to layers.parquet)
single = [a for a in s["arch"] if a.get("hidden_layers", 1) == 1]
pairs = sum(len(a.get("widths", s["widths"])) for a in single)
n_tuples = sum(comb(len(a["inputs"]) + o - 1, o) * len(a.get("widths", s["widths"])) for a in single for o in orders)

m = pq.read_table(f"{data}/moments.parquet")
want = ["arch", "width", "order", "tuple", "mean", "stderr", "bag_std", "gp", "delta", "m", "background", "exact_delta", "exact_m"]
assert m.column_names[: len(want)] == want, m.column_names
assert str(m.schema.field("tuple").type) == "list<item: uint16>", m.schema.field("tuple").type
assert m.num_rows == n_tuples, (m.num_rows, n_tuples)
footer = json.loads(pq.ParquetFile(f"{data}/moments.parquet").metadata.metadata[b"nnqft"])
assert footer["pipeline"] == cfg["name"] and footer["stage"] == "moments" and footer["config_hash"]
assert len(footer["sources"]) == pairs

b = pl.read_parquet(f"{data}/moments_bags.parquet")
assert b.columns == ["arch", "width", "order", "tuple", "bag", "value"], b.columns
assert b.height == n_tuples * s["bags"]

# Reproduce mean and stderr of every tuple from the per-bag values.
mp = pl.read_parquet(f"{data}/moments.parquet")
agg = b.group_by("arch", "width", "order", "tuple").agg(
    pl.col("value").mean().alias("mean2"), (pl.col("value").std() / math.sqrt(s["bags"])).alias("stderr2")
)
j = mp.join(agg, on=["arch", "width", "order", "tuple"])
assert j.height == mp.height
assert ((j["mean"] - j["mean2"]).abs() <= 1e-12 * j["mean"].abs().clip(lower_bound=1e-300)).all()
assert ((j["stderr"] - j["stderr2"]).abs() <= 1e-9 * j["stderr"].abs()).all()
assert ((j["m"] - (j["mean"] - j["gp"]) / j["gp"]).abs() <= 1e-9 * j["m"].abs().clip(lower_bound=1e-12)).all()

su = pl.read_parquet(f"{data}/summary.parquet")
for c in ["arch", "width", "order", "mean_abs_m", "mean_background", "mean_abs_exact_m", "slope_vs_N"]:
    assert c in su.columns, c
assert su.height == pairs * len(orders)
check = mp.group_by("arch", "width", "order").agg(pl.col("m").abs().mean().alias("mam"))
jj = su.join(check, on=["arch", "width", "order"])
assert ((jj["mean_abs_m"] - jj["mam"]).abs() <= 1e-12 * jj["mam"]).all()
# mean_abs_m_stderr: the delete-one-bag jackknife of mean |m|, recomputed here from the bags.
nb = s["bags"]
gp = mp.select("arch", "width", "order", "tuple", "gp")
bg = b.join(gp, on=["arch", "width", "order", "tuple"])
loo = []
for j_out in range(nb):
    kept = bg.filter(pl.col("bag") != j_out).group_by("arch", "width", "order", "tuple", "gp").agg(pl.col("value").mean())
    loo.append(kept.group_by("arch", "width", "order")
                   .agg(((pl.col("value") - pl.col("gp")) / pl.col("gp")).abs().mean().alias("jk")).with_columns(pl.lit(j_out).alias("left_out")))
jk = (pl.concat(loo).group_by("arch", "width", "order")
        .agg((((pl.col("jk") - pl.col("jk").mean()) ** 2).sum() * (nb - 1) / nb).sqrt().alias("se_py")))
js = su.join(jk, on=["arch", "width", "order"])
assert js.height == su.height
assert ((js["mean_abs_m_stderr"] - js["se_py"]).abs() <= 1e-9 * js["se_py"].abs() + 1e-300).all(), js.select("arch", "width", "order", "mean_abs_m_stderr", "se_py")
assert (js["mean_abs_m_stderr"] > 0).all()
# DuckDB reads the same tables and the hive-partitioned samples. "order" is a reserved word
# in SQL and must be quoted.
con = duckdb.connect()
dq = con.sql(
    f"""SELECT arch, width, "order", avg(abs(m)) AS mam_duck
        FROM read_parquet('{data}/moments.parquet') GROUP BY ALL"""
).pl().with_columns(pl.col("width").cast(pl.UInt32), pl.col("order").cast(pl.UInt8))
jd = su.join(dq, on=["arch", "width", "order"])
assert jd.height == su.height, (jd.height, su.height)
assert ((jd["mean_abs_m"] - jd["mam_duck"]).abs() <= 1e-12 * jd["mam_duck"]).all()
a0 = single[0]
if len(a0["inputs"]) >= 2:
    # G2(x_0, x_1) over every net of the first arch, per width, against moments' bag average.
    g2 = con.sql(
        f"""SELECT width, avg(f0::DOUBLE * f1::DOUBLE) AS g2
            FROM read_parquet('{data}/samples/arch={a0["name"]}/*/*/*.parquet', hive_partitioning = true)
            GROUP BY width"""
    ).pl().with_columns(pl.col("width").cast(pl.UInt32))
    ref = mp.filter((pl.col("arch") == a0["name"]) & (pl.col("order") == 2) & (pl.col("tuple") == [0, 1]))
    jg = ref.join(g2, on="width")
    assert jg.height == ref.height > 0, (jg.height, ref.height)
    assert ((jg["mean"] - jg["g2"]).abs() <= 1e-9 * jg["mean"].abs()).all(), jg.select("width", "mean", "g2")
# The exact-variance columns (docs/physics.md §10) are consistent with each other and with the
# summary, recomputed here: exact background = exact_stderr sqrt(bags) / |gp|, spread_ratio =
# bag_std / (exact_stderr sqrt(bags)), coverage and the unreliable counts per (arch, width, order).
ex = mp.with_columns((pl.col("exact_stderr") * math.sqrt(nb) / pl.col("gp").abs()).alias("ebg2"),
                     (pl.col("bag_std") / (pl.col("exact_stderr") * math.sqrt(nb))).alias("ratio2"))
assert ((ex["exact_background"] - ex["ebg2"]).abs() <= 1e-9 * ex["ebg2"]).all()
assert ((ex["spread_ratio"] - ex["ratio2"]).abs() <= 1e-9 * ex["ratio2"]).all()
assert (ex["exact_stderr"] > 0).all()
assert (ex.filter(pl.col("unreliable") == 1)["unreliable_reason"].is_not_null()).all()
assert (ex.filter(pl.col("unreliable") == 0)["unreliable_reason"].is_null()).all()
cov = mp.group_by("arch", "width", "order").agg(
    (pl.col("z_exact_stderr").abs() <= 1).mean().alias("c1"), (pl.col("z_exact_stderr").abs() <= 2).mean().alias("c2"),
    pl.col("unreliable").cast(pl.UInt32).sum().alias("nu"), pl.col("exact_background").mean().alias("meb"))
jc = su.join(cov, on=["arch", "width", "order"])
assert jc.height == su.height
assert ((jc["coverage_1"] - jc["c1"]).abs() < 1e-12).all() and ((jc["coverage_2"] - jc["c2"]).abs() < 1e-12).all()
assert (jc["n_unreliable"] == jc["nu"]).all()
assert ((jc["background_ratio"] - jc["mean_background"] / jc["meb"]).abs() <= 1e-9 * jc["background_ratio"]).all()
print(f"check_moments: {mp.height} tuples, {b.height} bag rows, {su.height} summary rows OK")
