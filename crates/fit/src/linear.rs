//! Weighted linear least squares, twice: in closed form (SVD) and with
//! argmin (its conjugate-gradient solver on the normal equations, restarted
//! once for refinement), on a column-equilibrated design so that the
//! condition number measures identifiability rather than units.
//!
//! (argmin's L-BFGS with the More-Thuente line search was tried first: its
//! line search does not terminate once the quadratic's gradient is at
//! rounding level, so it cannot be driven to the 1e-8 agreement we check.)
//!
//! ```
//! use nnqft_fit::linear::Design;
//! // y = 2 a - 3 b on four points, unit errors.
//! let a = vec![1.0, 2.0, 3.0, 4.0];
//! let b = vec![1.0, -1.0, 2.0, 0.5];
//! let y: Vec<f64> = a.iter().zip(&b).map(|(a, b)| 2.0 * a - 3.0 * b).collect();
//! let d = Design::new(&[a, b], &[1.0; 4]);
//! let fit = d.fit(&y).unwrap();
//! assert!((fit.coef[0] - 2.0).abs() < 1e-10 && (fit.coef[1] + 3.0).abs() < 1e-10);
//! assert!(fit.rel_diff < 1e-8);
//! ```

use anyhow::{anyhow, Result};
use argmin::core::{Executor, Operator, State};
use argmin::solver::conjugategradient::ConjugateGradient;
use nalgebra::{DMatrix, DVector};

/// The weighted design `A_ij = X_ij / sigma_i`, columns scaled to unit norm.
#[derive(Clone, Debug)]
pub struct Design {
    a: DMatrix<f64>,
    sigma: Vec<f64>,
    /// Column norms (coefficient of column j = scaled coefficient / scale[j]).
    scale: Vec<f64>,
    svd: nalgebra::SVD<f64, nalgebra::Dyn, nalgebra::Dyn>,
}

/// One fit.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearFit {
    /// The argmin optimum.
    pub coef: Vec<f64>,
    /// The closed-form least-squares solution.
    pub coef_lsq: Vec<f64>,
    /// `max_j |coef_j - coef_lsq_j| / max_j |coef_lsq_j|`.
    pub rel_diff: f64,
    /// chi^2 of the argmin optimum.
    pub chi2: f64,
}

impl Design {
    /// `cols[j][i]`: template j at data point i; `sigma[i]`: the data's errors.
    pub fn new(cols: &[Vec<f64>], sigma: &[f64]) -> Self {
        let n = sigma.len();
        let p = cols.len();
        let mut a = DMatrix::<f64>::zeros(n, p);
        let mut scale = vec![0.0; p];
        for (j, c) in cols.iter().enumerate() {
            assert_eq!(c.len(), n, "template length");
            for i in 0..n {
                a[(i, j)] = c[i] / sigma[i];
            }
            let norm = a.column(j).norm();
            scale[j] = if norm > 0.0 { norm } else { 1.0 };
            a.column_mut(j).scale_mut(1.0 / scale[j]);
        }
        let svd = a.clone().svd(true, true);
        Design { a, sigma: sigma.to_vec(), scale, svd }
    }

    /// Number of coefficients.
    pub fn params(&self) -> usize {
        self.scale.len()
    }

    /// Largest over smallest singular value of the equilibrated design
    /// (infinite for exactly collinear templates).
    pub fn condition(&self) -> f64 {
        let sv = &self.svd.singular_values;
        let (mx, mn) = sv.iter().fold((0.0f64, f64::MAX), |(a, b), &s| (a.max(s), b.min(s)));
        if mn > 0.0 { mx / mn } else { f64::INFINITY }
    }

    /// The right singular vector of the smallest singular value: which
    /// coefficients the data cannot tell apart (components > 0.1 matter).
    pub fn weakest_direction(&self) -> Vec<f64> {
        let sv = &self.svd.singular_values;
        let j = (0..sv.len()).min_by(|&a, &b| sv[a].total_cmp(&sv[b])).unwrap_or(0);
        let vt = self.svd.v_t.as_ref().expect("v_t computed");
        vt.row(j).iter().copied().collect()
    }

    fn weighted(&self, y: &[f64]) -> DVector<f64> {
        DVector::from_iterator(y.len(), y.iter().zip(&self.sigma).map(|(v, s)| v / s))
    }

    /// The closed-form least-squares coefficients (SVD pseudo-inverse).
    pub fn lsq(&self, y: &[f64]) -> Vec<f64> {
        let b = self.weighted(y);
        let smax = self.svd.singular_values.max();
        let t = self.svd.solve(&b, 1e-14 * smax).expect("U and V computed");
        t.iter().zip(&self.scale).map(|(c, s)| c / s).collect()
    }

    /// chi^2 of coefficients `coef` against data `y`.
    pub fn chi2(&self, coef: &[f64], y: &[f64]) -> f64 {
        let b = self.weighted(y);
        let t = DVector::from_iterator(coef.len(), coef.iter().zip(&self.scale).map(|(c, s)| c * s));
        (&self.a * t - b).norm_squared()
    }

    /// Fits `y` with argmin (conjugate gradients on the equilibrated normal
    /// equations, started at zero, then restarted from the result) and checks
    /// the optimum against the closed form.
    pub fn fit(&self, y: &[f64]) -> Result<LinearFit> {
        let coef_lsq = self.lsq(y);
        let b = self.weighted(y);
        let rhs: Vec<f64> = (self.a.transpose() * &b).iter().copied().collect();
        let mut best = vec![0.0; self.params()];
        for _ in 0..2 {
            let op = NormalEquations { a: &self.a };
            let start = best.clone();
            let res = Executor::new(op, ConjugateGradient::<Vec<f64>, f64>::new(rhs.clone()))
                .configure(|s| s.param(start).max_iters(self.params() as u64))
                .run()
                .map_err(|e| anyhow!("argmin: {e}"))?;
            match res.state().get_param() {
                Some(p) if p.iter().all(|v| v.is_finite()) => best = p.clone(),
                // Already exact: CG's next step is 0/0.
                _ => break,
            }
        }
        let coef: Vec<f64> = best.iter().zip(&self.scale).map(|(c, s)| c / s).collect();
        let big = coef_lsq.iter().fold(0.0f64, |m, c| m.max(c.abs()));
        let rel_diff = if big > 0.0 {
            coef.iter().zip(&coef_lsq).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max) / big
        } else {
            coef.iter().fold(0.0f64, |m, c| m.max(c.abs()))
        };
        let chi2 = self.chi2(&coef, y);
        Ok(LinearFit { coef, coef_lsq, rel_diff, chi2 })
    }
}

/// The operator `A^T A` of the normal equations.
struct NormalEquations<'a> {
    a: &'a DMatrix<f64>,
}

impl Operator for NormalEquations<'_> {
    type Param = Vec<f64>;
    type Output = Vec<f64>;
    fn apply(&self, p: &Self::Param) -> Result<Vec<f64>, argmin::core::Error> {
        let ap = self.a * DVector::from_column_slice(p);
        Ok((self.a.transpose() * ap).iter().copied().collect())
    }
}
