//! # nnqft-fit
//!
//! The fit stage (THEORY.md sections 5 and 6): from the measured 4- and
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
pub mod seed;

use anyhow::Result;
use arrow::array::{Array, Float64Array, StringArray, UInt32Array, UInt8Array};
use linear::Design;
use nnqft_core::boxint::{Propagator, Templates};
use nnqft_core::pipeline::FitRun;
use nnqft_core::rng::sha256_hex;
use nnqft_core::tuples::{pair_quad_splits, tuples};
use nnqft_cli::{fmt_g, fmt_pm};
pub use nnqft_deviations::{load_deviations, require_inputs, seed001_estimates, Deviations, Estimate};
pub use nnqft_stats::stderr;
use nnqft_core::{Activation, ArchSpec, Pipeline};
use nnqft_store::tables::{column, num_rows, read_footer, read_table, Table};
use std::path::Path;

/// Version of the fit; enters the config hash.
pub const FIT_VERSION: u32 = 2;

/// Above this, condition x quadrature error makes a fit meaningless.
pub const MAX_COND_TIMES_QUAD_ERR: f64 = 1e-2;

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub force: bool,
}

/// One row of `couplings.parquet`.
#[derive(Clone, Debug, PartialEq)]
pub struct CouplingRow {
    pub arch: String,
    pub width: usize,
    pub cutoff: f64,
    pub propagator: &'static str,
    /// M0-M3 (order 4); lambda_bar (order 4); M0, M1, M1+kappa (order 6); u4, u6.
    pub model: String,
    pub order: usize,
    /// (lambda0, lambda2, lambda_nl); NaN when not identifiable.
    pub coef: [f64; 3],
    pub coef_stderr: [f64; 3],
    pub exact_coef: [f64; 3],
    /// The single coupling of lambda_bar, M1+kappa (kappa), u4 and u6 rows.
    pub value: f64,
    pub value_stderr: f64,
    pub exact_value: f64,
    pub train_mse: f64,
    pub test_mse: f64,
    /// Percent.
    pub test_mape: f64,
    /// Test MSE and MAPE (percent) against the exact finite-N deviation.
    pub test_mse_exact: f64,
    pub test_mape_exact: f64,
    pub chi2_dof: f64,
    pub condition: f64,
    pub identifiable: bool,
    pub n_train: usize,
    pub n_test: usize,
    pub argmin_rel_diff: f64,
    pub quad_rel_err: f64,
    /// How far the measured signal of this row's order stands above the
    /// bags' noise: sum |G - G_GP| / sum stderr over the train (test)
    /// tuples; about 0.8 for pure noise. NaN for an empty set.
    pub signal_train: f64,
    pub signal_test: f64,
    /// Both signals at least [`SIGNAL_MIN`]: only then do the couplings and
    /// test errors measure the interaction rather than the noise.
    pub resolved: bool,
    pub note: Option<String>,
}

/// The signal-to-noise ratio below which a fit's data are called unresolved
/// (the moments stage's rule: mean |m| > 3 x its standard error).
pub const SIGNAL_MIN: f64 = 3.0;

/// sum |meas| / sum se over the tuples with `train[i] == want` (NaN if none).
pub fn signal(meas: &[f64], se: &[f64], train: &[bool], want: bool) -> f64 {
    let (mut a, mut b) = (0.0, 0.0);
    for i in (0..meas.len()).filter(|&i| train[i] == want) {
        a += meas[i].abs();
        b += se[i];
    }
    if b > 0.0 { a / b } else { f64::NAN }
}

impl CouplingRow {
    fn new(run: &FitRun, width: usize, model: &str, order: usize) -> Self {
        CouplingRow {
            arch: run.arch.clone(),
            width,
            cutoff: run.cutoff,
            propagator: run.propagator.name(),
            model: model.to_string(),
            order,
            coef: [f64::NAN; 3],
            coef_stderr: [f64::NAN; 3],
            exact_coef: [f64::NAN; 3],
            value: f64::NAN,
            value_stderr: f64::NAN,
            exact_value: f64::NAN,
            train_mse: f64::NAN,
            test_mse: f64::NAN,
            test_mape: f64::NAN,
            test_mse_exact: f64::NAN,
            test_mape_exact: f64::NAN,
            chi2_dof: f64::NAN,
            condition: f64::NAN,
            identifiable: true,
            n_train: 0,
            n_test: 0,
            argmin_rel_diff: f64::NAN,
            quad_rel_err: f64::NAN,
            signal_train: f64::NAN,
            signal_test: f64::NAN,
            resolved: true,
            note: None,
        }
    }
}

