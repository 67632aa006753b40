//! Deep nets at several inputs, leading order in 1/n (docs/physics.md §11):
//! the kernel recursion over every pair of inputs and the 4-point vertex.
//!
//! With `G^(l)_ab = C_b + (C_W / n_l) sum_j sigma(z_j(x_a)) sigma(z_j(x_b))`
//! the conditional covariance of layer `l + 1`, write `C^(l+1)_(ab)(cd) =
//! Cov(G^(l)_ab, G^(l)_cd)`. At leading order, with `F_ab(G) = <sigma_a sigma_b>_G`
//! and `D_ab^{ef} = dF_ab / dG_ef` at `G = K^(l)` (`dF = sum over ordered (e, f)`):
//!
//! ```text
//! K^(l+1)_ab      = C_b + C_W F_ab(K^(l))
//! C^(l+1)_(ab)(cd) = (C_W^2 / n_l) [<s_a s_b s_c s_d> - <s_a s_b><s_c s_d>]_{K^(l)}
//!                   + C_W^2 sum_{e,f in {a,b}} sum_{g,h in {c,d}} D_ab^{ef} D_cd^{gh} C^(l)_(ef)(gh),   C^(1) = 0
//! ```
//!
//! and the connected 4-point function of one unit of layer `l` is
//! `C_(ab)(cd) + C_(ac)(bd) + C_(ad)(bc)` (at one input: `3 Var G`). The
//! derivatives come from Price's theorem (`dF_ab / dG_ab = <sigma'_a sigma'_b>`,
//! `dF_ab / dG_aa = <sigma''_a sigma_b> / 2`): closed forms for relu, erf and
//! gauss, a 288 x 288 bivariate rule for tanh. The 4-point Gaussian integrals
//! are [`crate::exact::UnitMoments`] of a unit whose pre-activations have
//! covariance `K^(l)` (the exact sphere rule for relu, tensor rules otherwise).

use crate::exact::{Accuracy, UnitMoments};
use crate::quad::NormalRule;
use crate::tuples::{tuple_index, tuples};
use crate::{Activation, ArchSpec};
use std::f64::consts::PI;

/// Leading-order kernel and 4-point vertex of one layer at every input.
#[derive(Clone, Debug, PartialEq)]
pub struct MultiLayer {
    /// 1-based layer (`L + 1` is the output).
    pub layer: usize,
    k: usize,
    /// `K^(l)_ab`, row-major `k x k`.
    pub kernel: Vec<f64>,
    /// `C^(l)_(ab)(cd)` over sorted pairs (index [`tuple_index`] of `[a, b]`).
    pub cov: Vec<f64>,
}

impl MultiLayer {
    fn pair(&self, a: usize, b: usize) -> usize {
        tuple_index(self.k, &[a.min(b), a.max(b)])
    }

    fn c(&self, a: usize, b: usize, c: usize, d: usize) -> f64 {
        let p = self.k * (self.k + 1) / 2;
        self.cov[self.pair(a, b) * p + self.pair(c, d)]
    }

    /// `K^(l)_ab`.
    pub fn k(&self, a: usize, b: usize) -> f64 {
        self.kernel[a * self.k + b]
    }

    /// The connected 4-point function of the inputs `t = [a, b, c, d]`.
    pub fn connected4(&self, t: &[usize]) -> f64 {
        let [a, b, c, d] = [t[0], t[1], t[2], t[3]];
        self.c(a, b, c, d) + self.c(a, c, b, d) + self.c(a, d, b, c)
    }

    /// The leading-order connected function of a sorted tuple: `K` (order 2),
    /// [`MultiLayer::connected4`] (order 4), NaN otherwise.
    pub fn connected(&self, t: &[usize]) -> f64 {
        match t.len() {
            2 => self.k(t[0], t[1]),
            4 => self.connected4(t),
            _ => f64::NAN,
        }
    }
}

/// `(F, dF/ds11, dF/ds12, dF/ds22)` of `F = <sigma(u) sigma(v)>` for a centred
/// normal `(u, v)` with covariance `[[s11, s12], [s12, s22]]`.
pub fn pair_with_grad(act: Activation, s11: f64, s12: f64, s22: f64) -> [f64; 4] {
    match act {
        Activation::Relu => {
            let norm = (s11 * s22).sqrt();
            if norm == 0.0 {
                return [0.0, 0.0, if s11 == 0.0 && s22 == 0.0 { 0.5 } else { 0.0 }, 0.0];
            }
            let rho = (s12 / norm).clamp(-1.0, 1.0);
            let t = rho.acos();
            let f = norm * (t.sin() + (PI - t) * rho) / (2.0 * PI);
            let side = (1.0 - rho * rho).max(0.0).sqrt() / (4.0 * PI);
            [f, side * (s22 / s11).sqrt(), (PI - t) / (2.0 * PI), side * (s11 / s22).sqrt()]
        }
        Activation::Erf => {
            let (p, q) = (1.0 + 2.0 * s11, 1.0 + 2.0 * s22);
            let r = 2.0 * s12 / (p * q).sqrt();
            let inv = 2.0 / PI / (1.0 - r * r).max(0.0).sqrt();
            [(2.0 / PI) * r.clamp(-1.0, 1.0).asin(), -inv * r / p, inv * 2.0 / (p * q).sqrt(), -inv * r / q]
        }
        Activation::Gauss => {
            let f = (0.5 * (s11 + 2.0 * s12 + s22)).exp();
            [f, 0.5 * f, f, 0.5 * f]
        }
        Activation::Tanh => {
            let q = NormalRule::panels(9.0, 36, 8);
            let sech2 = |z: f64| 1.0 - z.tanh().powi(2);
            let d2 = |z: f64| -2.0 * z.tanh() * sech2(z);
            [
                crate::pairexp::tanh_pair(s11, s12, s22),
                0.5 * q.expect2(s11, s12, s22, |u, v| d2(u) * v.tanh()),
                q.expect2(s11, s12, s22, |u, v| sech2(u) * sech2(v)),
                0.5 * q.expect2(s11, s12, s22, |u, v| u.tanh() * d2(v)),
            ]
        }
    }
}

