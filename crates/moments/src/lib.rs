//! # nnqft-moments
//!
//! The `moments` stage (docs/physics.md §3 and 4): reduce the sample parts
//! to n-point functions per bag, average over bags with errors, and put every
//! tuple beside its Gaussian-process value and the exact finite-width
//! prediction. Writes `moments.parquet`, `moments_bags.parquet`,
//! `summary.parquet` and the plots.

pub mod layers;
pub mod plot;
pub mod reduce;
pub mod section;
pub mod symmetry;

use anyhow::Result;
use nnqft_core::exact::{Accuracy, ExactTheory};
use nnqft_core::means::MeanTheory;
use nnqft_core::variance::EstimatorVariance;
use nnqft_core::tuples::tuples;
use nnqft_core::{Activation, Pipeline};
use nnqft_store::tables::Table;
pub use nnqft_stats::{mean_std, ols_slope};
use nnqft_stats::jackknife;
use rayon::prelude::*;
use reduce::{Reduced, reduce_all};
use std::path::Path;

/// How to run the stage.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Recompute cached reductions and rewrite every output.
    pub force: bool,
}

/// One tuple of one (arch, width): a row of `moments.parquet`.
#[derive(Clone, Debug, PartialEq)]
pub struct TupleRow {
    pub arch: String,
    pub width: usize,
    pub order: usize,
    pub tuple: Vec<usize>,
    /// Mean over bags of the bag means G^b.
    pub mean: f64,
    /// bag_std / sqrt(bags).
    pub stderr: f64,
    /// Standard deviation of G^b over bags (ddof 1).
    pub bag_std: f64,
    /// Wick sum of the analytic kernel.
    pub gp: f64,
    /// mean - gp.
    pub delta: f64,
    /// delta / gp.
    pub m: f64,
    /// bag_std / |gp|.
    pub background: f64,
    /// Exact finite-N G - G_GP (docs/physics.md §4); 0 for order 2.
    pub exact_delta: f64,
    /// exact_delta / gp.
    pub exact_m: f64,
    /// (delta - exact_delta) / stderr.
    pub z_exact: f64,
    /// Exact standard error of `mean` for the run's nets: sqrt(Var X_t / (bags nets_per_bag)) (docs/physics.md §10).
    pub exact_stderr: f64,
    /// Exact expected background: sqrt(Var X_t / nets_per_bag) / |gp|.
    pub exact_background: f64,
    /// (delta - exact_delta) / exact_stderr.
    pub z_exact_stderr: f64,
    /// bag_std over its exact value sqrt(Var X_t / nets_per_bag).
    pub spread_ratio: f64,
    /// Grubbs' statistic of the bag values (max |G^b - mean| / bag_std).
    pub grubbs: f64,
    /// Why the bag error bar of this tuple cannot be trusted; None when it can.
    pub unreliable: Option<String>,
}

/// A bag spread below this fraction of the exact one (and significantly so) marks a tuple unreliable.
pub const LOW_SPREAD: f64 = 0.5;
/// Significance of both per-tuple checks (low spread, Grubbs outlier bag).
pub const FLAG_ALPHA: f64 = 1e-3;

/// The reason a tuple's bag errors cannot be trusted, if any: the bag
/// spread far below its exact value (`spread_ratio < LOW_SPREAD`, with
/// probability below `FLAG_ALPHA` for Gaussian bags), or one bag that
/// dominates the spread (Grubbs' test at `FLAG_ALPHA`).
pub fn unreliable_reason(spread_ratio: f64, grubbs: (f64, f64), bags: usize) -> Option<String> {
    if spread_ratio < LOW_SPREAD && nnqft_stats::low_spread_p(spread_ratio, bags) < FLAG_ALPHA {
        return Some(format!("bag spread {spread_ratio:.2} of exact"));
    }
    if grubbs.0 > grubbs.1 {
        return Some(format!("one bag dominates (Grubbs {:.2} > {:.2})", grubbs.0, grubbs.1));
    }
    None
}

/// The rows of `moments.parquet` for one reduced (arch, width).
/// What a row is compared with: for centred parameters the exact theory
/// and the exact estimator variance; with parameter means the exact
/// moments of [`MeanTheory`] (docs/physics.md §12), whose estimator
/// variance is not implemented (the `exact_stderr` columns are NaN).
pub enum Theory {
    Centred(ExactTheory, EstimatorVariance),
    Means(MeanTheory),
}