/// One row of `predictions.parquet`.
#[derive(Clone, Debug, PartialEq)]
pub struct PredictionRow {
    pub arch: String,
    pub width: usize,
    pub cutoff: f64,
    pub propagator: &'static str,
    pub model: String,
    pub order: usize,
    pub tuple: Vec<usize>,
    pub train: bool,
    pub measured: f64,
    pub measured_stderr: f64,
    pub predicted: f64,
    pub exact: f64,
}

/// The three quartic templates of a sorted 4-tuple.
pub fn quartic_templates(tpl: &Templates, t: &[usize]) -> [f64; 3] {
    [-24.0 * tpl.prod(t), -24.0 * tpl.prod4_y2(t), -8.0 * tpl.nonlocal(t)]
}

/// Names of the coefficients.
pub const COEF_NAMES: [&str; 3] = ["lambda0", "lambda2", "lambda_nl"];

/// A linear model fitted to train tuples: coefficients from the mean data
/// (argmin), bag errors from one closed-form fit per bag, and the same fit
/// to the exact finite-N data.
#[derive(Clone, Debug)]
pub struct ModelFit {
    pub coef: Vec<f64>,
    pub stderr: Vec<f64>,
    pub exact: Vec<f64>,
    /// Per-bag coefficients.
    pub bags: Vec<Vec<f64>>,
    pub condition: f64,
    pub identifiable: bool,
    pub why: Option<String>,
    pub rel_diff: f64,
    pub chi2_dof: f64,
}

/// Inputs of [`fit_linear`]: templates and targets over all tuples of one order.
pub struct LinearProblem<'a> {
    /// `cols[j][i]`: template j at tuple i.
    pub cols: &'a [Vec<f64>],
    pub names: &'a [&'a str],
    /// Targets per bag, their mean and the exact finite-N target.
    pub bags: &'a [Vec<f64>],
    pub mean: &'a [f64],
    pub exact: &'a [f64],
    pub sigma: &'a [f64],
    pub train: &'a [bool],
    pub max_condition: f64,
    pub quad_rel_err: f64,
    /// Appended to the explanation of a degenerate fit.
    pub hint: Option<&'a str>,
}

/// Fits the problem on its train tuples.
pub fn fit_linear(lp: &LinearProblem) -> Result<ModelFit> {
    let idx: Vec<usize> = (0..lp.train.len()).filter(|&i| lp.train[i]).collect();
    let pick = |v: &[f64]| idx.iter().map(|&i| v[i]).collect::<Vec<f64>>();
    let floor = 1e-3 * median(&pick(lp.sigma));
    let sigma: Vec<f64> = pick(lp.sigma).into_iter().map(|s| if s > floor { s } else { floor.max(f64::MIN_POSITIVE) }).collect();
    let cols: Vec<Vec<f64>> = lp.cols.iter().map(|c| pick(c)).collect();
    let design = Design::new(&cols, &sigma);
    let condition = design.condition();
    let mut why = None;
    if !(condition <= lp.max_condition) || condition * lp.quad_rel_err > MAX_COND_TIMES_QUAD_ERR {
        let dir = design.weakest_direction();
        let involved: Vec<&str> = dir.iter().zip(lp.names).filter(|(v, _)| v.abs() > 0.1).map(|(_, n)| *n).collect();
        let mut s = if condition * lp.quad_rel_err > MAX_COND_TIMES_QUAD_ERR && condition <= lp.max_condition {
            format!(
                "condition {condition:.1e} x quadrature error {:.0e} > {MAX_COND_TIMES_QUAD_ERR}: {} cannot be separated at this integration accuracy",
                lp.quad_rel_err,
                involved.join(", ")
            )
        } else {
            format!(
                "templates of {} are collinear on the {} train tuples (condition {condition:.1e} > {:.0e}): they cannot be told apart",
                involved.join(", "),
                idx.len(),
                lp.max_condition
            )
        };
        if let Some(h) = lp.hint {
            s.push_str("; ");
            s.push_str(h);
        }
        why = Some(s);
    }
    let fit = design.fit(&pick(lp.mean))?;
    let bags: Vec<Vec<f64>> = lp.bags.iter().map(|b| design.lsq(&pick(b))).collect();
    let stderr = (0..lp.cols.len()).map(|j| stderr(&bags.iter().map(|b| b[j]).collect::<Vec<_>>())).collect();
    let exact = design.lsq(&pick(lp.exact));
    let dof = idx.len().saturating_sub(lp.cols.len()).max(1);
    Ok(ModelFit {
        coef: fit.coef,
        stderr,
        exact,
        bags,
        condition,
        identifiable: why.is_none(),
        why,
        rel_diff: fit.rel_diff,
        chi2_dof: fit.chi2 / dof as f64,
    })
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() { 0.0 } else { s[s.len() / 2] }
}

