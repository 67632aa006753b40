//! The exact single-input theory of deep nets at any width (docs/physics.md §11).
//!
//! At one input the layer-`l` pre-activation is a Gaussian scale mixture: given
//! layer `l - 1`, `z^(l)` is `N(0, G^(l-1))` with
//!
//! ```text
//! G^(l) = C_b + (C_W / n_l) sum_{j <= n_l} sigma(sqrt(G^(l-1)) u_j)^2,   u_j iid N(0, 1),
//! G^(0) = K^(1) = C_b + C_W |x|^2 / d,
//! ```
//!
//! a Markov chain in one variable. So `kappa_{2m}(z^(l)) = (2m - 1)!! kappa_m(G^(l-1))`
//! (the cumulant generating function of `z` is that of `G` at `t^2 / 2`), odd
//! cumulants vanish, and
//!
//! ```text
//! kurtosis = 3 kappa_2(G) / kappa_1(G)^2,  c6 = 15 kappa_3(G) / kappa_1(G)^3,  c8 = 105 kappa_4(G) / kappa_1(G)^4.
//! ```
//!
//! ## How the chain is iterated
//!
//! The law of each `G^(l)` is carried as a discrete measure of `atoms` points:
//! the Gauss rule of that law, which integrates polynomials of degree
//! `2 atoms - 1` exactly. One step, for every atom `g`:
//!
//! 1. the law of one unit's `Y = sigma(sqrt(g) u)^2` from a 640-node normal
//!    rule (Gauss-Legendre panels on `[-10, 10]` with an edge at 0, exact for
//!    relu's piecewise polynomials), reduced to its own Gauss rule;
//! 2. the `n_l`-fold sum by binary powering: the convolution of two rules is
//!    the rule on all pairwise sums (`atoms^2` points), reduced again;
//! 3. the mixture over the atoms of `G^(l-1)`, reduced to `atoms` points.
//!
//! Each reduction keeps the moments `0..2 atoms - 1` of the measure it reduces
//! (Lanczos with full reorthogonalisation on the atoms, then the eigenvalues of
//! the Jacobi matrix: the Golub-Welsch rule of a discrete measure). Moments of
//! a sum are polynomials in the moments of the parts, so steps 1-2 lose
//! nothing up to degree `2 atoms - 1`; step 3 integrates the conditional law,
//! an analytic function of `g`, with an `atoms`-point Gauss rule. For relu
//! with `C_b = 0` every conditional moment is a monomial in `g`, and the chain
//! reproduces the closed form ([`relu_closed_form`]) to rounding (1e-10 is
//! tested at n = 4, 8, 32 and mixed widths).
//!
//! Accuracy at [`default_atoms`] (measured against 48 atoms over L = 8 layers,
//! largest relative change of mu_2, kurtosis, c6, c8): with `C_b > 0`, or at
//! n >= 32, < 1e-10; tanh and erf with `C_b = 0`, whose conditional law is not
//! analytic at `g = 0` (the chain's lower end), 3e-6 (tanh) / 6e-6 (erf) at
//! n = 4 and 7e-8 / 4e-7 at n = 8. relu (16 atoms): 16 and 20 atoms agree to
//! 1e-13 at `C_b = 0.3`, n = 8. One chain of 8 layers takes 30-300 ms.

use crate::quad::NormalRule;
use crate::{Activation, ArchSpec};
use rayon::prelude::*;

/// The default number of atoms per layer law: 24 for the bounded activations
/// (tanh, erf), 16 for relu and gauss, whose heavy-tailed laws at small n
/// (relu's kurtosis is 145 at n = 8, L = 8) span so many orders of magnitude
/// that Lanczos loses the bulk's precision beyond about 20 atoms.
pub fn default_atoms(act: Activation) -> usize {
    match act {
        Activation::Tanh | Activation::Erf => 24,
        Activation::Relu | Activation::Gauss => 16,
    }
}

