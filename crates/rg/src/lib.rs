//! # nnqft-rg
//!
//! The rg stage (THEORY.md sections 6 and 7): how the couplings run with
//! the cutoff L (lambda_bar(L) on the box `[-L, L]^d`) and with sigma_W
//! (u4, u6 of seed 001), log-log slopes by weighted least squares with
//! errors from the bags, side by side with the exact finite-N values and
//! the seeds' claims. Writes `flow.parquet`, `slopes.parquet`, `report.md`
//! and `plots/rg_*.{png,svg}`.

pub mod layers;

use anyhow::{anyhow, Result};
use nnqft_core::boxint::{quartic_integrals, Propagator, Templates};
use nnqft_core::rng::sha256_hex;
use nnqft_core::tuples::tuples;
use nnqft_core::{Activation, ArchSpec, Pipeline};
pub use nnqft_stats::{wls_line, wls_slope};
use nnqft_deviations::{load_deviations, seed001_estimates, Deviations, Estimate};
use nnqft_plot::{write_panels, Panel, Series};
use nnqft_store::tables::{read_footer, Table};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Version of the rg stage; enters the config hash.
pub const RG_VERSION: u32 = 1;

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub force: bool,
}

/// One row of `flow.parquet`: a coupling at one scale.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowRow {
    pub arch: String,
    pub d_in: usize,
    pub width: usize,
    /// "cutoff" or "sigma_w".
    pub kind: &'static str,
    pub propagator: &'static str,
    /// L or sigma_W.
    pub scale: f64,
    /// "lambda_bar", "u4", "u6".
    pub coupling: &'static str,
    pub value: f64,
    pub stderr: f64,
    pub exact: f64,
    /// Largest estimated relative quadrature error of the integrals.
    pub quad_rel_err: f64,
}

/// One row of `slopes.parquet`.
#[derive(Clone, Debug, PartialEq)]
pub struct SlopeRow {
    /// The arch (cutoff flow) or the family's first arch (sigma_W flow).
    pub arch: String,
    pub d_in: usize,
    pub width: usize,
    pub kind: &'static str,
    pub propagator: &'static str,
    pub coupling: &'static str,
    /// "slope" (d log|coupling| / d log scale) or "amplitude" (N lambda_bar L^(d+4), relu).
    pub quantity: &'static str,
    /// "all" (every valid scale) or "tail" (the largest third of the scales).
    pub range: &'static str,
    pub slope: f64,
    pub stderr: f64,
    /// The same fit to the exact finite-N couplings (THEORY section 4).
    pub exact: f64,
    /// What THEORY says the slope tends to (NaN where it says nothing).
    pub asymptotic: f64,
    /// What the seed claims (NaN where it claims nothing).
    pub seed_claim: f64,
    pub n_points: usize,
    pub note: Option<String>,
}

/// A fitted log-log slope of a coupling against a scale.
#[derive(Clone, Debug, PartialEq)]
pub struct Slope {
    pub slope: f64,
    pub stderr: f64,
    pub exact: f64,
    pub n_points: usize,
    pub note: Option<String>,
    /// The fit over the largest third of the scales, when the exact local
    /// slope is not constant: (slope, stderr, exact, n).
    pub tail: Option<(f64, f64, f64, usize)>,
}

/// Local exact slopes that vary by more than this make "the slope" ill-defined.
pub const CONSTANT_SLOPE_TOL: f64 = 0.05;