/// (train MSE, test MSE, test MAPE in percent) of predictions against
/// measurements (or any reference).
///
/// ```
/// let (tr, te, mape) = nnqft_fit::metrics(&[1.0, 2.0, 3.0], &[1.0, 2.5, 2.0], &[true, false, false]);
/// assert_eq!((tr, te), (0.0, (0.25 + 1.0) / 2.0));
/// assert!((mape - 100.0 * (0.2 + 0.5) / 2.0).abs() < 1e-12);
/// ```
pub fn metrics(pred: &[f64], meas: &[f64], train: &[bool]) -> (f64, f64, f64) {
    let mse = |want: bool| {
        let v: Vec<f64> = (0..pred.len()).filter(|&i| train[i] == want).map(|i| (pred[i] - meas[i]).powi(2)).collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    // Tuples whose reference vanishes (to rounding: exact zeros by symmetry)
    // have no relative error; they are left out of the MAPE.
    let big = meas.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let test: Vec<usize> = (0..pred.len()).filter(|&i| !train[i] && meas[i].abs() > 1e-12 * big).collect();
    let mape = 100.0 * test.iter().map(|&i| ((pred[i] - meas[i]) / meas[i]).abs()).sum::<f64>() / test.len().max(1) as f64;
    (mse(true), mse(false), mape)
}

/// Sets the MSE/MAPE columns of `r`: against the measurement and against
/// the exact finite-N deviation.
fn set_metrics(r: &mut CouplingRow, pred: &[f64], meas: &[f64], exact: &[f64], train: &[bool]) {
    (r.train_mse, r.test_mse, r.test_mape) = metrics(pred, meas, train);
    (_, r.test_mse_exact, r.test_mape_exact) = metrics(pred, exact, train);
}

/// The kernel-integral templates one fit run needs, keyed for reuse.
fn templates_for(arch: &ArchSpec, cutoff: f64, prop: Propagator, six: bool) -> Result<Templates> {
    Templates::new(arch, cutoff, prop, six).map_err(|e| anyhow::anyhow!("{}: {e}", arch.name))
}

/// Everything the stage computes for one fit run and width.
pub struct RunOutput {
    pub couplings: Vec<CouplingRow>,
    pub predictions: Vec<PredictionRow>,
}

/// A hint for the classic degenerate case (THEORY section 5).
fn degeneracy_hint(arch: &ArchSpec) -> Option<&'static str> {
    let positive = arch.inputs.iter().all(|x| x[0] > 0.0) || arch.inputs.iter().all(|x| x[0] < 0.0);
    (arch.activation == Activation::Relu && arch.sigma_b == 0.0 && arch.d_in == 1 && positive)
        .then_some("relu with sigma_b = 0 in d = 1: every template is proportional to prod x_a")
}