/// The exact single-input statistics of `z^(l)` at one layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChainLayer {
    /// 1-based layer (`L + 1` is the output).
    pub layer: usize,
    /// `mu_2 = E (z^(l))^2 = E G^(l-1)`.
    pub mu2: f64,
    /// `mu_4 / mu_2^2 - 3`.
    pub kurtosis: f64,
    /// `kappa_6 / mu_2^3`.
    pub c6: f64,
    /// `kappa_8 / mu_2^4`.
    pub c8: f64,
    /// `E (G^(l-1))^m` for `m = 1..=8`: with [`ChainLayer::z_moment`] the exact
    /// variance of the sample moments up to `z^8` (which needs `E z^16`).
    pub g_moments: [f64; 8],
}

impl ChainLayer {
    /// From the cumulants `kappa_1..kappa_4` of `G^(l-1)` and its raw moments.
    fn from_cumulants(layer: usize, k: [f64; 4], g_moments: [f64; 8]) -> Self {
        ChainLayer {
            layer,
            g_moments,
            mu2: k[0],
            kurtosis: 3.0 * k[1] / k[0].powi(2),
            c6: 15.0 * k[2] / k[0].powi(3),
            c8: 105.0 * k[3] / k[0].powi(4),
        }
    }

    /// The normalised connected `2m`-point function, `m = 2, 3, 4`.
    pub fn c(&self, order: usize) -> f64 {
        match order {
            4 => self.kurtosis,
            6 => self.c6,
            8 => self.c8,
            _ => panic!("c_n for n = 4, 6, 8 only, not {order}"),
        }
    }

    /// `E z^p` for even `p = 2..=16`: `(p - 1)!! E G^(p/2)`; 0 for odd `p`.
    ///
    /// ```
    /// let c = nnqft_core::chain::relu_closed_form(2.0, 1.0, &[]);
    /// assert_eq!(c[0].z_moment(8), 105.0); // layer 1 is N(0, 1)
    /// ```
    pub fn z_moment(&self, p: usize) -> f64 {
        assert!((1..=16).contains(&p), "E z^p for p <= 16 only, not {p}");
        if p % 2 == 1 {
            return 0.0;
        }
        let double_factorial: f64 = (1..p).step_by(2).map(|i| i as f64).product();
        double_factorial * self.g_moments[p / 2 - 1]
    }
}

/// A discrete probability measure: `sum_i w_i delta(x_i)`.
#[derive(Clone, Debug, PartialEq)]
struct Measure {
    x: Vec<f64>,
    w: Vec<f64>,
}

impl Measure {
    fn point(x: f64) -> Self {
        Measure { x: vec![x], w: vec![1.0] }
    }

    /// Raw moments 1..=8.
    fn raw_moments(&self) -> [f64; 8] {
        let total: f64 = self.w.iter().sum();
        let mut m = [0.0; 8];
        for (x, w) in self.x.iter().zip(&self.w) {
            let mut p = 1.0;
            for v in m.iter_mut() {
                p *= x;
                *v += w * p / total;
            }
        }
        m
    }

    /// Cumulants 1..4.
    fn cumulants(&self) -> [f64; 4] {
        let total: f64 = self.w.iter().sum();
        let mean = self.x.iter().zip(&self.w).map(|(x, w)| x * w).sum::<f64>() / total;
        let mut c = [0.0; 5];
        for (x, w) in self.x.iter().zip(&self.w) {
            let d = x - mean;
            c[2] += w * d * d;
            c[3] += w * d * d * d;
            c[4] += w * d * d * d * d;
        }
        let (m2, m3, m4) = (c[2] / total, c[3] / total, c[4] / total);
        [mean, m2, m3, m4 - 3.0 * m2 * m2]
    }