/// d log|coupling| / d log scale from (scale, estimate) points, weighted by
/// the bags' errors; the error is the spread of the per-bag slopes. Points
/// where the coupling is undefined (NaN) are dropped; if the exact coupling
/// changes sign, only the points after the last sign change are fitted and
/// the note says so; if the exact local slope is not constant, the note says
/// how it runs and a tail fit is added.
pub fn log_slope(scales: &[f64], est: &[Estimate]) -> Slope {
    let mut idx: Vec<usize> = (0..scales.len()).filter(|&i| est[i].mean.is_finite() && est[i].exact.is_finite() && est[i].exact != 0.0).collect();
    let mut notes = Vec::new();
    if let Some(last) = idx.windows(2).filter(|w| est[w[0]].exact.signum() != est[w[1]].exact.signum()).map(|w| w[1]).last() {
        notes.push(format!(
            "the exact coupling changes sign below scale {}: fitted from there on only",
            scales[last]
        ));
        idx.retain(|&i| i >= last);
    }
    let fit = |idx: &[usize]| -> (f64, f64, f64) {
        let x: Vec<f64> = idx.iter().map(|&i| scales[i].ln()).collect();
        let w: Vec<f64> = idx
            .iter()
            .map(|&i| {
                let se = est[i].stderr();
                if se > 0.0 && se.is_finite() { (est[i].mean / se).powi(2) } else { 1.0 }
            })
            .collect();
        let y = |v: &dyn Fn(usize) -> f64| idx.iter().map(|&i| v(i).abs().ln()).collect::<Vec<f64>>();
        let slope = wls_slope(&x, &y(&|i| est[i].mean), &w);
        let exact = wls_slope(&x, &y(&|i| est[i].exact), &w);
        let bags = est.first().map_or(0, |e| e.bags.len());
        let per_bag: Vec<f64> = (0..bags).map(|b| wls_slope(&x, &y(&|i| est[i].bags[b]), &w)).filter(|s| s.is_finite()).collect();
        (slope, nnqft_stats::stderr(&per_bag), exact)
    };
    if idx.len() < 2 {
        notes.push("fewer than 2 scales with a defined coupling: no slope".into());
        return Slope { slope: f64::NAN, stderr: f64::NAN, exact: f64::NAN, n_points: idx.len(), note: Some(notes.join("; ")), tail: None };
    }
    let (slope, stderr, exact) = fit(&idx);
    let local: Vec<f64> = idx.windows(2).map(|w| (est[w[1]].exact.abs() / est[w[0]].exact.abs()).ln() / (scales[w[1]] / scales[w[0]]).ln()).collect();
    let (lo, hi) = local.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let mut tail = None;
    if hi - lo > CONSTANT_SLOPE_TOL {
        notes.push(format!(
            "slope not constant: exact local slope runs from {:.3} (scale {}) to {:.3} (scale {})",
            local[0],
            scales[idx[0]],
            local[local.len() - 1],
            scales[idx[idx.len() - 1]]
        ));
        let t: Vec<usize> = idx[idx.len() - (idx.len() / 3).max(2)..].to_vec();
        let (s, e, x) = fit(&t);
        tail = Some((s, e, x, t.len()));
    }
    Slope { slope, stderr, exact, n_points: idx.len(), note: (!notes.is_empty()).then(|| notes.join("; ")), tail }
}

/// THEORY section 7's asymptotic cutoff slope.
fn cutoff_asymptotic(arch: &ArchSpec, prop: Propagator) -> f64 {
    let d = arch.d_in as f64;
    match (arch.activation, prop) {
        (Activation::Relu, _) if arch.sigma_b == 0.0 => -(d + 4.0),
        (Activation::Gauss, Propagator::Weight) => 0.0,
        (Activation::Gauss | Activation::Erf, Propagator::Full) => -d,
        _ => f64::NAN,
    }
}

/// lambda_bar(L) of one arch and propagator at every cutoff, for every width.
pub struct CutoffResult {
    pub flow: Vec<FlowRow>,
    pub slopes: Vec<SlopeRow>,
}

fn slope_rows(base: &SlopeRow, s: &Slope) -> Vec<SlopeRow> {
    let mut out = vec![SlopeRow { slope: s.slope, stderr: s.stderr, exact: s.exact, n_points: s.n_points, note: s.note.clone(), ..base.clone() }];
    if let Some((sl, se, ex, n)) = s.tail {
        out.push(SlopeRow { range: "tail", slope: sl, stderr: se, exact: ex, n_points: n, note: Some("the largest third of the scales".into()), ..base.clone() });
    }
    out
}

