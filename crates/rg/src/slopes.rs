//! Log-log slopes of a coupling against a scale: weighted least squares,
//! per-bag errors, the exact column and the non-constant-slope check.

use crate::*;
use nnqft_stats::wls_slope;
use nnqft_deviations::Estimate;

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

pub(crate) fn slope_rows(base: &SlopeRow, s: &Slope) -> Vec<SlopeRow> {
    let mut out = vec![SlopeRow { slope: s.slope, stderr: s.stderr, exact: s.exact, n_points: s.n_points, note: s.note.clone(), ..base.clone() }];
    if let Some((sl, se, ex, n)) = s.tail {
        out.push(SlopeRow { range: "tail", slope: sl, stderr: se, exact: ex, n_points: n, note: Some("the largest third of the scales".into()), ..base.clone() });
    }
    out
}
