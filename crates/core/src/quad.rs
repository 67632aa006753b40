//! Gaussian expectations by Gauss-Hermite quadrature (nodes from the
//! `gauss-quad` crate, Golub-Welsch).

use gauss_quad::{GaussHermite, GaussLegendre};
use std::num::NonZeroUsize;

/// Gauss-Hermite rule rescaled for a standard normal variable:
/// `E[g(u)] ~= sum_i weights[i] g(nodes[i])`, exact for polynomials of degree
/// `2 order - 1`.
///
/// ```
/// let q = nnqft_core::quad::NormalRule::new(10);
/// assert!((q.expect(|u| u * u * u * u) - 3.0).abs() < 1e-12);
/// ```
#[derive(Clone, Debug)]
pub struct NormalRule {
    pub nodes: Vec<f64>,
    pub weights: Vec<f64>,
}

impl NormalRule {
    /// A rule with `order` >= 1 nodes.
    pub fn new(order: usize) -> Self {
        let gh = GaussHermite::new(NonZeroUsize::new(order).expect("order >= 1"));
        let norm = std::f64::consts::PI.sqrt();
        let (nodes, weights) = gh
            .iter()
            .map(|(x, w)| (x * std::f64::consts::SQRT_2, w / norm))
            .unzip();
        NormalRule { nodes, weights }
    }

    /// A composite Gauss-Legendre rule for a standard normal: `panels` equal
    /// panels of `order` nodes on `[-half_range, half_range]`, each weight
    /// times the normal density. Unlike Gauss-Hermite it converges fast for
    /// integrands with nearby complex poles (tanh) or steep features; the
    /// truncated tails weigh `2 Phi(-half_range)` (2e-19 at 9).
    ///
    /// ```
    /// let q = nnqft_core::quad::NormalRule::panels(9.0, 36, 10);
    /// assert!((q.expect(|u| u * u) - 1.0).abs() < 1e-13);
    /// ```
    pub fn panels(half_range: f64, panels: usize, order: usize) -> Self {
        let gl = GaussLegendre::new(NonZeroUsize::new(order).expect("order >= 1"));
        let h = 2.0 * half_range / panels as f64;
        let inv_sqrt_2pi = 1.0 / (2.0 * std::f64::consts::PI).sqrt();
        let mut nodes = Vec::with_capacity(panels * order);
        let mut weights = Vec::with_capacity(panels * order);
        for p in 0..panels {
            let mid = -half_range + (p as f64 + 0.5) * h;
            for (t, w) in gl.iter() {
                let u = mid + 0.5 * h * t;
                nodes.push(u);
                weights.push(0.5 * h * w * inv_sqrt_2pi * (-0.5 * u * u).exp());
            }
        }
        NormalRule { nodes, weights }
    }

    /// `E[g(u)]`, `u ~ N(0, 1)`.
    pub fn expect(&self, g: impl Fn(f64) -> f64) -> f64 {
        self.nodes.iter().zip(&self.weights).map(|(&u, w)| w * g(u)).sum()
    }

    /// `E[g(z1, z2)]` for a centred bivariate normal with covariance
    /// `[[s11, s12], [s12, s22]]` (tensor rule after a Cholesky factorisation).
    pub fn expect2(&self, s11: f64, s12: f64, s22: f64, g: impl Fn(f64, f64) -> f64) -> f64 {
        let a = s11.max(0.0).sqrt();
        let (c, e) = if a > 0.0 {
            let c = s12 / a;
            (c, (s22 - c * c).max(0.0).sqrt())
        } else {
            (0.0, s22.max(0.0).sqrt())
        };
        let mut total = 0.0;
        for (&u, wu) in self.nodes.iter().zip(&self.weights) {
            let mut inner = 0.0;
            for (&v, wv) in self.nodes.iter().zip(&self.weights) {
                inner += wv * g(a * u, c * u + e * v);
            }
            total += wu * inner;
        }
        total
    }
}