/// The cutoff flow of one arch and propagator (THEORY section 7).
pub fn cutoff_flow(arch: &ArchSpec, prop: Propagator, cutoffs: &[f64], devs: &[(usize, &Deviations)]) -> Result<CutoffResult> {
    let ts = tuples(arch.k(), 4);
    let integrals: Vec<(Vec<f64>, f64)> =
        cutoffs.par_iter().map(|&l| quartic_integrals(arch, l, prop)).collect::<Result<_, String>>().map_err(|e| anyhow!("{}: {e}", arch.name))?;
    let mut flow = Vec::new();
    let mut slopes = Vec::new();
    let d = arch.d_in as f64;
    for &(width, dev) in devs {
        let mut ests = Vec::new();
        for (li, &l) in cutoffs.iter().enumerate() {
            let (den, qerr) = &integrals[li];
            // lambda_m is undefined only where a denominator vanishes.
            let defined = den.iter().all(|&v| v != 0.0);
            let e = Estimate::of(dev, &[4], |dd| {
                if !defined {
                    return f64::NAN;
                }
                ts.iter().enumerate().map(|(i, _)| -dd[0][i] / (24.0 * den[i])).sum::<f64>() / ts.len() as f64
            });
            flow.push(FlowRow {
                arch: arch.name.clone(),
                d_in: arch.d_in,
                width,
                kind: "cutoff",
                propagator: prop.name(),
                scale: l,
                coupling: "lambda_bar",
                value: e.mean,
                stderr: e.stderr(),
                exact: e.exact,
                quad_rel_err: *qerr,
            });
            ests.push(e);
        }
        let base = SlopeRow {
            arch: arch.name.clone(),
            d_in: arch.d_in,
            width,
            kind: "cutoff",
            propagator: prop.name(),
            coupling: "lambda_bar",
            quantity: "slope",
            range: "all",
            slope: f64::NAN,
            stderr: f64::NAN,
            exact: f64::NAN,
            asymptotic: cutoff_asymptotic(arch, prop),
            seed_claim: if arch.activation == Activation::Relu { -(d + 4.0) } else { f64::NAN },
            n_points: 0,
            note: None,
        };
        // A denominator that changes sign between cutoffs crosses zero: lambda_m
        // has a pole there. Fit only above the last such cutoff.
        let last = integrals.len() - 1;
        let crossing = (0..last).rev().find(|&i| integrals[i].0.iter().zip(&integrals[last].0).any(|(a, b)| a.signum() != b.signum()));
        let start = crossing.map_or(0, |i| i + 1);
        let mut s = log_slope(&cutoffs[start..], &ests[start..]);
        if let Some(i) = crossing {
            let n = (0..ts.len()).filter(|&t| (0..=i).any(|j| integrals[j].0[t].signum() != integrals[last].0[t].signum())).count();
            let msg = format!(
                "int prod {} changes sign for {n} of {} tuples at L <= {}: lambda_bar passes through poles there and is fitted only for L > {}",
                prop.name(),
                ts.len(),
                cutoffs[i],
                cutoffs[i]
            );
            s.note = Some(s.note.map_or(msg.clone(), |n| format!("{msg}; {n}")));
        }
        slopes.extend(slope_rows(&base, &s));
        if arch.activation == Activation::Relu && arch.sigma_b == 0.0 {
            // The data-dependent part: N lambda_bar L^(d+4), constant in L.
            let amp: Vec<Estimate> = cutoffs
                .iter()
                .zip(&ests)
                .map(|(&l, e)| {
                    let f = width as f64 * l.powf(d + 4.0);
                    Estimate { mean: e.mean * f, bags: e.bags.iter().map(|b| b * f).collect(), exact: e.exact * f }
                })
                .collect();
            let n = amp.len() as f64;
            let mean = amp.iter().map(|a| a.mean).sum::<f64>() / n;
            let bags: Vec<f64> = (0..dev.bags()).map(|b| amp.iter().map(|a| a.bags[b]).sum::<f64>() / n).collect();
            let exact = amp.iter().map(|a| a.exact).sum::<f64>() / n;
            let closed = -12.5 / arch.sigma_w.powi(8);
            let note = if arch.d_in == 1 && arch.inputs.iter().all(|x| x[0] > 0.0) {
                format!("N lambda_bar L^{}; closed form (d = 1, x > 0): -12.5 / sw^8 = {closed}", d + 4.0)
            } else {
                format!("N lambda_bar L^{}, averaged over the cutoffs", d + 4.0)
            };
            slopes.push(SlopeRow {
                quantity: "amplitude",
                slope: mean,
                stderr: nnqft_stats::stderr(&bags),
                exact,
                asymptotic: f64::NAN,
                seed_claim: f64::NAN,
                n_points: amp.len(),
                note: Some(note),
                ..base.clone()
            });
        }
    }
    Ok(CutoffResult { flow, slopes })
}