/// `E[prod sigma(u_{t_i})]`, `u ~ N(0, K)`, for every sorted 4-tuple of `k` inputs.
fn four_point(act: Activation, kernel: &[f64], k: usize) -> Vec<f64> {
    let mut c = vec![0.0; k * k];
    crate::deep::cholesky_psd(kernel, k, &mut c);
    if act == Activation::Gauss {
        // E exp(sum u) = exp(Var(sum u) / 2)
        return tuples(k, 4).iter().map(|t| (0.5 * t.iter().flat_map(|&a| t.iter().map(move |&b| kernel[a * k + b])).sum::<f64>()).exp()).collect();
    }
    let rows: Vec<Vec<f64>> = (0..k).map(|a| c[a * k..(a + 1) * k].to_vec()).collect();
    let unit = ArchSpec::single("vertex", act, (k as f64).sqrt(), 0.0, rows);
    let m = UnitMoments::new(&unit, &[4], Accuracy { relu_nodes: 32, budget_scale: 0.05 });
    tuples(k, 4).iter().map(|t| m.get(t)).collect()
}

/// [`MultiLayer`] for layers `1..=L + 1` of `arch` at its inputs and scanned width `n`.
///
/// ```
/// use nnqft_core::{ArchSpec, Activation, vertex::multi_input_theory};
/// let mut a = ArchSpec::single("r", Activation::Relu, 2f64.sqrt(), 0.0, vec![vec![1.0]]);
/// a.hidden_layers = 2;
/// let t = multi_input_theory(&a, 32);
/// // one input: 3 Var G = 3 (5 / n) K^2 one layer after the Gaussian one, K = C_W x^2 / d = 2
/// assert!((t[1].connected4(&[0, 0, 0, 0]) - 3.0 * 5.0 / 32.0 * 4.0).abs() < 1e-12);
/// ```
pub fn multi_input_theory(arch: &ArchSpec, n: usize) -> Vec<MultiLayer> {
    let k = arch.k();
    let p = k * (k + 1) / 2;
    let pairs = tuples(k, 2);
    let (c_w, c_b) = arch.variances();
    let widths = arch.layer_widths(n);
    let mut kernel = vec![0.0; k * k];
    for a in 0..k {
        for b in 0..k {
            kernel[a * k + b] = arch.s(&arch.inputs[a], &arch.inputs[b]);
        }
    }
    let mut out = vec![MultiLayer { layer: 1, k, kernel, cov: vec![0.0; p * p] }];
    for (l, &nl) in widths.iter().enumerate() {
        let prev = &out[l];
        let kk = |a: usize, b: usize| prev.kernel[a * k + b];
        // F and its derivatives per sorted pair; d[pair] = [(e, f, D^{ef})]
        let mut f = vec![0.0; p];
        let mut d: Vec<Vec<(usize, usize, f64)>> = vec![Vec::new(); p];
        for (i, t) in pairs.iter().enumerate() {
            let (a, b) = (t[0], t[1]);
            let g = pair_with_grad(arch.activation, kk(a, a), kk(a, b), kk(b, b));
            f[i] = g[0];
            d[i] = if a == b { vec![(a, a, g[1] + g[2] + g[3])] } else { vec![(a, a, g[1]), (a, b, 0.5 * g[2]), (b, a, 0.5 * g[2]), (b, b, g[3])] };
        }
        let m4 = four_point(arch.activation, &prev.kernel, k);
        let mut kernel = vec![0.0; k * k];
        for (i, t) in pairs.iter().enumerate() {
            kernel[t[0] * k + t[1]] = c_b + c_w * f[i];
            kernel[t[1] * k + t[0]] = c_b + c_w * f[i];
        }
        let mut cov = vec![0.0; p * p];
        for (i, s) in pairs.iter().enumerate() {
            for (j, t) in pairs.iter().enumerate() {
                let mut q = [s[0], s[1], t[0], t[1]];
                q.sort_unstable();
                let fresh = m4[tuple_index(k, &q)] - f[i] * f[j];
                let mut prop = 0.0;
                for &(e, ff, dab) in &d[i] {
                    for &(g, h, dcd) in &d[j] {
                        prop += dab * dcd * prev.c(e, ff, g, h);
                    }
                }
                cov[i * p + j] = c_w * c_w * (fresh / nl as f64 + prop);
            }
        }
        out.push(MultiLayer { layer: l + 2, k, kernel, cov });
    }
    out
}