impl Theory {
    /// The theory of `arch` for the n-point functions of `orders`.
    pub fn new(arch: &nnqft_core::ArchSpec, orders: &[usize]) -> Self {
        if arch.has_means() {
            return Theory::Means(MeanTheory::new(arch, orders, Accuracy::default()));
        }
        Theory::Centred(ExactTheory::for_orders(arch, orders, Accuracy::default()), EstimatorVariance::new(arch, orders, Accuracy::default()))
    }

    /// The Gaussian-process value of tuple `t`.
    pub fn gp(&self, t: &[usize]) -> f64 {
        match self {
            Theory::Centred(th, _) => th.gp(t),
            Theory::Means(th) => th.gp(t),
        }
    }

    /// Exact `G - G_GP` of tuple `t` at width `n`.
    pub fn delta(&self, t: &[usize], n: usize) -> f64 {
        match self {
            Theory::Centred(th, _) => th.delta(t, n),
            Theory::Means(th) => th.delta(t, n),
        }
    }
}

pub fn tuple_rows(p: &Pipeline, r: &Reduced, th: &Theory) -> Vec<TupleRow> {
    let arch = p.arch(&r.arch).expect("reduced arch is in the pipeline");
    let b = r.bags.len() as f64;
    let var = match th {
        Theory::Centred(_, ev) => Some(ev.at_width(r.width)),
        Theory::Means(_) => None,
    };
    let nets = p.sample.nets_per_bag as f64;
    let mut rows = Vec::new();
    for &order in &p.moments.orders {
        for (i, t) in tuples(arch.k(), order).into_iter().enumerate() {
            let vals: Vec<f64> = r.bags.iter().map(|bag| bag[&order][i]).collect();
            let (mean, bag_std) = mean_std(&vals);
            let stderr = bag_std / b.sqrt();
            let gp = th.gp(&t);
            let exact_delta = th.delta(&t, r.width);
            let delta = mean - gp;
            let exact_bag_std = var.as_ref().map_or(f64::NAN, |v| (v.var(&t) / nets).sqrt());
            let exact_stderr = exact_bag_std / b.sqrt();
            let spread_ratio = bag_std / exact_bag_std;
            let g = nnqft_stats::grubbs(&vals, FLAG_ALPHA);
            rows.push(TupleRow {
                arch: r.arch.clone(),
                width: r.width,
                order,
                tuple: t,
                mean,
                stderr,
                bag_std,
                gp,
                delta,
                m: ratio(delta, gp),
                background: ratio(bag_std, gp.abs()),
                exact_delta,
                exact_m: ratio(exact_delta, gp),
                z_exact: (delta - exact_delta) / stderr,
                exact_stderr,
                exact_background: ratio(exact_bag_std, gp.abs()),
                z_exact_stderr: (delta - exact_delta) / exact_stderr,
                spread_ratio,
                grubbs: g.0,
                unreliable: unreliable_reason(spread_ratio, g, r.bags.len()),
            });
        }
    }
    rows
}

/// One row of `summary.parquet`: per (arch, width, order).
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    pub arch: String,
    pub width: usize,
    pub order: usize,
    pub n_tuples: usize,
    pub mean_abs_m: f64,
    /// Delete-one-bag jackknife error of `mean_abs_m`.
    pub mean_abs_m_stderr: f64,
    pub mean_background: f64,
    pub mean_abs_exact_m: f64,
    /// sum over tuples of z_exact^2 (tuples are correlated: compare with n_tuples loosely).
    pub chi2_exact: f64,
    /// Log-log slope of mean_abs_m against N over the resolved widths (same for every width of an arch and order).
    pub slope_vs_n: f64,
    /// Jackknife (leave one bag out) standard error of slope_vs_n.
    pub slope_vs_n_stderr: f64,
    /// The same slope for mean_abs_exact_m over the same widths.
    pub exact_slope_vs_n: f64,
    /// Whether this width entered the slope fit (mean_abs_m > 3 mean_background / sqrt(bags),
    /// and at most half of its tuples unreliable).
    pub resolved: bool,
    pub note: Option<String>,
    /// Mean over tuples of exact_stderr.
    pub mean_exact_stderr: f64,
    /// Mean over tuples of exact_background.
    pub mean_exact_background: f64,
    /// mean_background / mean_exact_background: near 1 when the bag errors are honest.
    pub background_ratio: f64,
    /// Fraction of tuples with |mean - exact| within 1 exact_stderr (0.683 for honest Gaussian errors).
    pub coverage_1: f64,
    /// The same within 2 exact_stderr (0.954).
    pub coverage_2: f64,
    /// Tuples flagged unreliable.
    pub n_unreliable: usize,
}

