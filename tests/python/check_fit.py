"""External check of the fit tables: pyarrow and polars read them as-is, and
the test MSE / MAPE of couplings.parquet are reproduced from predictions.parquet.

Usage: python3 check_fit.py DATA_DIR
"""
import json
import math
import sys

import polars as pl
import pyarrow.parquet as pq

data = sys.argv[1]
c = pq.read_table(f"{data}/couplings.parquet")
want = ["arch", "width", "cutoff", "propagator", "model", "order", "lambda0", "lambda0_stderr",
        "lambda2", "lambda2_stderr", "lambda_nl", "lambda_nl_stderr"]
assert c.column_names[: len(want)] == want, c.column_names
for col in ["exact_lambda0", "value", "value_stderr", "exact_value", "train_mse", "test_mse", "test_mape",
            "test_mse_exact", "test_mape_exact", "chi2_dof", "condition", "argmin_rel_diff", "quad_rel_err",
            "n_train", "n_test", "identifiable", "note"]:
    assert col in c.column_names, col
footer = json.loads(pq.ParquetFile(f"{data}/couplings.parquet").metadata.metadata[b"nnqft"])
assert footer["stage"] == "fit" and footer["config_hash"] and footer["sources"]["moments.parquet"]

cp = pl.read_parquet(f"{data}/couplings.parquet")
p = pl.read_parquet(f"{data}/predictions.parquet")
assert p.columns == ["arch", "width", "cutoff", "propagator", "model", "order", "tuple", "split",
                     "measured", "measured_stderr", "predicted", "exact"], p.columns
assert set(p["split"].unique()) == {"train", "test"}

# M0 predicts nothing: 100 % error on every test tuple.
m0 = cp.filter((pl.col("model") == "M0") & (pl.col("order") == 4))
assert m0.height > 0 and (m0["test_mape"] - 100.0).abs().max() < 1e-9

# Reproduce test_mse of every identifiable model from the per-tuple predictions.
agg = (p.filter((pl.col("split") == "test") & (pl.col("model") != "lambda_m"))
        .group_by("arch", "width", "cutoff", "propagator", "model", "order")
        .agg(((pl.col("predicted") - pl.col("measured")) ** 2).mean().alias("mse2")))
j = cp.join(agg, on=["arch", "width", "cutoff", "propagator", "model", "order"])
assert j.height >= m0.height * 2, j.height
for r in j.iter_rows(named=True):
    assert math.isclose(r["test_mse"], r["mse2"], rel_tol=1e-9, abs_tol=1e-300), (r["model"], r["test_mse"], r["mse2"])

# Non-identifiable fits carry no couplings, and say why.
bad = cp.filter(pl.col("identifiable") == 0)
for r in bad.iter_rows(named=True):
    assert r["lambda0"] is None or math.isnan(r["lambda0"]), r
    assert r["note"], r
print(f"check_fit: {cp.height} coupling rows, {p.height} predictions, {bad.height} flagged non-identifiable")