    /// The Gauss rule of at most `atoms` points of this measure: the same
    /// moments up to degree `2 atoms - 1`.
    fn reduce(&self, atoms: usize) -> Measure {
        let total: f64 = self.w.iter().sum();
        let mean = self.x.iter().zip(&self.w).map(|(x, w)| x * w).sum::<f64>() / total;
        let scale = self.x.iter().map(|x| (x - mean).abs()).fold(0.0, f64::max);
        if self.x.len() <= atoms || scale == 0.0 || !scale.is_finite() {
            return self.clone();
        }
        // Lanczos on diag(y), start vector sqrt(w / total), full reorthogonalisation.
        let y: Vec<f64> = self.x.iter().map(|x| (x - mean) / scale).collect();
        let n = y.len();
        let mut q: Vec<Vec<f64>> = vec![self.w.iter().map(|w| (w / total).sqrt()).collect()];
        let (mut alpha, mut beta) = (Vec::with_capacity(atoms), Vec::with_capacity(atoms));
        for j in 0..atoms {
            let qj = &q[j];
            let a: f64 = (0..n).map(|i| y[i] * qj[i] * qj[i]).sum();
            alpha.push(a);
            if j + 1 == atoms {
                break;
            }
            let mut r: Vec<f64> = (0..n).map(|i| y[i] * qj[i]).collect();
            for _ in 0..2 {
                for qm in &q {
                    let dot: f64 = r.iter().zip(qm).map(|(a, b)| a * b).sum();
                    r.iter_mut().zip(qm).for_each(|(a, b)| *a -= dot * b);
                }
            }
            let b = r.iter().map(|v| v * v).sum::<f64>().sqrt();
            if b < 1e-13 {
                break;
            }
            beta.push(b);
            r.iter_mut().for_each(|v| *v /= b);
            q.push(r);
        }
        let m = alpha.len();
        let mut t = nalgebra::DMatrix::<f64>::zeros(m, m);
        for i in 0..m {
            t[(i, i)] = alpha[i];
            if i + 1 < m {
                t[(i, i + 1)] = beta[i];
                t[(i + 1, i)] = beta[i];
            }
        }
        let eig = nalgebra::SymmetricEigen::new(t);
        let mut pts: Vec<(f64, f64)> =
            (0..m).map(|i| (mean + scale * eig.eigenvalues[i], total * eig.eigenvectors[(0, i)].powi(2))).collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (x, w) = pts.into_iter().unzip();
        Measure { x, w }
    }

    /// The law of the sum of independent draws from `self` and `other`.
    fn convolve(&self, other: &Measure, atoms: usize) -> Measure {
        let mut x = Vec::with_capacity(self.x.len() * other.x.len());
        let mut w = Vec::with_capacity(x.capacity());
        for (xa, wa) in self.x.iter().zip(&self.w) {
            for (xb, wb) in other.x.iter().zip(&other.w) {
                x.push(xa + xb);
                w.push(wa * wb);
            }
        }
        Measure { x, w }.reduce(atoms)
    }

    /// The law of the sum of `n >= 1` independent draws.
    fn sum_of(&self, n: usize, atoms: usize) -> Measure {
        let (mut result, mut power, mut rest) = (None::<Measure>, self.clone(), n);
        loop {
            if rest & 1 == 1 {
                result = Some(match result {
                    None => power.clone(),
                    Some(r) => r.convolve(&power, atoms),
                });
            }
            rest >>= 1;
            if rest == 0 {
                break;
            }
            power = power.convolve(&power, atoms);
        }
        result.expect("n >= 1")
    }
}

/// The rule for one unit's `u`: panels with an edge at 0 (see the module docs).
fn unit_rule() -> NormalRule {
    NormalRule::panels(10.0, 40, 16)
}

/// The exact law-derived statistics of layers `1..=L + 1` of a deep `arch` at
/// input `x` and scanned width `n` (hidden widths [`ArchSpec::layer_widths`]),
/// with `atoms` points per law (see [`default_atoms`] for the accuracy).
///
/// ```
/// use nnqft_core::{ArchSpec, Activation, chain::exact_chain};
/// let mut a = ArchSpec::single("r", Activation::Relu, 2f64.sqrt(), 0.0, vec![vec![1.0]]);
/// a.hidden_layers = 2;
/// let c = exact_chain(&a, &[1.0], 32, 16);
/// assert!((c[1].c6 - 0.64453125).abs() < 1e-12); // 15 E[R^3] - 45 E[R^2] + 30
/// assert!((c[1].kurtosis - 15.0 / 32.0).abs() < 1e-12);
/// ```
pub fn exact_chain(arch: &ArchSpec, x: &[f64], n: usize, atoms: usize) -> Vec<ChainLayer> {
    let (c_w, c_b) = arch.variances();
    chain(arch.activation, c_w, c_b, arch.s(x, x), &arch.layer_widths(n), atoms)
}

