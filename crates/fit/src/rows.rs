//! The rows of `couplings.parquet` and `predictions.parquet`, and the
//! signal-to-noise statistic that decides whether a fit is resolved.

use nnqft_core::pipeline::FitRun;

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
    /// Tuples of this order whose bag errors the moments stage flagged
    /// unreliable (docs/physics.md §10): the error bars then understate.
    pub n_unreliable: usize,
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
    pub(crate) fn new(run: &FitRun, width: usize, model: &str, order: usize) -> Self {
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
            n_unreliable: 0,
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