/// Fits M0-M3, lambda_bar, the 6-point prediction and (gauss) u4/u6 for one
/// run and width.
pub fn fit_run(p: &Pipeline, run: &FitRun, width: usize, dev: &Deviations, tpl: &Templates, whole: Option<&Templates>) -> Result<RunOutput> {
    let arch = p.arch(&run.arch).expect("validated");
    let k = arch.k();
    let ts4 = tuples(k, 4);
    let train4: Vec<bool> = ts4.iter().map(|t| run.is_train(arch, t)).collect();
    let (mean4, se4, exact4) = (dev.mean(4), dev.stderr(4), dev.exact[&4].clone());
    let t4: Vec<[f64; 3]> = ts4.iter().map(|t| quartic_templates(tpl, t)).collect();
    // Each model is judged by the accuracy of the templates it uses.
    let quad_err = tpl.rel_err_of_order(4);
    let quad_err6 = tpl.rel_err_of_order(6);
    let n_train = train4.iter().filter(|&&b| b).count();
    let mut rows = Vec::new();
    let mut preds = Vec::new();
    let pred_rows = |model: &str, order: usize, ts: &[Vec<usize>], train: &[bool], meas: &[f64], se: &[f64], pred: &[f64], exact: &[f64]| -> Vec<PredictionRow> {
        (0..ts.len())
            .map(|i| PredictionRow {
                arch: run.arch.clone(),
                width,
                cutoff: run.cutoff,
                propagator: run.propagator.name(),
                model: model.to_string(),
                order,
                tuple: ts[i].clone(),
                train: train[i],
                measured: meas[i],
                measured_stderr: se[i],
                predicted: pred[i],
                exact: exact[i],
            })
            .collect()
    };
    let base = |model: &str, order: usize, n_train: usize, n_all: usize| {
        let mut r = CouplingRow::new(run, width, model, order);
        r.n_train = n_train;
        r.n_test = n_all - n_train;
        r.quad_rel_err = if order == 6 { quad_err.max(quad_err6) } else { quad_err };
        r
    };

    // M0: the free theory predicts no deviation.
    let zeros = vec![0.0; ts4.len()];
    let mut m0 = base("M0", 4, n_train, ts4.len());
    m0.coef = [0.0; 3];
    m0.coef_stderr = [0.0; 3];
    m0.exact_coef = [0.0; 3];
    set_metrics(&mut m0, &zeros, &mean4, &exact4, &train4);
    rows.push(m0);
    preds.extend(pred_rows("M0", 4, &ts4, &train4, &mean4, &se4, &zeros, &exact4));

    let bags4 = &dev.per_bag[&4];
    let mut m1_fit: Option<ModelFit> = None;
    for (model, p_count) in [("M1", 1usize), ("M2", 2), ("M3", 3)] {
        let cols: Vec<Vec<f64>> = (0..p_count).map(|j| t4.iter().map(|t| t[j]).collect()).collect();
        let fit = fit_linear(&LinearProblem {
            cols: &cols,
            names: &COEF_NAMES[..p_count],
            bags: bags4,
            mean: &mean4,
            exact: &exact4,
            sigma: &se4,
            train: &train4,
            max_condition: p.fit.max_condition,
            quad_rel_err: quad_err,
            hint: degeneracy_hint(arch),
        })?;
        let mut r = base(model, 4, n_train, ts4.len());
        r.condition = fit.condition;
        r.identifiable = fit.identifiable;
        r.argmin_rel_diff = fit.rel_diff;
        r.note = fit.why.clone();
        if fit.identifiable {
            for j in 0..3 {
                (r.coef[j], r.coef_stderr[j], r.exact_coef[j]) = if j < p_count { (fit.coef[j], fit.stderr[j], fit.exact[j]) } else { (0.0, 0.0, 0.0) };
            }
            let pred: Vec<f64> = t4.iter().map(|t| (0..p_count).map(|j| fit.coef[j] * t[j]).sum()).collect();
            set_metrics(&mut r, &pred, &mean4, &exact4, &train4);
            r.chi2_dof = fit.chi2_dof;
            preds.extend(pred_rows(model, 4, &ts4, &train4, &mean4, &se4, &pred, &exact4));
            if fit.rel_diff > 1e-6 {
                let msg = format!("argmin and the closed-form solution differ by {:.1e} (relative)", fit.rel_diff);
                r.note = Some(r.note.map_or(msg.clone(), |n| format!("{n}; {msg}")));
            }
        }
        if model == "M1" && fit.identifiable {
            m1_fit = Some(fit);
        }
        rows.push(r);
    }

    // lambda_bar: the mean over all tuples of lambda_m = -(G4 - G4_GP) / (24 int prod K).
    {
        let lam = |d: &[f64]| ts4.iter().zip(d).map(|(t, v)| -v / (24.0 * tpl.prod(t))).sum::<f64>() / ts4.len() as f64;
        let mut r = base("lambda_bar", 4, n_train, ts4.len());
        r.value = lam(&mean4);
        r.value_stderr = stderr(&bags4.iter().map(|b| lam(b)).collect::<Vec<_>>());
        r.exact_value = lam(&exact4);
        let pred: Vec<f64> = t4.iter().map(|t| r.value * t[0]).collect();
        set_metrics(&mut r, &pred, &mean4, &exact4, &train4);
        // lambda_m per tuple: measured (bag stderr), exact; "predicted" is lambda_bar.
        let lm = |i: usize, v: f64| -v / (24.0 * tpl.prod(&ts4[i]));
        let lm_mean: Vec<f64> = (0..ts4.len()).map(|i| lm(i, mean4[i])).collect();
        let lm_se: Vec<f64> = (0..ts4.len()).map(|i| stderr(&bags4.iter().map(|b| lm(i, b[i])).collect::<Vec<_>>())).collect();
        let lm_exact: Vec<f64> = (0..ts4.len()).map(|i| lm(i, exact4[i])).collect();
        preds.extend(pred_rows("lambda_m", 4, &ts4, &train4, &lm_mean, &lm_se, &vec![r.value; ts4.len()], &lm_exact));
        let sign_changes = ts4.iter().any(|t| tpl.prod(t) <= 0.0);
        if sign_changes {
            r.note = Some("int prod K is <= 0 for some tuples: lambda_m is ill-defined there".into());
        }
        rows.push(r);
    }

    // 6-point prediction from M1's lambda0 and a sextic kappa fitted on 6-point train tuples.
    if dev.per_bag.contains_key(&6) && !tpl.two_vertex.is_empty() {
        let ts6 = tuples(k, 6);
        let train6: Vec<bool> = ts6.iter().map(|t| run.is_train(arch, t)).collect();
        let n_train6 = train6.iter().filter(|&&b| b).count();
        let (mean6, se6, exact6) = (dev.mean(6), dev.stderr(6), dev.exact[&6].clone());
        let mut m0 = base("M0", 6, n_train6, ts6.len());
        let z6 = vec![0.0; ts6.len()];
        set_metrics(&mut m0, &z6, &mean6, &exact6, &train6);
        rows.push(m0);
        match &m1_fit {
            Some(m1) if n_train6 >= 1 => {
                let kmat = arch.kernel_matrix();
                // The lambda-dependent part of G6 - G6_GP (THEORY section 5).
                let offset = |lambda0: f64| -> Vec<f64> {
                    ts6.iter()
                        .map(|t| {
                            let disc: f64 = pair_quad_splits()
                                .iter()
                                .map(|&((a, b), q)| {
                                    let mut quad = [t[q[0]], t[q[1]], t[q[2]], t[q[3]]];
                                    quad.sort_unstable();
                                    kmat[t[a]][t[b]] * lambda0 * quartic_templates(tpl, &quad)[0]
                                })
                                .sum();
                            disc + 576.0 * lambda0 * lambda0 * tpl.two_vertex(t)
                        })
                        .collect()
                };
                let x6: Vec<f64> = ts6.iter().map(|t| -720.0 * tpl.prod(t)).collect();
                let sub = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x - y).collect::<Vec<f64>>();
                let off_mean = offset(m1.coef[0]);
                let bags6: Vec<Vec<f64>> = dev.per_bag[&6].iter().zip(&m1.bags).map(|(b, c)| sub(b, &offset(c[0]))).collect();
                let target = sub(&mean6, &off_mean);
                let exact_target = sub(&exact6, &offset(m1.exact[0]));
                let kfit = fit_linear(&LinearProblem {
                    cols: std::slice::from_ref(&x6),
                    names: &["kappa"],
                    bags: &bags6,
                    mean: &target,
                    exact: &exact_target,
                    sigma: &se6,
                    train: &train6,
                    max_condition: p.fit.max_condition,
                    quad_rel_err: quad_err6,
                    hint: None,
                })?;
                let mut r1 = base("M1", 6, n_train6, ts6.len());
                r1.coef = [m1.coef[0], 0.0, 0.0];
                r1.coef_stderr = [m1.stderr[0], 0.0, 0.0];
                r1.exact_coef = [m1.exact[0], 0.0, 0.0];
                set_metrics(&mut r1, &off_mean, &mean6, &exact6, &train6);
                r1.note = Some("kappa = 0: the 6-point function from lambda0 alone".into());
                preds.extend(pred_rows("M1", 6, &ts6, &train6, &mean6, &se6, &off_mean, &exact6));
                rows.push(r1);
                let mut rk = base("M1+kappa", 6, n_train6, ts6.len());
                rk.coef = [m1.coef[0], 0.0, 0.0];
                rk.coef_stderr = [m1.stderr[0], 0.0, 0.0];
                rk.exact_coef = [m1.exact[0], 0.0, 0.0];
                rk.value = kfit.coef[0];
                rk.value_stderr = kfit.stderr[0];
                rk.exact_value = kfit.exact[0];
                rk.condition = kfit.condition;
                rk.chi2_dof = kfit.chi2_dof;
                rk.argmin_rel_diff = kfit.rel_diff;
                let pred: Vec<f64> = off_mean.iter().zip(&x6).map(|(o, x)| o + kfit.coef[0] * x).collect();
                set_metrics(&mut rk, &pred, &mean6, &exact6, &train6);
                rk.note = Some(format!("two-vertex integral on {} nodes (rel. error {:.0e})", tpl.nodes_two_vertex, tpl.rel_err.get("two_vertex").copied().unwrap_or(f64::NAN)));
                preds.extend(pred_rows("M1+kappa", 6, &ts6, &train6, &mean6, &se6, &pred, &exact6));
                rows.push(rk);
            }
            _ => {
                let mut r = base("M1+kappa", 6, n_train6, ts6.len());
                r.identifiable = false;
                r.note = Some(if n_train6 == 0 { "no 6-point train tuples".into() } else { "M1 is not identifiable, so there is no lambda0 to predict with".into() });
                rows.push(r);
            }
        }
    }

    if let Some(w) = whole {
        rows.extend(seed001(run, width, arch, dev, w)?);
    }
    // Is each order's signal above the bags' noise? (Otherwise test errors rank noise.)
    for order in [4, 6] {
        if !dev.per_bag.contains_key(&order) {
            continue;
        }
        let train: Vec<bool> = tuples(k, order).iter().map(|t| run.is_train(arch, t)).collect();
        let (mean, se) = (dev.mean(order), dev.stderr(order));
        let (st, ss) = (signal(&mean, &se, &train, true), signal(&mean, &se, &train, false));
        for r in rows.iter_mut().filter(|r| r.order == order) {
            (r.signal_train, r.signal_test) = (st, ss);
            r.resolved = st >= SIGNAL_MIN && (ss >= SIGNAL_MIN || ss.is_nan());
        }
    }
    Ok(RunOutput { couplings: rows, predictions: preds })
}