/// [`exact_chain`] from the variances, `K^(1)` and the hidden widths `n_1..n_L`.
pub fn chain(act: Activation, c_w: f64, c_b: f64, k1: f64, widths: &[usize], atoms: usize) -> Vec<ChainLayer> {
    assert!(atoms >= 2, "at least 2 atoms");
    let rule = unit_rule();
    let mut law = Measure::point(k1);
    let mut out = vec![ChainLayer::from_cumulants(1, law.cumulants(), law.raw_moments())];
    for (l, &nl) in widths.iter().enumerate() {
        let parts: Vec<Measure> = law
            .x
            .par_iter()
            .map(|&g| {
                let s = g.max(0.0).sqrt();
                let y = Measure { x: rule.nodes.iter().map(|&u| act.raw(s * u).powi(2)).collect(), w: rule.weights.clone() };
                let sum = y.reduce(atoms).sum_of(nl, atoms);
                let scale = c_w / nl as f64;
                Measure { x: sum.x.iter().map(|v| c_b + scale * v).collect(), w: sum.w }
            })
            .collect();
        let mut mix = Measure { x: Vec::new(), w: Vec::new() };
        for (part, &wg) in parts.iter().zip(&law.w) {
            mix.x.extend_from_slice(&part.x);
            mix.w.extend(part.w.iter().map(|w| w * wg));
        }
        law = mix.reduce(atoms);
        out.push(ChainLayer::from_cumulants(l + 2, law.cumulants(), law.raw_moments()));
    }
    out
}

/// relu with `C_b = 0` in closed form: `G^(l) = G^(l-1) R_l`, `R_l = (C_W / n_l)
/// chi^2_{B_l}`, `B_l ~ Binomial(n_l, 1/2)`, so `E G^(l)^m = K^(1)^m prod_j E[R_j^m]`
/// with `E[R^m] = (C_W / n)^m E[B (B + 2) .. (B + 2m - 2)]`. Returns layers `1..=L + 1`.
///
/// ```
/// let c = nnqft_core::chain::relu_closed_form(2.0, 1.0, &[4]);
/// // E[R^4] = 32.90625 at n = 4, C_W = 2
/// assert!((c[1].mu2 - 1.0).abs() < 1e-15);
/// ```
pub fn relu_closed_form(c_w: f64, k1: f64, widths: &[usize]) -> Vec<ChainLayer> {
    let mut moments: [f64; 8] = std::array::from_fn(|m| k1.powi(m as i32 + 1)); // E G^m, m = 1..8
    let mut out = vec![layer_from_raw(1, moments)];
    for (l, &n) in widths.iter().enumerate() {
        for (m, g) in moments.iter_mut().enumerate() {
            *g *= relu_r_moment(c_w, n, m + 1);
        }
        out.push(layer_from_raw(l + 2, moments));
    }
    out
}

/// `E[R^m]` for `R = (C_W / n) chi^2_B`, `B ~ Binomial(n, 1/2)`.
pub fn relu_r_moment(c_w: f64, n: usize, m: usize) -> f64 {
    let mut e = 0.0;
    let mut binom = 1.0f64; // C(n, b)
    for b in 0..=n {
        if b > 0 {
            binom *= (n - b + 1) as f64 / b as f64;
        }
        let rising: f64 = (0..m).map(|i| (b + 2 * i) as f64).product();
        e += binom * rising;
    }
    e / 2f64.powi(n as i32) * (c_w / n as f64).powi(m as i32)
}

fn layer_from_raw(layer: usize, g: [f64; 8]) -> ChainLayer {
    let [m1, m2, m3, m4, ..] = g;
    let k2 = m2 - m1 * m1;
    let k3 = m3 - 3.0 * m2 * m1 + 2.0 * m1.powi(3);
    let k4 = m4 - 4.0 * m3 * m1 - 3.0 * m2 * m2 + 12.0 * m2 * m1 * m1 - 6.0 * m1.powi(4);
    ChainLayer::from_cumulants(layer, [m1, k2, k3, k4], g)
}