/// mean over tuples of |mean_b G^b - gp| / |gp|, using only the bags in `keep`.
/// `x / gp`, NaN where `gp = 0`: a deviation relative to zero is undefined
/// (not infinite).
fn ratio(x: f64, gp: f64) -> f64 {
    if gp == 0.0 { f64::NAN } else { x / gp }
}

fn mean_abs_m(r: &Reduced, order: usize, gps: &[f64], keep: &[usize]) -> f64 {
    let n = keep.len() as f64;
    let sum: f64 = gps
        .iter()
        .enumerate()
        .map(|(i, gp)| {
            let mean = keep.iter().map(|&b| r.bags[b][&order][i]).sum::<f64>() / n;
            ((mean - gp) / gp).abs()
        })
        .sum();
    sum / gps.len() as f64
}

/// Summary rows for one arch (all widths, all orders).
pub fn summary_rows(p: &Pipeline, arch_name: &str, reduced: &[&Reduced], rows: &[TupleRow]) -> Vec<SummaryRow> {
    let arch = p.arch(arch_name).expect("arch in pipeline");
    let nb = p.sample.bags as usize;
    let all: Vec<usize> = (0..nb).collect();
    let mut out = Vec::new();
    for &order in &p.moments.orders {
        let per_width: Vec<(&Reduced, Vec<&TupleRow>)> = reduced
            .iter()
            .map(|r| (*r, rows.iter().filter(|t| t.width == r.width && t.order == order).collect()))
            .collect();
        let stats: Vec<(f64, f64, f64, f64)> = per_width
            .iter()
            .map(|(_, ts)| {
                let n = ts.len() as f64;
                (
                    ts.iter().map(|t| t.m.abs()).sum::<f64>() / n,
                    ts.iter().map(|t| t.background).sum::<f64>() / n,
                    ts.iter().map(|t| t.exact_m.abs()).sum::<f64>() / n,
                    ts.iter().map(|t| t.z_exact * t.z_exact).sum::<f64>(),
                )
            })
            .collect();
        let flagged: Vec<usize> = per_width.iter().map(|(_, ts)| ts.iter().filter(|t| t.unreliable.is_some()).count()).collect();
        let trusted: Vec<bool> = per_width.iter().zip(&flagged).map(|((_, ts), &f)| 2 * f <= ts.len()).collect();
        let above: Vec<bool> = stats.iter().map(|s| order > 2 && s.0 > 3.0 * s.1 / (nb as f64).sqrt()).collect();
        let resolved: Vec<bool> = above.iter().zip(&trusted).map(|(a, t)| *a && *t).collect();
        let sel: Vec<usize> = (0..per_width.len()).filter(|&i| resolved[i]).collect();
        let (mut slope, mut slope_se, mut exact_slope) = (f64::NAN, f64::NAN, f64::NAN);
        if sel.len() >= 2 && nb >= 2 {
            let x: Vec<f64> = sel.iter().map(|&i| (per_width[i].0.width as f64).ln()).collect();
            let gps: Vec<Vec<f64>> = sel.iter().map(|&i| per_width[i].1.iter().map(|t| t.gp).collect()).collect();
            let fit = |keep: &[usize]| -> f64 {
                let y: Vec<f64> = sel.iter().zip(&gps).map(|(&i, g)| mean_abs_m(per_width[i].0, order, g, keep).ln()).collect();
                ols_slope(&x, &y)
            };
            slope = fit(&all);
            slope_se = jackknife(nb, fit).1;
            exact_slope = ols_slope(&x, &sel.iter().map(|&i| stats[i].2.ln()).collect::<Vec<_>>());
        }
        let n_distrusted = trusted.iter().filter(|t| !**t).count();
        let distrust = (n_distrusted > 0).then(|| {
            format!(
                "{n_distrusted} of {} widths have most tuples flagged unreliable (bag errors far below the exact ones, docs/physics.md §10): left out of the slope",
                trusted.len()
            )
        });
        let note = match (arch.activation, order) {
            // output means add E f(x_a) E f(x_b), whose fluctuations over the N units are 1/N (docs/physics.md §12)
            (_, 2) if arch.mu_w_out == 0.0 => Some("two-point function is exactly the GP kernel at every width: m_2 is noise".to_string()),
            _ if distrust.is_some() && arch.activation == Activation::Gauss => {
                Some(format!("gauss-net: lognormal output tails; {}", distrust.clone().expect("some")))
            }
            _ if distrust.is_some() => distrust.clone(),
            (Activation::Gauss, 6) => Some(
                "gauss-net: lognormal output tails; the 6-point function needs far more nets than erf or relu for the same relative error"
                    .to_string(),
            ),
            _ if sel.len() < 2 => Some("fewer than 2 widths resolved above background: no slope".to_string()),
            _ => None,
        };
        for (i, ((r, ts), s)) in per_width.iter().zip(&stats).enumerate() {
            let gps: Vec<f64> = ts.iter().map(|t| t.gp).collect();
            let mean_abs_m_stderr = jackknife(nb, |keep| mean_abs_m(r, order, &gps, keep)).1;
            let n = ts.len() as f64;
            let mean_of = |f: fn(&TupleRow) -> f64| ts.iter().map(|t| f(t)).sum::<f64>() / n;
            // NaN when the exact standard errors are unknown (parameter means)
            let within = |k: f64| {
                if ts.iter().any(|t| t.z_exact_stderr.is_nan()) {
                    return f64::NAN;
                }
                ts.iter().filter(|t| t.z_exact_stderr.abs() <= k).count() as f64 / n
            };
            let mean_exact_background = mean_of(|t| t.exact_background);
            out.push(SummaryRow {
                arch: arch_name.to_string(),
                width: r.width,
                order,
                n_tuples: ts.len(),
                mean_abs_m: s.0,
                mean_abs_m_stderr,
                mean_background: s.1,
                mean_abs_exact_m: s.2,
                chi2_exact: if order == 2 { f64::NAN } else { s.3 },
                slope_vs_n: slope,
                slope_vs_n_stderr: slope_se,
                exact_slope_vs_n: exact_slope,
                resolved: resolved[i],
                note: note.clone(),
                mean_exact_stderr: mean_of(|t| t.exact_stderr),
                mean_exact_background,
                background_ratio: s.1 / mean_exact_background,
                coverage_1: within(1.0),
                coverage_2: within(2.0),
                n_unreliable: flagged[i],
            });
        }
    }
    out
}

