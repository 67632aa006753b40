"""Read nnqft's outputs as polars frames, with the metadata each file carries.

Every Parquet file nnqft writes (sample parts and result tables) records a JSON
footer under the key ``nnqft``: the stage, pipeline, seed, config hash, nnqft
version and the hashes of its sources (docs/data.md lists every table, column
and footer field). This module needs only polars and pyarrow::

    import sys; sys.path.insert(0, "python")     # from the repository root
    import nnqft_read as nr

    summary, meta = nr.read("data/quick/summary.parquet")
    print(meta["config_hash"], summary.filter(summary["order"] == 4))

    tables = nr.run("data/quick")                 # every result table of a run
    f = nr.samples("data/quick", "erf-d1", 10)    # every net of one (arch, width)

``order`` is a reserved word in SQL: quote it (``"order"``) in DuckDB.
"""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

FOOTER_KEY = b"nnqft"


def footer(path: str | Path) -> dict:
    """The ``nnqft`` footer of one Parquet file, as a dict."""
    meta = pq.ParquetFile(str(path)).metadata.metadata or {}
    if FOOTER_KEY not in meta:
        raise ValueError(f"{path}: no 'nnqft' footer key (not written by nnqft?)")
    return json.loads(meta[FOOTER_KEY])


def read(path: str | Path) -> tuple[pl.DataFrame, dict]:
    """One table as a polars frame, and its footer."""
    return pl.read_parquet(str(path)), footer(path)


def run(data: str | Path) -> dict[str, pl.DataFrame]:
    """Every result table of a run directory (``data/NAME``), by file stem."""
    data = Path(data)
    return {p.stem: pl.read_parquet(str(p)) for p in sorted(data.glob("*.parquet"))}


def samples(data: str | Path, arch: str, width: int, bag: int | None = None) -> pl.DataFrame:
    """The sampled outputs of one (arch, width), optionally one bag: one row per
    net, columns ``f0 .. f{k-1}`` (and hidden layers for deep nets), plus ``bag``
    and ``part``. The parts are checked to come from one config."""
    root = Path(data) / "samples" / f"arch={arch}" / f"width={width}"
    parts = sorted(root.glob("bag=*/part-*.parquet") if bag is None else root.glob(f"bag={bag}/part-*.parquet"))
    if not parts:
        raise FileNotFoundError(f"{root}: no sample parts (run nnqft-sample first)")
    frames, hashes = [], set()
    for p in parts:
        meta = footer(p)
        hashes.add(meta["config_hash"])
        frames.append(pl.read_parquet(str(p)).with_columns(pl.lit(meta["bag"]).alias("bag"), pl.lit(meta["part"]).alias("part")))
    if len(hashes) != 1:
        raise ValueError(f"{root}: parts of {len(hashes)} different configs")
    return pl.concat(frames)
