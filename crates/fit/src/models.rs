//! The models: the linear least-squares fit of couplings to templates,
//! M0-M3, lambda_bar and the 6-point prediction of one run and width, and
//! the seed-001 u4/u6 rows.

use crate::*;
use anyhow::Result;
use linear::Design;
use nnqft_core::boxint::{Propagator, Templates};
use nnqft_core::pipeline::FitRun;
use nnqft_core::tuples::{pair_quad_splits, tuples};
use nnqft_deviations::{seed001_estimates, Deviations, Estimate};
use nnqft_stats::stderr;
use nnqft_core::{Activation, ArchSpec, Pipeline};

/// Above this, condition x quadrature error makes a fit meaningless.
pub const MAX_COND_TIMES_QUAD_ERR: f64 = 1e-2;

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

pub(crate) fn median(v: &[f64]) -> f64 {
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
pub(crate) fn set_metrics(r: &mut CouplingRow, pred: &[f64], meas: &[f64], exact: &[f64], train: &[bool]) {
    (r.train_mse, r.test_mse, r.test_mape) = metrics(pred, meas, train);
    (_, r.test_mse_exact, r.test_mape_exact) = metrics(pred, exact, train);
}

/// The kernel-integral templates one fit run needs, keyed for reuse.
pub(crate) fn templates_for(arch: &ArchSpec, cutoff: f64, prop: Propagator, six: bool) -> Result<Templates> {
    Templates::new(arch, cutoff, prop, six).map_err(|e| anyhow::anyhow!("{}: {e}", arch.name))
}

/// Everything the stage computes for one fit run and width.
pub struct RunOutput {
    pub couplings: Vec<CouplingRow>,
    pub predictions: Vec<PredictionRow>,
}

/// A hint for the classic degenerate case (docs/physics.md §5).
pub(crate) fn degeneracy_hint(arch: &ArchSpec) -> Option<&'static str> {
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
                // The lambda-dependent part of G6 - G6_GP (docs/physics.md §5).
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
pub(crate) fn seed001(run: &FitRun, width: usize, arch: &ArchSpec, dev: &Deviations, w: &Templates) -> Result<Vec<CouplingRow>> {
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