/// The u4 / u6 rows of couplings.parquet.
fn seed001(run: &FitRun, width: usize, arch: &ArchSpec, dev: &Deviations, w: &Templates) -> Result<Vec<CouplingRow>> {
    let (e4, e6) = seed001_estimates(arch, dev, w);
    let row = |model: &str, order: usize, e: &Estimate, note: &str| {
        let mut r = CouplingRow::new(run, width, model, order);
        r.cutoff = f64::INFINITY;
        r.propagator = Propagator::Weight.name();
        r.quad_rel_err = w.max_rel_err();
        (r.value, r.value_stderr, r.exact_value) = (e.mean, e.stderr(), e.exact);
        r.note = Some(note.into());
        r
    };
    let mut out = vec![row("u4", 4, &e4, "u4 = -(G4 - G4_GP) / N_K, N_K = int_{R^d} prod K_W; mean over all 4-point tuples")];
    if let Some(e6) = e6 {
        out.push(row("u6", 6, &e6, "u6 = (u4^2 sum_10 int int K_W^3 K_W K_W^3 - kappa6) / int prod_6 K_W; mean over all 6-point tuples"));
    }
    Ok(out)
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
        "fit": p.fit,
        "archs": p.fit.run.iter().map(|r| p.arch(&r.arch)).collect::<Vec<_>>(),
        "reduce_keys": keys,
    });
    sha256_hex(key.to_string().as_bytes())
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
            let out = fit_run(p, r, w, &devs[&(r.arch.clone(), w)], &tpl, whole.as_ref())?;
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
    Ok(Outputs { couplings, n_predictions: predictions.len(), predictions, up_to_date: false })
}