/// What a run produced.
#[derive(Default)]
pub struct Outputs {
    pub rows: Vec<TupleRow>,
    pub summary: Vec<SummaryRow>,
    pub reduced: Vec<Reduced>,
    pub cached: usize,
    /// Per-layer rows of the deep archs (`layers.parquet`).
    pub layers: Vec<layers::LayerRow>,
    /// The symmetry tests (`symmetry.parquet`, `symmetry_tests.parquet`).
    pub symmetry: symmetry::Outputs,
}

/// Runs the stage: reduce (or load cached), compare with theory, write
/// tables and plots. Single-hidden-layer archs go to `moments.parquet` and
/// friends; deep archs (`hidden_layers > 1`) to `layers.parquet` and
/// `plots/layers.{png,svg}`. A table with no arch of its kind is not written.
pub fn run(p: &Pipeline, data: &Path, opts: &Options) -> Result<Outputs> {
    if let Some((i, a)) = p.sample.arch.iter().enumerate().find(|(_, a)| a.hidden_layers > 1 && a.has_means()) {
        anyhow::bail!(
            "sample.arch[{i}] ({}): a deep net with parameter means (mu_w, mu_b, mu_w_out, mu_b_out) is sampled, but the layer theory of the moments stage is for centred parameters only",
            a.name
        );
    }
    if !data.join("samples").is_dir() && !data.is_dir() {
        anyhow::bail!("{}: no samples/ here; run nnqft-sample for pipeline {:?} first", data.display(), p.name);
    }
    // The lock first: a sampler that holds it may not have made samples/ yet.
    let lock = nnqft_store::lock::DirLock::acquire(data, "nnqft-moments", false)?;
    if let Some(prev) = &lock.recovered_from {
        eprintln!("nnqft-moments: note: {} was held by a run that is gone ({prev}); recovered", lock.path().display());
    }
    if !data.join("samples").is_dir() {
        anyhow::bail!("{}: no samples/ here; run nnqft-sample for pipeline {:?} first", data.display(), p.name);
    }
    // The same rule as every stage: no table from data the pipeline as configured now does not produce.
    let stale = nnqft_store::samples::stale_entries(p, data)?;
    if !stale.is_empty() {
        anyhow::bail!("{}", nnqft_store::samples::stale_message(p, &stale, "run nnqft-sample --force to remove stale data"));
    }
    let mut shallow = p.clone();
    shallow.sample.arch.retain(|a| a.hidden_layers == 1);
    let mut out = if shallow.sample.arch.is_empty() {
        Outputs::default()
    } else {
        run_single_layer(&shallow, data, opts)?
    };
    if p.deep_archs().next().is_some() {
        out.layers = run_layers(p, data, opts)?;
    }
    out.symmetry = symmetry::run(p, data, opts.force)?;
    // The figures this run wrote (a figure left over from an earlier config is not shown).
    let wrote = |stem: &str, ran: bool| ran && data.join("plots").join(format!("{stem}.png")).is_file();
    let plots: Vec<&str> = [("moments_vs_width", !out.summary.is_empty()), ("deviations_hist", !out.summary.is_empty()), ("layers", !out.layers.is_empty())]
        .into_iter()
        .filter(|&(stem, ran)| wrote(stem, ran))
        .map(|(stem, _)| stem)
        .collect();
    let symmetry_plots: Vec<String> = p.symmetry.test.iter().map(|t| format!("symmetry_{}", t.name)).filter(|s| wrote(s, true)).collect();
    let plots: Vec<&str> = plots.into_iter().chain(symmetry_plots.iter().map(String::as_str)).collect();
    nnqft_report::write_section(data, "moments", &nnqft_report::moments_hash(p), &section::markdown(p, &out, &plots))?;
    Ok(out)
}