/// The sigma_W flow of u4 and u6 (THEORY section 6) over `archs` (same
/// family, different sigma_W) at one width.
pub fn sigma_w_flow(archs: &[&ArchSpec], width: usize, devs: &[&Deviations], six: bool) -> Result<(Vec<FlowRow>, Vec<SlopeRow>)> {
    let whole: Vec<Templates> = archs
        .par_iter()
        .map(|a| Templates::new(a, f64::INFINITY, Propagator::Weight, six))
        .collect::<Result<_, String>>()
        .map_err(|e| anyhow!("{e}"))?;
    let mut order: Vec<usize> = (0..archs.len()).collect();
    order.sort_by(|&a, &b| archs[a].sigma_w.total_cmp(&archs[b].sigma_w));
    let mut flow = Vec::new();
    let mut series: BTreeMap<&'static str, Vec<Estimate>> = BTreeMap::new();
    let sws: Vec<f64> = order.iter().map(|&i| archs[i].sigma_w).collect();
    for &i in &order {
        let (e4, e6) = seed001_estimates(archs[i], devs[i], &whole[i]);
        for (name, e) in [("u4", Some(e4)), ("u6", e6)] {
            let Some(e) = e else { continue };
            flow.push(FlowRow {
                arch: archs[i].name.clone(),
                d_in: archs[i].d_in,
                width,
                kind: "sigma_w",
                propagator: "K_W",
                scale: archs[i].sigma_w,
                coupling: name,
                value: e.mean,
                stderr: e.stderr(),
                exact: e.exact,
                quad_rel_err: whole[i].max_rel_err(),
            });
            series.entry(name).or_default().push(e);
        }
    }
    let d = archs[0].d_in as f64;
    let mut slopes = Vec::new();
    for (name, ests) in &series {
        let (claim, asym) = if *name == "u4" { (4.0 - d, d - 4.0) } else { (6.0 - 2.0 * d, d - 6.0) };
        let base = SlopeRow {
            arch: archs[order[0]].name.clone(),
            d_in: archs[0].d_in,
            width,
            kind: "sigma_w",
            propagator: "K_W",
            coupling: name,
            quantity: "slope",
            range: "all",
            slope: f64::NAN,
            stderr: f64::NAN,
            exact: f64::NAN,
            asymptotic: asym,
            seed_claim: claim,
            n_points: 0,
            note: None,
        };
        slopes.extend(slope_rows(&base, &log_slope(&sws, ests)));
    }
    Ok((flow, slopes))
}

/// What the stage did.
pub struct Outputs {
    pub flow: Vec<FlowRow>,
    pub slopes: Vec<SlopeRow>,
    pub up_to_date: bool,
}

/// Widths of a cutoff flow.
fn cutoff_widths(p: &Pipeline, c: &nnqft_core::pipeline::CutoffFlow) -> Vec<usize> {
    c.widths.clone().unwrap_or_else(|| p.widths_of(p.arch(&c.arch).expect("validated")).to_vec())
}

/// Widths of the sigma_W flow: configured, else those every listed arch has.
fn sigma_w_widths(p: &Pipeline) -> Vec<usize> {
    let Some(sw) = &p.rg.sigma_w else { return Vec::new() };
    sw.widths.clone().unwrap_or_else(|| {
        let first = p.widths_of(p.arch(&sw.archs[0]).expect("validated")).to_vec();
        first.into_iter().filter(|w| sw.archs.iter().all(|a| p.widths_of(p.arch(a).expect("validated")).contains(w))).collect()
    })
}

/// The config hash of the rg outputs.
pub fn rg_hash(p: &Pipeline) -> String {
    let mut keys = Vec::new();
    for c in &p.rg.cutoff {
        let a = p.arch(&c.arch).expect("validated");
        keys.extend(cutoff_widths(p, c).into_iter().map(|w| nnqft_store::keys::reduce_key(p, a, w)));
    }
    if let Some(sw) = &p.rg.sigma_w {
        for w in sigma_w_widths(p) {
            keys.extend(sw.archs.iter().map(|a| nnqft_store::keys::reduce_key(p, p.arch(a).expect("validated"), w)));
        }
    }
    for a in p.deep_archs() {
        keys.extend(p.widths_of(a).iter().map(|&w| format!("layers-{}", nnqft_store::keys::reduce_key(p, a, w))));
    }
    let key = serde_json::json!({"rg_version": RG_VERSION, "rg": p.rg, "reduce_keys": keys});
    sha256_hex(key.to_string().as_bytes())
}