fn write_couplings(path: &Path, rows: &[CouplingRow], footer: &serde_json::Value) -> Result<()> {
    let mut t = Table::default();
    t.utf8("arch", rows.iter().map(|r| r.arch.clone()).collect())
        .u32("width", rows.iter().map(|r| r.width as u32).collect())
        .f64("cutoff", rows.iter().map(|r| r.cutoff).collect())
        .utf8("propagator", rows.iter().map(|r| r.propagator.to_string()).collect())
        .utf8("model", rows.iter().map(|r| r.model.clone()).collect())
        .u8("order", rows.iter().map(|r| r.order as u8).collect());
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
        .opt_utf8("note", rows.iter().map(|r| r.note.clone()).collect());
    t.write(path, footer)
}

fn write_predictions(path: &Path, rows: &[PredictionRow], footer: &serde_json::Value) -> Result<()> {
    let mut t = Table::default();
    t.utf8("arch", rows.iter().map(|r| r.arch.clone()).collect())
        .u32("width", rows.iter().map(|r| r.width as u32).collect())
        .f64("cutoff", rows.iter().map(|r| r.cutoff).collect())
        .utf8("propagator", rows.iter().map(|r| r.propagator.to_string()).collect())
        .utf8("model", rows.iter().map(|r| r.model.clone()).collect())
        .u8("order", rows.iter().map(|r| r.order as u8).collect())
        .list_u16("tuple", &rows.iter().map(|r| r.tuple.iter().map(|&a| a as u16).collect()).collect::<Vec<_>>())
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
            (r.n_train, r.n_test) = (n_train.value(i) as usize, n_test.value(i) as usize);
            r.note = (!note.is_null(i)).then(|| note.value(i).to_string());
            out.push(r);
        }
    }
    Ok(out)
}