/// Every table and figure this stage writes exists and records the config
/// hash the pipeline as configured now gives, and every sample part is in
/// place: nothing to recompute.
///
/// The binary checks this first and says "up to date" (the library's
/// [`run`] always recomputes from the cache, for callers that want the rows).
pub fn up_to_date(p: &Pipeline, data: &Path) -> bool {
    let mut shallow = p.clone();
    shallow.sample.arch.retain(|a| a.hidden_layers == 1);
    let current = |files: &[&str], plot: &str, want: &str| {
        data.join("plots").join(plot).is_file()
            && files.iter().all(|f| nnqft_store::tables::read_footer(&data.join(f)).is_ok_and(|j| j["config_hash"].as_str() == Some(want)))
    };
    let single = shallow.sample.arch.is_empty()
        || current(&["moments.parquet", "moments_bags.parquet", "summary.parquet"], "moments_vs_width.png", &reduce::tables_hash(&shallow, false));
    let deep = p.deep_archs().next().is_none() || current(&["layers.parquet", "layers_bags.parquet", "layer_moments.parquet"], "layers.png", &reduce::tables_hash(p, true));
    // No stale samples, and every part still there and this config's (footers only: cheap).
    let samples = || {
        use nnqft_store::plan::{State, expected_meta, plan, state};
        nnqft_store::samples::stale_entries(p, data).is_ok_and(|s| s.is_empty())
            && plan(p).par_iter().all(|u| {
                let want = expected_meta(p, u);
                let path = nnqft_store::samples::part_path(data, &want.arch.name, u.width, u.bag, u.part);
                matches!(state(&path, &want, false), State::Done)
            })
    };
    let section = nnqft_report::read_section(data, "moments").is_some_and(|s| s.config_hash == nnqft_report::moments_hash(p));
    single && deep && symmetry::up_to_date(p, data) && section && samples()
}

