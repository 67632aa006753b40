//! Analytic Gaussian-process kernels of the single-hidden-layer ensembles
//! (docs/physics.md §2).

use crate::quad::NormalRule;
use crate::{Activation, ArchSpec};
use std::f64::consts::PI;

/// The quadrature rule for activations without a closed-form kernel (tanh):
/// composite Gauss-Legendre on [-9, 9] standard deviations, 72 panels of 12
/// nodes per dimension. tanh has poles at `i pi / 2`, which make Gauss-Hermite
/// converge slowly for large pre-activation variance (96 nodes still err by
/// 1e-4 at S = 5); panels of width 0.25 keep the error below 1e-12 for S <= 25
/// (tested against a rule of twice the panels).
pub fn tanh_rule() -> NormalRule {
    NormalRule::panels(9.0, 72, 12)
}

impl ArchSpec {
    /// `K_W(x, y) = sw^2 E[h(x) h(y)]`, the weight part of the kernel.
    ///
    /// ```
    /// # use nnqft_core::{ArchSpec, Activation};
    /// let a = ArchSpec::single("erf", Activation::Erf, 1.0, 1.0, vec![vec![-1.0], vec![1.0]]);
    /// assert!((a.kernel(&[-1.0], &[-1.0]) - 1.5903344706).abs() < 1e-10);
    /// assert!((a.kernel(&[-1.0], &[1.0]) - 1.0).abs() < 1e-15);
    /// ```
    pub fn kernel_w(&self, x: &[f64], y: &[f64]) -> f64 {
        let sw2 = self.sigma_w * self.sigma_w;
        let (sxx, sxy, syy) = (self.s(x, x), self.s(x, y), self.s(y, y));
        match self.activation {
            Activation::Erf => {
                let r = 2.0 * sxy / ((1.0 + 2.0 * sxx) * (1.0 + 2.0 * syy)).sqrt();
                sw2 * (2.0 / PI) * r.clamp(-1.0, 1.0).asin()
            }
            Activation::Relu => {
                let norm = (sxx * syy).sqrt();
                if norm == 0.0 {
                    return 0.0;
                }
                let t = (sxy / norm).clamp(-1.0, 1.0).acos();
                sw2 * norm * (t.sin() + (PI - t) * t.cos()) / (2.0 * PI)
            }
            Activation::Gauss => {
                let dist2: f64 = x.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum();
                sw2 * (-sw2 * dist2 / (2.0 * self.d_in as f64)).exp()
            }
            Activation::Tanh => {
                sw2 * tanh_rule().expect2(sxx, sxy, syy, |a, b| a.tanh() * b.tanh())
            }
        }
    }

    /// `K_W` as the kernel integrals of the fit and rg stages evaluate it:
    /// the same function as [`ArchSpec::kernel_w`], but for tanh by
    /// [`crate::pairexp::tanh_pair`] (within 2e-11 of the reference rule,
    /// ~20 microseconds instead of ~10 milliseconds a value, and accurate at
    /// the huge pre-activation variances of a box `[-L, L]^d`).
    pub fn kernel_w_fast(&self, x: &[f64], y: &[f64]) -> f64 {
        match self.activation {
            Activation::Tanh => {
                let sw2 = self.sigma_w * self.sigma_w;
                sw2 * crate::pairexp::tanh_pair(self.s(x, x), self.s(x, y), self.s(y, y))
            }
            _ => self.kernel_w(x, y),
        }
    }

    /// The full kernel `K(x, y) = sb^2 + K_W(x, y)`: the two-point function of
    /// the infinite-width (Gaussian-process) theory.
    pub fn kernel(&self, x: &[f64], y: &[f64]) -> f64 {
        self.sigma_b * self.sigma_b + self.kernel_w(x, y)
    }

    /// The k x k matrix `K(x_a, x_b)` at the architecture's inputs.
    pub fn kernel_matrix(&self) -> Vec<Vec<f64>> {
        let xs = &self.inputs;
        xs.iter().map(|x| xs.iter().map(|y| self.kernel(x, y)).collect()).collect()
    }
}
