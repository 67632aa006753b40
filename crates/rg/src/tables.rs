//! Writing `flow.parquet` and `slopes.parquet`.

use crate::*;
use anyhow::Result;
use nnqft_store::tables::Table;
use std::path::Path;

pub(crate) fn write_flow(path: &Path, rows: &[FlowRow], footer: &serde_json::Value) -> Result<()> {
    let mut t = Table::default();
    t.utf8("arch", rows.iter().map(|r| r.arch.clone()).collect())
        .u32("d_in", rows.iter().map(|r| r.d_in as u32).collect())
        .u32("width", rows.iter().map(|r| r.width as u32).collect())
        .utf8("kind", rows.iter().map(|r| r.kind.to_string()).collect())
        .utf8("propagator", rows.iter().map(|r| r.propagator.to_string()).collect())
        .f64("scale", rows.iter().map(|r| r.scale).collect())
        .utf8("coupling", rows.iter().map(|r| r.coupling.to_string()).collect())
        .f64("value", rows.iter().map(|r| r.value).collect())
        .f64("stderr", rows.iter().map(|r| r.stderr).collect())
        .f64("exact", rows.iter().map(|r| r.exact).collect())
        .f64("quad_rel_err", rows.iter().map(|r| r.quad_rel_err).collect())
        .u32("n_unreliable", rows.iter().map(|r| r.n_unreliable as u32).collect());
    t.write(path, footer)
}

pub(crate) fn write_slopes(path: &Path, rows: &[SlopeRow], footer: &serde_json::Value) -> Result<()> {
    let mut t = Table::default();
    t.utf8("arch", rows.iter().map(|r| r.arch.clone()).collect())
        .u32("d_in", rows.iter().map(|r| r.d_in as u32).collect())
        .u32("width", rows.iter().map(|r| r.width as u32).collect())
        .utf8("kind", rows.iter().map(|r| r.kind.to_string()).collect())
        .utf8("propagator", rows.iter().map(|r| r.propagator.to_string()).collect())
        .utf8("coupling", rows.iter().map(|r| r.coupling.to_string()).collect())
        .utf8("quantity", rows.iter().map(|r| r.quantity.to_string()).collect())
        .utf8("range", rows.iter().map(|r| r.range.to_string()).collect())
        .f64("slope", rows.iter().map(|r| r.slope).collect())
        .f64("stderr", rows.iter().map(|r| r.stderr).collect())
        .f64("exact", rows.iter().map(|r| r.exact).collect())
        .f64("asymptotic", rows.iter().map(|r| r.asymptotic).collect())
        .f64("seed_claim", rows.iter().map(|r| r.seed_claim).collect())
        .u32("n_points", rows.iter().map(|r| r.n_points as u32).collect())
        .opt_utf8("note", rows.iter().map(|r| r.note.clone()).collect());
    t.write(path, footer)
}