/// The deep archs: reduce per layer, write `layers.parquet` and its plot.
fn run_layers(p: &Pipeline, data: &Path, opts: &Options) -> Result<Vec<layers::LayerRow>> {
    for a in p.deep_archs() {
        let dir = layers::cache_path(data, &a.name, 0).parent().expect("cache dir").to_path_buf();
        nnqft_store::atomic::clean_stale_temps(&dir, None)?;
    }
    let reduced = layers::reduce_layers(p, data, opts.force)?;
    let exact: Vec<_> = reduced.iter().map(|r| layers::chains(p.arch(&r.arch).expect("arch"), r.width)).collect();
    let rows: Vec<layers::LayerRow> =
        reduced.iter().zip(&exact).flat_map(|(r, ex)| layers::layer_rows(p.arch(&r.arch).expect("arch"), r, ex, p.sample.nets_per_bag)).collect();
    let footer = serde_json::json!({
        "stage": "moments",
        "pipeline": p.name,
        "seed": p.seed,
        "config_hash": reduce::tables_hash(p, true),
        "version": nnqft_core::VERSION,
        "sources": reduced.iter().map(|r| serde_json::json!({"arch": r.arch, "width": r.width, "reduce_key": r.key})).collect::<Vec<_>>(),
    });
    layers::write_layers(&data.join("layers.parquet"), &rows, &footer)?;
    layers::write_layer_bags(&data.join("layers_bags.parquet"), p, &reduced, &footer)?;
    let moment_rows: Vec<layers::LayerMomentRow> =
        reduced.iter().zip(&exact).flat_map(|(r, ex)| layers::layer_moment_rows(p.arch(&r.arch).expect("arch"), r, ex)).collect();
    layers::write_layer_moments(&data.join("layer_moments.parquet"), &moment_rows, &footer)?;
    plot::write_layer_plots(data, &rows)?;
    Ok(rows)
}

/// An arch whose exact theory takes longer than this gets a note saying why.
const SLOW_THEORY_SECS: f64 = 3.0;

/// The single-hidden-layer archs (`p` holds only those).
fn run_single_layer(p: &Pipeline, data: &Path, opts: &Options) -> Result<Outputs> {
    // Temporary files of killed runs: outputs, plots, cache.
    let mut dirs = vec![data.to_path_buf(), data.join("plots")];
    for a in &p.sample.arch {
        dirs.push(reduce::cache_path(data, &a.name, 0).parent().expect("cache dir").to_path_buf());
    }
    for d in dirs {
        nnqft_store::atomic::clean_stale_temps(&d, None)?;
    }
    // The exact theory first (seconds of quadrature per arch), with its own progress, so that
    // the reading bar ends when the stage is nearly done.
    let progress = nnqft_cli::Progress::new(&format!("exact theory {}", p.name), p.sample.arch.len() as u64, "archs");
    let timed: Vec<(Theory, f64)> = p
        .sample
        .arch
        .par_iter()
        .map(|a| {
            let start = std::time::Instant::now();
            let th = Theory::new(a, &p.moments.orders);
            progress.inc(1);
            (th, start.elapsed().as_secs_f64())
        })
        .collect();
    progress.finish();
    for (a, (_, secs)) in p.sample.arch.iter().zip(&timed) {
        if *secs > SLOW_THEORY_SECS {
            eprintln!(
                "nnqft-moments: note: the exact theory of {} took {secs:.1} s (quadrature over the d_in + 1 = {} parameters of one unit for orders {:?} and twice them for the estimator variance); it is computed once per run",
                a.name,
                a.d_in + 1,
                p.moments.orders
            );
        }
    }
    let theories: Vec<Theory> = timed.into_iter().map(|(th, _)| th).collect();
    let (reduced, cached) = reduce_all(p, data, opts.force)?;
    let mut rows = Vec::new();
    let mut summary = Vec::new();
    for (ai, arch) in p.sample.arch.iter().enumerate() {
        let mine: Vec<&Reduced> = reduced.iter().filter(|r| r.arch == arch.name).collect();
        let arch_rows: Vec<TupleRow> = mine.par_iter().flat_map_iter(|r| tuple_rows(p, r, &theories[ai])).collect();
        summary.extend(summary_rows(p, &arch.name, &mine, &arch_rows));
        rows.extend(arch_rows);
    }
    let footer = footer(p, &reduced);
    write_tables(p, data, &rows, &summary, &reduced, &footer)?;
    let curves = exact_curves(p, &theories);
    plot::write_plots(data, p, &summary, &curves)?;
    plot::write_deviation_hist(data, p, &rows)?;
    Ok(Outputs { rows, summary, reduced, cached, ..Outputs::default() })
}