/// The coupling table, shaped like the seed's (model, couplings, test MAPE,
/// MSE), with the seed's published values beside ours.
pub fn format_table(p: &Pipeline, rows: &[CouplingRow]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let mut groups: Vec<(String, usize, u64, &str)> = Vec::new();
    for r in rows {
        let g = (r.arch.clone(), r.width, r.cutoff.to_bits(), r.propagator);
        if r.order == 4 && r.model.starts_with('M') && !groups.contains(&g) {
            groups.push(g);
        }
    }
    for (arch, width, cut, prop) in groups {
        let cutoff = f64::from_bits(cut);
        let act = p.arch(&arch).map(|a| a.activation);
        let mine: Vec<&CouplingRow> = rows.iter().filter(|r| r.arch == arch && r.width == width && (r.cutoff.to_bits() == cut || r.model.starts_with('u'))).collect();
        let n = mine.first().map_or((0, 0), |r| (r.n_train, r.n_test));
        let _ = writeln!(s, "\n{arch}  N = {width}  L = {cutoff}  propagator {prop}  ({} train / {} test 4-point tuples; MAPE in %)", n.0, n.1);
        // The seed's numbers only beside a run of the seed's own protocol.
        let protocol = p.arch(&arch).map_or(Err("arch not in the pipeline".to_string()), |a| seed::seed_match(a, width, cutoff));
        let seed_rows = match (&protocol, act) {
            (Ok(_), Some(act)) => seed::seed_rows(act),
            _ => &[],
        };
        let seed_cols = |a: &str, b: &str, c: &str| if protocol.is_ok() { format!(" | {a:<28} {b:>7} {c:>8}") } else { String::new() };
        let unresolved = |order: usize| mine.iter().find(|r| r.order == order && !r.resolved).map(|r| (r.signal_train, r.signal_test));
        if let Some((st, ss)) = unresolved(4) {
            let _ = writeln!(
                s,
                "  4-point signal NOT resolved above the bags' noise: sum |G4 - G4_GP| / sum stderr = {} (train), {} (test), below {SIGNAL_MIN}; the couplings and test errors measure noise, so the models are not ranked (the signal grows as sqrt(nets) / N: more nets or a smaller N)",
                fmt_g(st),
                fmt_g(ss)
            );
        }
        let _ = writeln!(
            s,
            "  {:<9} {:<20} {:<20} {:<20} {:>9} {:>9} {:>9} {:>8}{}",
            "model", "lambda0", "lambda2", "lambda_nl", "test MAPE", "test MSE", "MAPE(ex)", "cond", seed_cols("seed (l0, l2, lNL)", "MAPE", "MSE")
        );
        let noise4 = unresolved(4).is_some();
        for r in mine.iter().filter(|r| r.order == 4 && r.model.starts_with('M')) {
            let seed = seed_rows.iter().find(|x| x.model == r.model);
            let seed_txt = seed.map_or(String::new(), |x| {
                format!("({}, {}, {})", fmt_g(x.couplings.0), fmt_g(x.couplings.1), fmt_g(x.couplings.2))
            });
            let (sm, sq) = seed.map_or((String::new(), String::new()), |x| (fmt_g(x.mape), fmt_g(x.mse)));
            let (a, b, c) = if r.identifiable {
                (fmt_pm(r.coef[0], r.coef_stderr[0]), fmt_pm(r.coef[1], r.coef_stderr[1]), fmt_pm(r.coef[2], r.coef_stderr[2]))
            } else {
                ("not identifiable".into(), "-".into(), "-".into())
            };
            let _ = writeln!(
                s,
                "  {:<9} {:<20} {:<20} {:<20} {:>9} {:>9} {:>9} {:>8}{}",
                r.model,
                a,
                b,
                c,
                if noise4 { "noise".into() } else { fmt_g(r.test_mape) },
                if noise4 { "noise".into() } else { fmt_g(r.test_mse) },
                fmt_g(r.test_mape_exact),
                fmt_g(r.condition),
                seed_cols(&seed_txt, &sm, &sq)
            );
        }
        for r in mine.iter().filter(|r| !(r.order == 4 && r.model.starts_with('M'))) {
            let what = match r.model.as_str() {
                "lambda_bar" => format!("lambda_bar = {}  (exact {})", fmt_pm(r.value, r.value_stderr), fmt_g(r.exact_value)),
                "M1+kappa" if r.identifiable => format!(
                    "6-point from lambda0 + kappa: kappa = {} (exact {}), test MAPE {} MSE {} (vs exact: MAPE {})",
                    fmt_pm(r.value, r.value_stderr),
                    fmt_g(r.exact_value),
                    fmt_g(r.test_mape),
                    fmt_g(r.test_mse),
                    fmt_g(r.test_mape_exact)
                ),
                "M1" => format!("6-point from lambda0 alone: test MAPE {} MSE {} (vs exact: MAPE {})", fmt_g(r.test_mape), fmt_g(r.test_mse), fmt_g(r.test_mape_exact)),
                "M0" => format!("6-point, free theory: test MAPE {} MSE {}", fmt_g(r.test_mape), fmt_g(r.test_mse)),
                "u4" | "u6" => format!("{} = {}  (exact {}; K_W over R^d)", r.model, fmt_pm(r.value, r.value_stderr), fmt_g(r.exact_value)),
                _ => format!("{}: {}", r.model, r.note.clone().unwrap_or_default()),
            };
            let _ = writeln!(s, "  {what}");
        }
        if let Some((st, ss)) = unresolved(6) {
            let _ = writeln!(s, "  6-point signal not resolved above the bags' noise ({} train, {} test, below {SIGNAL_MIN}): the 6-point lines above measure noise", fmt_g(st), fmt_g(ss));
        }
        for r in mine.iter().filter(|r| !r.identifiable) {
            let _ = writeln!(s, "  {} {}-point: {}", r.model, r.order, r.note.clone().unwrap_or_default());
        }
        match protocol {
            Ok(sp) => {
                let _ = writeln!(s, "  seed: same protocol (d_in = 1, sigma_w = {}, sigma_b = {}, the seed's inputs, N = {}, L = {}); its code fitted raw G4, swapped train/test and (relu) kept a bias, so the numbers need not agree; our sign follows lambda_m = -(G4 - G4_GP) / (24 int prod K).", sp.sigma_w, sp.sigma_b, sp.width, sp.cutoff);
            }
            Err(why) => {
                let _ = writeln!(s, "  no seed reference: {why}.");
            }
        }
    }
    s
}
