//! # nnqft-fit
//!
//! The fit stage (docs/physics.md §5 and 6): from the measured 4- and
//! 6-point deviations `G - G_GP` of `moments_bags.parquet`, measure the
//! couplings of the effective action
//!
//! ```text
//! G4 - G4_GP = lambda0 T0 + lambda2 T2 + lambda_nl TNL
//! T0 = -24 int prod_a K(x_a, y),  T2 = -24 int |y|^2 prod_a K(x_a, y),
//! TNL = -8 sum_3 [int K(x_a,y) K(x_b,y)] [int K(x_c,z) K(x_d,z)]
//! ```
//!
//! fit the models M0-M3 on the train tuples of an input grid (argmin, checked
//! against the closed form), predict the test tuples and the 6-point
//! function, and report the seed-001 couplings u4, u6 for gauss-nets.
//! Errors come from the bags (one fit per bag).

pub mod linear;
pub mod models;
pub mod print;
pub mod rows;
pub mod seed;
pub mod tables;

pub use models::*;
pub use print::*;
pub use rows::*;
pub use tables::*;

use anyhow::Result;
use nnqft_core::boxint::Propagator;
use nnqft_core::pipeline::FitRun;
use nnqft_core::rng::sha256_hex;
pub use nnqft_deviations::{load_deviations, require_inputs, seed001_estimates, Deviations, Estimate};
pub use nnqft_stats::stderr;
use nnqft_core::{Activation, Pipeline};
use nnqft_store::tables::{num_rows, read_footer};
use std::path::Path;

/// Version of the fit; enters the config hash.
pub const FIT_VERSION: u32 = 2;

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub force: bool,
}

/// What the stage did.
pub struct Outputs {
    pub couplings: Vec<CouplingRow>,
    /// The rows computed now (empty when up to date).
    pub predictions: Vec<PredictionRow>,
    /// The rows of `predictions.parquet` (computed now or reused).
    pub n_predictions: usize,
    /// True when the outputs were up to date and nothing was recomputed.
    pub up_to_date: bool,
}

/// The config hash of the fit outputs: the fit config, the moments
/// reductions it reads and the fit version.
pub fn fit_hash(p: &Pipeline) -> String {
    let keys: Vec<String> = p
        .fit
        .run
        .iter()
        .flat_map(|r| {
            let arch = p.arch(&r.arch).expect("validated");
            run_widths(p, r).into_iter().map(move |w| nnqft_store::keys::reduce_key(p, arch, w))
        })
        .collect();
    let key = serde_json::json!({
        "fit_version": FIT_VERSION,
        "tables_version": nnqft_store::keys::TABLES_VERSION,
        "fit": p.fit,
        "archs": p.fit.run.iter().map(|r| p.arch(&r.arch)).collect::<Vec<_>>(),
        "reduce_keys": keys,
    });
    sha256_hex(key.to_string().as_bytes())
}

/// Marks a coupling fitted from tuples whose bag errors the moments stage
/// flagged unreliable (docs/physics.md §10): their count, and a note that
/// the coupling's error bar understates the true error.
pub fn mark_unreliable(c: &mut CouplingRow, dev: &Deviations) {
    let n = dev.n_unreliable(c.order);
    c.n_unreliable = n;
    if n > 0 {
        let total = dev.unreliable.get(&c.order).map_or(0, Vec::len);
        let msg = format!("{n} of {total} {}-point tuples have unreliable bag errors (docs/physics.md §10): the error bars understate the true error", c.order);
        c.note = Some(c.note.take().map_or(msg.clone(), |n| format!("{n}; {msg}")));
    }
}

/// The fit stage's section of the run report: the printed coupling tables
/// (every model, flag and note, beside the reference talks' values where the
/// run follows their protocol).
pub fn section(p: &Pipeline, couplings: &[CouplingRow]) -> String {
    format!(
        "## Effective couplings (fit)\n\nModels M0-M3 of the effective action fitted to the 4-point deviations on the \
         train tuples and tested on the rest, the 6-point prediction and, for gauss-nets, u4 and u6 \
         (docs/physics.md §5-6). Errors are the spread of one fit per bag; a fit whose design is ill-conditioned is \
         reported as not identifiable; an unresolved 4-point signal is said so and its models are not ranked. \
         Full rows in `couplings.parquet` and `predictions.parquet`.\n\n```text\n{}\n```\n{}",
        format_table(p, couplings).trim_matches('\n'),
        translation_section(p, couplings)
    )
}

