//! Writing `couplings.parquet` and `predictions.parquet`, and reading the
//! couplings back.

use crate::*;
use anyhow::Result;
use arrow::array::{Array, Float64Array, StringArray, UInt32Array, UInt8Array};
use nnqft_core::boxint::Propagator;
use nnqft_core::pipeline::FitRun;
use nnqft_store::tables::{column, read_table, Table};
use std::path::Path;

/// The key of a row of either table: (arch, width, cutoff, propagator, model, order).
trait RowKey {
    fn key(&self) -> (&str, usize, f64, &str, &str, usize);
}

impl RowKey for CouplingRow {
    fn key(&self) -> (&str, usize, f64, &str, &str, usize) {
        (&self.arch, self.width, self.cutoff, self.propagator, &self.model, self.order)
    }
}

impl RowKey for PredictionRow {
    fn key(&self) -> (&str, usize, f64, &str, &str, usize) {
        (&self.arch, self.width, self.cutoff, self.propagator, &self.model, self.order)
    }
}

/// The key columns both tables start with.
fn key_columns<R: RowKey>(t: &mut Table, rows: &[R]) {
    let k: Vec<_> = rows.iter().map(RowKey::key).collect();
    t.utf8("arch", k.iter().map(|r| r.0.to_string()).collect())
        .u32("width", k.iter().map(|r| r.1 as u32).collect())
        .f64("cutoff", k.iter().map(|r| r.2).collect())
        .utf8("propagator", k.iter().map(|r| r.3.to_string()).collect())
        .utf8("model", k.iter().map(|r| r.4.to_string()).collect())
        .u8("order", k.iter().map(|r| r.5 as u8).collect());
}

pub(crate) fn write_couplings(path: &Path, rows: &[CouplingRow], footer: &serde_json::Value) -> Result<()> {
    let mut t = Table::default();
    key_columns(&mut t, rows);
    for (j, name) in COEF_NAMES.iter().enumerate() {
        t.f64(name, rows.iter().map(|r| r.coef[j]).collect());
        t.f64(&format!("{name}_stderr"), rows.iter().map(|r| r.coef_stderr[j]).collect());
    }
    for (j, name) in COEF_NAMES.iter().enumerate() {
        t.f64(&format!("exact_{name}"), rows.iter().map(|r| r.exact_coef[j]).collect());
    }
    let cols: [(&str, fn(&CouplingRow) -> f64); 15] = [
        ("value", |r| r.value),
        ("value_stderr", |r| r.value_stderr),
        ("exact_value", |r| r.exact_value),
        ("train_mse", |r| r.train_mse),
        ("test_mse", |r| r.test_mse),
        ("test_mape", |r| r.test_mape),
        ("test_mse_exact", |r| r.test_mse_exact),
        ("test_mape_exact", |r| r.test_mape_exact),
        ("chi2_dof", |r| r.chi2_dof),
        ("condition", |r| r.condition),
        ("argmin_rel_diff", |r| r.argmin_rel_diff),
        ("quad_rel_err", |r| r.quad_rel_err),
        ("signal_train", |r| r.signal_train),
        ("signal_test", |r| r.signal_test),
        ("n_train", |r| r.n_train as f64),
    ];
    for (name, f) in cols {
        if name == "n_train" {
            t.u32("n_train", rows.iter().map(|r| r.n_train as u32).collect());
            t.u32("n_test", rows.iter().map(|r| r.n_test as u32).collect());
        } else {
            t.f64(name, rows.iter().map(f).collect());
        }
    }
    t.u8("identifiable", rows.iter().map(|r| r.identifiable as u8).collect())
        .u8("resolved", rows.iter().map(|r| r.resolved as u8).collect())
        .opt_utf8("note", rows.iter().map(|r| r.note.clone()).collect())
        .u32("n_unreliable", rows.iter().map(|r| r.n_unreliable as u32).collect());
    t.write(path, footer)
}

pub(crate) fn write_predictions(path: &Path, rows: &[PredictionRow], footer: &serde_json::Value) -> Result<()> {
    let mut t = Table::default();
    key_columns(&mut t, rows);
    t.list_u16("tuple", &rows.iter().map(|r| r.tuple.iter().map(|&a| a as u16).collect()).collect::<Vec<_>>())
        .utf8("split", rows.iter().map(|r| if r.train { "train" } else { "test" }.to_string()).collect())
        .f64("measured", rows.iter().map(|r| r.measured).collect())
        .f64("measured_stderr", rows.iter().map(|r| r.measured_stderr).collect())
        .f64("predicted", rows.iter().map(|r| r.predicted).collect())
        .f64("exact", rows.iter().map(|r| r.exact).collect());
    t.write(path, footer)
}

/// Reads `couplings.parquet` back (for printing an up-to-date result).
pub fn read_back(path: &Path) -> Result<Vec<CouplingRow>> {
    let mut out = Vec::new();
    for b in read_table(path)? {
        let s = |n: &str| column::<StringArray>(path, &b, n);
        let f = |n: &str| column::<Float64Array>(path, &b, n);
        let (arch, prop, model, note) = (s("arch")?, s("propagator")?, s("model")?, s("note")?);
        let width = column::<UInt32Array>(path, &b, "width")?;
        let order = column::<UInt8Array>(path, &b, "order")?;
        let ident = column::<UInt8Array>(path, &b, "identifiable")?;
        let resolved = column::<UInt8Array>(path, &b, "resolved")?;
        let unreliable = column::<UInt32Array>(path, &b, "n_unreliable")?;
        let (n_train, n_test) = (column::<UInt32Array>(path, &b, "n_train")?, column::<UInt32Array>(path, &b, "n_test")?);
        let g = |n: &str, i: usize| f(n).map(|c| c.value(i));
        for i in 0..b.num_rows() {
            let fit_run = FitRun { arch: arch.value(i).into(), widths: None, cutoff: g("cutoff", i)?, propagator: Propagator::Full, interior: [0.0, 0.0] };
            let mut r = CouplingRow::new(&fit_run, width.value(i) as usize, model.value(i), order.value(i) as usize);
            r.propagator = if prop.value(i) == "K_W" { "K_W" } else { "K" };
            for (j, name) in COEF_NAMES.iter().enumerate() {
                r.coef[j] = g(name, i)?;
                r.coef_stderr[j] = g(&format!("{name}_stderr"), i)?;
                r.exact_coef[j] = g(&format!("exact_{name}"), i)?;
            }
            (r.value, r.value_stderr, r.exact_value) = (g("value", i)?, g("value_stderr", i)?, g("exact_value", i)?);
            (r.train_mse, r.test_mse, r.test_mape, r.chi2_dof) = (g("train_mse", i)?, g("test_mse", i)?, g("test_mape", i)?, g("chi2_dof", i)?);
            (r.test_mse_exact, r.test_mape_exact) = (g("test_mse_exact", i)?, g("test_mape_exact", i)?);
            (r.condition, r.argmin_rel_diff, r.quad_rel_err) = (g("condition", i)?, g("argmin_rel_diff", i)?, g("quad_rel_err", i)?);
            (r.signal_train, r.signal_test) = (g("signal_train", i)?, g("signal_test", i)?);
            r.identifiable = ident.value(i) != 0;
            r.resolved = resolved.value(i) != 0;
            r.n_unreliable = unreliable.value(i) as usize;
            (r.n_train, r.n_test) = (n_train.value(i) as usize, n_test.value(i) as usize);
            r.note = (!note.is_null(i)).then(|| note.value(i).to_string());
            out.push(r);
        }
    }
    Ok(out)
}