/// mean |exact_m| of orders 4 and 6 at ~60 widths between the pipeline's
/// smallest and largest, for the plot's theory lines.
fn exact_curves(p: &Pipeline, theories: &[Theory]) -> Vec<plot::Curve> {
    let mut out = Vec::new();
    for (arch, th) in p.sample.arch.iter().zip(theories) {
        let ws = p.widths_of(arch);
        let (lo, hi) = (*ws.iter().min().expect("widths"), *ws.iter().max().expect("widths"));
        let mut ns: Vec<usize> = (0..=60).map(|i| ((lo as f64).ln() + (hi as f64 / lo as f64).ln() * i as f64 / 60.0).exp().round() as usize).collect();
        ns.dedup();
        for &order in p.moments.orders.iter().filter(|&&o| o > 2) {
            let ts = tuples(arch.k(), order);
            let gps: Vec<f64> = ts.iter().map(|t| th.gp(t)).collect();
            let points = ns
                .par_iter()
                .map(|&n| {
                    let s: f64 = ts.iter().zip(&gps).map(|(t, gp)| (th.delta(t, n) / gp).abs()).sum();
                    (n as f64, s / ts.len() as f64)
                })
                .collect();
            out.push(plot::Curve { arch: arch.name.clone(), order, points });
        }
    }
    out
}

/// Footer of every output: pipeline, a config hash over all inputs, and
/// the samples' config hashes (which determine the sample bytes).
fn footer(p: &Pipeline, reduced: &[Reduced]) -> serde_json::Value {
    let sources: Vec<serde_json::Value> = reduced
        .iter()
        .map(|r| {
            let a = p.arch(&r.arch).expect("arch");
            serde_json::json!({"arch": r.arch, "width": r.width, "sample_config_hash": p.sample_hash(a, r.width), "reduce_key": r.key})
        })
        .collect();
    serde_json::json!({
        "stage": "moments",
        "pipeline": p.name,
        "seed": p.seed,
        "config_hash": reduce::tables_hash(p, false),
        "version": nnqft_core::VERSION,
        "sources": sources,
    })
}

fn write_tables(p: &Pipeline, data: &Path, rows: &[TupleRow], summary: &[SummaryRow], reduced: &[Reduced], footer: &serde_json::Value) -> Result<()> {
    let tup = |t: &[usize]| t.iter().map(|&a| a as u16).collect::<Vec<u16>>();
    let mut t = Table::default();
    t.utf8("arch", rows.iter().map(|r| r.arch.clone()).collect())
        .u32("width", rows.iter().map(|r| r.width as u32).collect())
        .u8("order", rows.iter().map(|r| r.order as u8).collect())
        .list_u16("tuple", &rows.iter().map(|r| tup(&r.tuple)).collect::<Vec<_>>());
    let cols: [(&str, fn(&TupleRow) -> f64); 16] = [
        ("mean", |r| r.mean),
        ("stderr", |r| r.stderr),
        ("bag_std", |r| r.bag_std),
        ("gp", |r| r.gp),
        ("delta", |r| r.delta),
        ("m", |r| r.m),
        ("background", |r| r.background),
        ("exact_delta", |r| r.exact_delta),
        ("exact_m", |r| r.exact_m),
        ("z_exact", |r| r.z_exact),
        ("exact_delta_over_stderr", |r| r.exact_delta / r.stderr),
        ("exact_stderr", |r| r.exact_stderr),
        ("exact_background", |r| r.exact_background),
        ("z_exact_stderr", |r| r.z_exact_stderr),
        ("spread_ratio", |r| r.spread_ratio),
        ("grubbs", |r| r.grubbs),
    ];
    for (name, f) in cols {
        t.f64(name, rows.iter().map(f).collect());
    }
    t.u8("unreliable", rows.iter().map(|r| r.unreliable.is_some() as u8).collect())
        .opt_utf8("unreliable_reason", rows.iter().map(|r| r.unreliable.clone()).collect());
    t.write(&data.join("moments.parquet"), footer)?;

    let mut b = Table::default();
    let (mut arch, mut width, mut order, mut tuple, mut bag, mut value) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for r in reduced {
        let k = p.arch(&r.arch).expect("arch").k();
        for &o in &p.moments.orders {
            for (i, t) in tuples(k, o).iter().enumerate() {
                for (bi, bg) in r.bags.iter().enumerate() {
                    arch.push(r.arch.clone());
                    width.push(r.width as u32);
                    order.push(o as u8);
                    tuple.push(tup(t));
                    bag.push(bi as u32);
                    value.push(bg[&o][i]);
                }
            }
        }
    }
    b.utf8("arch", arch).u32("width", width).u8("order", order).list_u16("tuple", &tuple).u32("bag", bag).f64("value", value);
    b.write(&data.join("moments_bags.parquet"), footer)?;

    let mut s = Table::default();
    s.utf8("arch", summary.iter().map(|r| r.arch.clone()).collect())
        .u32("width", summary.iter().map(|r| r.width as u32).collect())
        .u8("order", summary.iter().map(|r| r.order as u8).collect())
        .u32("n_tuples", summary.iter().map(|r| r.n_tuples as u32).collect())
        .f64("mean_abs_m", summary.iter().map(|r| r.mean_abs_m).collect())
        .f64("mean_abs_m_stderr", summary.iter().map(|r| r.mean_abs_m_stderr).collect())
        .f64("mean_background", summary.iter().map(|r| r.mean_background).collect())
        .f64("mean_abs_exact_m", summary.iter().map(|r| r.mean_abs_exact_m).collect())
        .f64("chi2_exact", summary.iter().map(|r| r.chi2_exact).collect())
        .f64("slope_vs_N", summary.iter().map(|r| r.slope_vs_n).collect())
        .f64("slope_vs_N_stderr", summary.iter().map(|r| r.slope_vs_n_stderr).collect())
        .f64("exact_slope_vs_N", summary.iter().map(|r| r.exact_slope_vs_n).collect())
        .u8("resolved", summary.iter().map(|r| r.resolved as u8).collect())
        .opt_utf8("note", summary.iter().map(|r| r.note.clone()).collect())
        .f64("mean_exact_stderr", summary.iter().map(|r| r.mean_exact_stderr).collect())
        .f64("mean_exact_background", summary.iter().map(|r| r.mean_exact_background).collect())
        .f64("background_ratio", summary.iter().map(|r| r.background_ratio).collect())
        .f64("coverage_1", summary.iter().map(|r| r.coverage_1).collect())
        .f64("coverage_2", summary.iter().map(|r| r.coverage_2).collect())
        .u32("n_unreliable", summary.iter().map(|r| r.n_unreliable as u32).collect());
    s.write(&data.join("summary.parquet"), footer)
}