/// Runs the stage.
pub fn run(p: &Pipeline, data: &Path, opts: &Options) -> Result<Outputs> {
    let coupling_flows = !p.rg.cutoff.is_empty() || p.rg.sigma_w.is_some();
    let deep = p.deep_archs().next().is_some();
    if !coupling_flows && !deep {
        return Ok(Outputs { flow: Vec::new(), slopes: Vec::new(), up_to_date: true });
    }
    // A deep-only pipeline has no moments.parquet: its input is layers_bags.parquet.
    let input = if coupling_flows { "moments.parquet" } else { "layers_bags.parquet" };
    let lock = nnqft_store::lock::DirLock::acquire_for_input(data, "nnqft-rg", input, "nnqft-moments")?;
    if let Some(prev) = &lock.recovered_from {
        eprintln!("nnqft-rg: note: {} was held by a run that is gone ({prev}); recovered", lock.path().display());
    }
    nnqft_store::atomic::clean_stale_temps(data, None)?;
    nnqft_store::atomic::clean_stale_temps(&data.join("plots"), None)?;
    // Inputs first, even when the outputs look up to date: one stale-data rule for every stage.
    if coupling_flows {
        nnqft_deviations::require_inputs(p, data)?;
    }
    if deep {
        let want = nnqft_store::keys::tables_hash(p, true);
        nnqft_store::tables::require_current(&data.join("layers_bags.parquet"), &want, &p.name, "nnqft-moments")?;
    }
    let hash = rg_hash(p);
    let outs = ["flow.parquet", "slopes.parquet", "report.md"].map(|f| data.join(f));
    let report_ok = std::fs::read_to_string(&outs[2]).is_ok_and(|t| t.contains(&hash));
    if !opts.force && report_ok && outs[..2].iter().all(|f| read_footer(f).is_ok_and(|v| v["config_hash"] == hash.as_str())) {
        return Ok(Outputs { flow: Vec::new(), slopes: Vec::new(), up_to_date: true });
    }
    let mut want: Vec<(String, usize)> = Vec::new();
    for c in &p.rg.cutoff {
        want.extend(cutoff_widths(p, c).into_iter().map(|w| (c.arch.clone(), w)));
    }
    if let Some(sw) = &p.rg.sigma_w {
        for w in sigma_w_widths(p) {
            want.extend(sw.archs.iter().map(|a| (a.clone(), w)));
        }
    }
    want.sort();
    want.dedup();
    let devs = if want.is_empty() { BTreeMap::new() } else { load_deviations(p, data, &want)? };
    let mut flow = Vec::new();
    let mut slopes = Vec::new();
    let total = p.rg.cutoff.iter().map(|c| c.propagators.len()).sum::<usize>() + sigma_w_widths(p).len();
    let progress = nnqft_cli::Progress::new("rg", total as u64, "flows");
    for c in &p.rg.cutoff {
        let arch = p.arch(&c.arch).expect("validated");
        let ws = cutoff_widths(p, c);
        let d: Vec<(usize, &Deviations)> = ws.iter().map(|&w| (w, &devs[&(c.arch.clone(), w)])).collect();
        for &prop in &c.propagators {
            let r = cutoff_flow(arch, prop, &p.rg.cutoffs, &d)?;
            flow.extend(r.flow);
            slopes.extend(r.slopes);
            progress.inc(1);
        }
    }
    if let Some(sw) = &p.rg.sigma_w {
        let archs: Vec<&ArchSpec> = sw.archs.iter().map(|a| p.arch(a).expect("validated")).collect();
        for w in sigma_w_widths(p) {
            let d: Vec<&Deviations> = sw.archs.iter().map(|a| &devs[&(a.clone(), w)]).collect();
            let (f, s) = sigma_w_flow(&archs, w, &d, p.moments.orders.contains(&6))?;
            flow.extend(f);
            slopes.extend(s);
            progress.inc(1);
        }
    }
    if deep {
        let (f, s) = layers::layer_flows(p, data)?;
        flow.extend(f);
        slopes.extend(s);
    }
    progress.finish();
    let mut sources = serde_json::Map::new();
    let inputs: &[&str] = match (coupling_flows, deep) {
        (true, true) => &["moments.parquet", "moments_bags.parquet", "layers_bags.parquet"],
        (true, false) => &["moments.parquet", "moments_bags.parquet"],
        _ => &["layers_bags.parquet"],
    };
    for f in inputs {
        sources.insert(f.to_string(), read_footer(&data.join(f))?["config_hash"].clone());
    }
    let footer = serde_json::json!({
        "stage": "rg",
        "pipeline": p.name,
        "seed": p.seed,
        "config_hash": hash,
        "version": nnqft_core::VERSION,
        "sources": sources,
    });
    write_flow(&outs[0], &flow, &footer)?;
    write_slopes(&outs[1], &slopes, &footer)?;
    let plots = write_rg_plots(data, &flow)?;
    let report = format_report(p, &flow, &slopes, &plots, &hash);
    nnqft_store::atomic::write_atomic(&outs[2], |f| {
        use std::io::Write;
        Ok(f.write_all(report.as_bytes())?)
    })?;
    Ok(Outputs { flow, slopes, up_to_date: false })
}