/// The report's "couplings under translations" part, or nothing.
fn translation_section(p: &Pipeline, couplings: &[CouplingRow]) -> String {
    let rows = translation_rows(p, couplings);
    if rows.is_empty() {
        return String::new();
    }
    let table = nnqft_report::table(
        &["test", "shift", "N", "L", "K", "lambda_bar", "lambda_bar (shifted)", "ratio", "exact ratio", "M2 (lambda0, lambda2)", "M2 (shifted)"],
        rows.iter().map(|r| {
            vec![
                format!("{} ({} -> {})", r.test, r.arch, r.image),
                r.shift.clone(),
                r.width.to_string(),
                r.cutoff.to_string(),
                r.propagator.to_string(),
                format!("{} (exact {})", nnqft_cli::fmt_pm(r.here.0, r.here.1), nnqft_cli::fmt_g(r.here.2)),
                format!("{} (exact {})", nnqft_cli::fmt_pm(r.there.0, r.there.1), nnqft_cli::fmt_g(r.there.2)),
                nnqft_cli::fmt_pm(r.ratio, r.ratio_stderr),
                nnqft_cli::fmt_g(r.ratio_exact),
                r.m2_here.clone(),
                r.m2_there.clone(),
            ]
        }),
    );
    format!(
        "\n### Couplings under input translations\n\nThe gauss-net's kernel is translation invariant, its 4-point function is not \
         (docs/physics.md §13): the same fits at the arch's inputs and at their translate. A coupling that were a constant \
         of the theory (seed 000's naturalness conjecture) would not move: ratio 1.\n\n{table}"
    )
}

/// The widths a run fits.
pub fn run_widths(p: &Pipeline, r: &FitRun) -> Vec<usize> {
    let arch = p.arch(&r.arch).expect("validated");
    r.widths.clone().unwrap_or_else(|| p.widths_of(arch).to_vec())
}

/// Runs the stage: load, fit every run and width, write the two tables.
pub fn run(p: &Pipeline, data: &Path, opts: &Options) -> Result<Outputs> {
    if p.fit.run.is_empty() {
        // Not an error: `just all` runs every stage on every pipeline.
        return Ok(Outputs { couplings: Vec::new(), predictions: Vec::new(), n_predictions: 0, up_to_date: true });
    }
    let lock = nnqft_store::lock::DirLock::acquire_for_input(data, "nnqft-fit", "moments.parquet", "nnqft-moments")?;
    if let Some(prev) = &lock.recovered_from {
        eprintln!("nnqft-fit: note: {} was held by a run that is gone ({prev}); recovered", lock.path().display());
    }
    nnqft_store::atomic::clean_stale_temps(data, None)?;
    // Inputs first, even when the outputs look up to date: one stale-data rule for every stage.
    require_inputs(p, data)?;
    let hash = fit_hash(p);
    let (cpath, ppath) = (data.join("couplings.parquet"), data.join("predictions.parquet"));
    if !opts.force && [&cpath, &ppath].iter().all(|f| read_footer(f).is_ok_and(|v| v["config_hash"] == hash.as_str())) {
        // An older layout of the same config is simply recomputed.
        if let (Ok(couplings), Ok(n_predictions)) = (read_back(&cpath), num_rows(&ppath)) {
            if !nnqft_report::read_section(data, "fit").is_some_and(|s| s.config_hash == hash) {
                nnqft_report::write_section(data, "fit", &hash, &section(p, &couplings))?;
            }
            return Ok(Outputs { couplings, predictions: Vec::new(), n_predictions, up_to_date: true });
        }
    }
    let want: Vec<(String, usize)> = p.fit.run.iter().flat_map(|r| run_widths(p, r).into_iter().map(move |w| (r.arch.clone(), w))).collect();
    let devs = load_deviations(p, data, &want)?;
    let six = p.moments.orders.contains(&6);
    let mut couplings = Vec::new();
    let mut predictions = Vec::new();
    let progress = nnqft_cli::Progress::new("fit", p.fit.run.len() as u64, "runs");
    for r in &p.fit.run {
        let arch = p.arch(&r.arch).expect("validated");
        let tpl = templates_for(arch, r.cutoff, r.propagator, six)?;
        let whole = if arch.activation == Activation::Gauss { Some(templates_for(arch, f64::INFINITY, Propagator::Weight, six)?) } else { None };
        for w in run_widths(p, r) {
            let dev = &devs[&(r.arch.clone(), w)];
            let mut out = fit_run(p, r, w, dev, &tpl, whole.as_ref())?;
            for c in &mut out.couplings {
                mark_unreliable(c, dev);
            }
            couplings.extend(out.couplings);
            predictions.extend(out.predictions);
        }
        progress.inc(1);
    }
    progress.finish();
    let footer = serde_json::json!({
        "stage": "fit",
        "pipeline": p.name,
        "seed": p.seed,
        "config_hash": hash,
        "version": nnqft_core::VERSION,
        "sources": {
            "moments.parquet": read_footer(&data.join("moments.parquet"))?["config_hash"],
            "moments_bags.parquet": read_footer(&data.join("moments_bags.parquet"))?["config_hash"],
        },
    });
    write_couplings(&cpath, &couplings, &footer)?;
    write_predictions(&ppath, &predictions, &footer)?;
    nnqft_report::write_section(data, "fit", &hash, &section(p, &couplings))?;
    Ok(Outputs { couplings, n_predictions: predictions.len(), predictions, up_to_date: false })
}