/// The summary as a text table (printed by the binary).
pub fn format_summary(summary: &[SummaryRow]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<14} {:>5} {:>6} {:>11} {:>11} {:>11} {:>11} {:>8} {:>5} {:>9}",
        "arch", "order", "width", "mean|m|", "exact|m|", "background", "exact bg", "chi2/n", "cov1", "unreliable"
    );
    let mut last: Option<(&str, usize)> = None;
    for r in summary {
        if let Some((a, o)) = last
            && (a, o) != (r.arch.as_str(), r.order)
        {
            push_slope(&mut s, summary, a, o);
        }
        last = Some((&r.arch, r.order));
        let _ = writeln!(
            s,
            "{:<14} {:>5} {:>6} {:>11.3e} {:>11.3e} {:>11.3e} {:>11.3e} {:>8.2} {:>5.2} {:>9}",
            r.arch,
            r.order,
            r.width,
            r.mean_abs_m,
            r.mean_abs_exact_m,
            r.mean_background,
            r.mean_exact_background,
            r.chi2_exact / r.n_tuples as f64,
            r.coverage_1,
            if r.n_unreliable == 0 { "-".to_string() } else { format!("{}/{}", r.n_unreliable, r.n_tuples) }
        );
    }
    if let Some((a, o)) = last {
        push_slope(&mut s, summary, a, o);
    }
    s
}

fn push_slope(s: &mut String, summary: &[SummaryRow], arch: &str, order: usize) {
    use std::fmt::Write;
    let rows: Vec<&SummaryRow> = summary.iter().filter(|r| r.arch == arch && r.order == order).collect();
    let r = rows[0];
    if r.slope_vs_n.is_finite() {
        let ws: Vec<String> = rows.iter().filter(|r| r.resolved).map(|r| r.width.to_string()).collect();
        let _ = writeln!(
            s,
            "  {arch} n={order}: slope of mean|m| vs N = {:.3} +- {:.3} (exact {:.3}) over widths {}",
            r.slope_vs_n,
            r.slope_vs_n_stderr,
            r.exact_slope_vs_n,
            ws.join(",")
        );
    }
    if let Some(note) = &r.note {
        let _ = writeln!(s, "  {arch} n={order}: note: {note}");
    }
}