fn write_flow(path: &Path, rows: &[FlowRow], footer: &serde_json::Value) -> Result<()> {
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
        .f64("quad_rel_err", rows.iter().map(|r| r.quad_rel_err).collect());
    t.write(path, footer)
}

fn write_slopes(path: &Path, rows: &[SlopeRow], footer: &serde_json::Value) -> Result<()> {
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

/// `plots/rg_cutoff.{png,svg}` and `plots/rg_sigma_w.{png,svg}`; returns the stems written.
fn write_rg_plots(data: &Path, flow: &[FlowRow]) -> Result<Vec<String>> {
    let dir = data.join("plots");
    let mut written = Vec::new();
    let mut groups: Vec<(String, &str, usize)> = Vec::new();
    for r in flow.iter().filter(|r| r.kind == "cutoff") {
        let g = (r.arch.clone(), r.propagator, r.width);
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let panels: Vec<Panel> = groups
        .iter()
        .map(|(a, prop, w)| {
            let rows: Vec<&FlowRow> = flow.iter().filter(|r| r.kind == "cutoff" && &r.arch == a && r.propagator == *prop && r.width == *w).collect();
            Panel {
                title: format!("{a}, N = {w}, {prop}"),
                x: "cutoff L".into(),
                y: "|lambda_bar|".into(),
                series: vec![
                    Series { label: "measured".into(), points: rows.iter().map(|r| (r.scale, r.value.abs())).collect(), line: false, color: 0 },
                    Series { label: "exact finite N".into(), points: rows.iter().map(|r| (r.scale, r.exact.abs())).collect(), line: true, color: 1 },
                ],
            }
        })
        .collect();
    if !panels.is_empty() {
        write_panels(&dir, "rg_cutoff", &panels)?;
        written.push("rg_cutoff".to_string());
    }
    let sw: Vec<&FlowRow> = flow.iter().filter(|r| r.kind == "sigma_w").collect();
    if !sw.is_empty() {
        let mut widths: Vec<usize> = sw.iter().map(|r| r.width).collect();
        widths.dedup();
        let panels: Vec<Panel> = ["u4", "u6"]
            .iter()
            .filter(|c| sw.iter().any(|r| r.coupling == **c))
            .map(|c| Panel {
                title: format!("|{c}| against sigma_W"),
                x: "sigma_W".into(),
                y: format!("|{c}|"),
                series: widths
                    .iter()
                    .enumerate()
                    .flat_map(|(i, &w)| {
                        let rows: Vec<&&FlowRow> = sw.iter().filter(|r| r.coupling == *c && r.width == w).collect();
                        [
                            Series { label: format!("N = {w}"), points: rows.iter().map(|r| (r.scale, r.value.abs())).collect(), line: false, color: i },
                            Series { label: format!("exact N = {w}"), points: rows.iter().map(|r| (r.scale, r.exact.abs())).collect(), line: true, color: i },
                        ]
                    })
                    .collect(),
            })
            .collect();
        write_panels(&dir, "rg_sigma_w", &panels)?;
        written.push("rg_sigma_w".to_string());
    }
    let layer: Vec<&FlowRow> = flow.iter().filter(|r| r.kind == "layer").collect();
    if !layer.is_empty() {
        let mut archs: Vec<&str> = layer.iter().map(|r| r.arch.as_str()).collect();
        archs.dedup();
        let panels: Vec<Panel> = ["K", "kurtosis"]
            .iter()
            .map(|c| Panel {
                title: format!("{c} against the layer (largest width)"),
                x: "layer l".into(),
                y: c.to_string(),
                series: archs
                    .iter()
                    .enumerate()
                    .flat_map(|(i, a)| {
                        let w = layer.iter().filter(|r| r.arch == *a).map(|r| r.width).max().unwrap_or(0);
                        let rows: Vec<&&FlowRow> = layer.iter().filter(|r| r.arch == *a && r.width == w && r.coupling == *c).collect();
                        [
                            Series { label: format!("{a} n = {w}"), points: rows.iter().map(|r| (r.scale, r.value)).collect(), line: false, color: i },
                            Series { label: format!("{a} theory"), points: rows.iter().map(|r| (r.scale, r.exact)).collect(), line: true, color: i },
                        ]
                    })
                    .collect(),
            })
            .collect();
        write_panels(&dir, "rg_layers", &panels)?;
        written.push("rg_layers".to_string());
    }
    Ok(written)
}

use nnqft_cli::fmt_g as num;

/// `report.md`: every slope and amplitude with measured, exact, asymptotic
/// and seed values, and the plots.
pub fn format_report(p: &Pipeline, flow: &[FlowRow], slopes: &[SlopeRow], plots: &[String], hash: &str) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "# RG report: {}\n", p.name);
    if slopes.iter().any(|r| r.kind != "layer") {
        let _ = writeln!(
            s,
            "Slopes are d log|coupling| / d log scale by weighted least squares (weights from the bag errors); \
             stderr is the spread of the per-bag slopes / sqrt(bags). `exact` is the same fit to the couplings \
             computed from the exact finite-N deviations (THEORY section 4), `asymptotic` what THEORY sections 6-7 \
             say the slope tends to, `seed` what the seed talks claim. Nothing is tuned toward either.\n"
        );
    }
    for (kind, title) in [
        ("cutoff", "Cutoff flow: lambda_bar(L) (THEORY section 7)"),
        ("sigma_w", "sigma_W flow: u4, u6 (THEORY section 6, seed 001)"),
        ("layer", "Layer flow of deep nets: K and kurtosis against l (THEORY section 8, seed 002)"),
    ] {
        let rows: Vec<&SlopeRow> = slopes.iter().filter(|r| r.kind == kind).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(s, "## {title}\n");
        if kind == "layer" {
            let _ = writeln!(
                s,
                "Input point 0, unit 0's pre-activation at layer l (l = L + 1 is the output). `K recursion` and \
                 `recursion (1/n)` are THEORY section 8's recursions (infinite-width K, leading-order kurtosis \
                 3 v / K^2, v accumulated with each layer's width); `exact` is 3 [prod_(m<l) (1 + 5/n_m) - 1] \
                 (relu, C_b = 0). The last column compares with \
                 exact where known, else with the recursion.\n"
            );
            s.push_str(&layers::format_layer_table(p, flow));
            let _ = writeln!(
                s,
                "\nRates are d ln X / d l and exponents d ln X / d ln l by weighted least squares over the layers \
                 (kurtosis from l = 2); stderr from the per-bag fits; `exact` is the same fit to the theory values \
                 (exact relu kurtosis where known, else the recursion). The note compares how well an exponential \
                 and a power law describe the measurement.\n"
            );
        }
        let _ = writeln!(s, "| arch | d | N | propagator | coupling | quantity | range | measured | stderr | exact | asymptotic | seed | points | note |");
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for r in rows {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.arch,
                r.d_in,
                r.width,
                r.propagator,
                r.coupling,
                r.quantity,
                r.range,
                num(r.slope),
                num(r.stderr),
                num(r.exact),
                num(r.asymptotic),
                num(r.seed_claim),
                r.n_points,
                r.note.clone().unwrap_or_default().replace('|', "/")
            );
        }
        let stem = format!("rg_{kind}").replace("rg_layer", "rg_layers");
        if plots.iter().any(|p| *p == stem) {
            let _ = writeln!(s, "\n![{title}](plots/{stem}.png)\n");
        }
    }
    let _ = writeln!(s, "\n<!-- config_hash {hash} -->");
    s
}
