//! Exact finite-width theory of the single-hidden-layer ensembles
//! (docs/physics.md §4).
//!
//! `f = sum_i W1_i h_i + b1` is a sum of N iid terms plus a Gaussian, so its
//! cumulants are exact at every N in terms of one hidden unit's moments
//! `M(a_1..a_m) = E[prod_j h(x_{a_j})]`. With `P_ab = K_W(x_a, x_b) / sw^2`:
//!
//! ```text
//! kappa4(1234) = (sw^4 / N)   [3 M(1234) - P12 P34 - P13 P24 - P14 P23]
//! kappa6(1..6) = (sw^6 / N^2) [15 M(1..6) - 3 sum_15 M(abcd) P(ef) + 2 sum_15 P P P]
//! G4 - G4_GP = kappa4,   G6 - G6_GP = sum_15 K(ab) kappa4(cdef) + kappa6
//! ```
//!
//! ## How M is computed, and how accurately
//!
//! Write the unit's pre-activations as `z_a = v_a . u` with `u` standard
//! normal in `D = d_in + [sb > 0]` dimensions and `v_a = (sw x_a / sqrt(d), sb)`.
//!
//! - **gauss**: closed form (docs/physics.md §4), exact.
//! - **relu** (`D <= 3`): `prod_a relu(v_a . u)` is homogeneous of degree m, so
//!   `M = E[r^m] * avg_{S^(D-1)} prod_a relu(v_a . theta)` with `E[r^m]` of the chi
//!   distribution in closed form. The sphere average is done in nested
//!   spherical coordinates: on the circle the integrand is a trigonometric
//!   polynomial between the zero crossings of the factors, which are found
//!   analytically, so Gauss-Legendre on each arc is exact to rounding; the
//!   polar angle is split where a factor's zero set appears or vanishes and
//!   integrated with a cosine substitution that removes the square-root
//!   endpoint behaviour there. Measured: agrees with the closed forms
//!   (relu, sb = 0, d = 1) to 1e-15 and between node counts 24 and 48 to
//!   < 1e-12 relative for D = 2, < 1e-9 for D = 3 (tests in `tests/exact.rs`).
//! - **erf, tanh**, and relu with `D = 4`: tensor Gauss-Hermite over the D
//!   variables (erf), or composite Gauss-Legendre panels (tanh, whose complex
//!   poles slow Gauss-Hermite down; relu D = 4, whose kinks do), with about
//!   [`NODE_BUDGET`] nodes in all. Measured convergence (two orders compared):
//!   erf < 1e-9 of the largest M for D <= 3 (100 nodes per dimension) and
//!   6e-8 for D = 4 (erf with d_in = 3 and sb > 0: 63 nodes per dimension,
//!   compared with a 4x finer rule; ~2 s on 2 cores). The grid is evaluated
//!   in slabs, so memory stays small. relu with D = 4 (d_in = 3, sb > 0) is
//!   not in any shipped pipeline and its tensor rule is not yet validated.
//!   Gauss-Hermite is weak on the gauss-net's lognormal moments, hence its
//!   closed form.

use crate::quad::NormalRule;
use crate::tuples::{ProductTree, pair_quad_splits, pairings, tuple_index, tuples};
use crate::{Activation, ArchSpec};
use gauss_quad::GaussLegendre;
use std::collections::BTreeMap;
use std::f64::consts::PI;
use rayon::prelude::*;
use std::num::NonZeroUsize;

/// About how many quadrature nodes the tensor rules may use in all.
pub const NODE_BUDGET: usize = 16_000_000;

/// Quadrature settings for [`UnitMoments::new`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Accuracy {
    /// Gauss-Legendre nodes per arc / interval of the relu sphere rule.
    pub relu_nodes: usize,
    /// Scale factor on the tensor rules' node budget (1.0 = [`NODE_BUDGET`]).
    pub budget_scale: f64,
}

impl Default for Accuracy {
    fn default() -> Self {
        Accuracy { relu_nodes: 32, budget_scale: 1.0 }
    }
}

/// One hidden unit's moments `M(t)` for every sorted tuple of the requested orders.
#[derive(Clone, Debug)]
pub struct UnitMoments {
    k: usize,
    by_order: BTreeMap<usize, Vec<f64>>,
}

/// `v_a` for every input: pre-activation `z_a = v_a . u`, `u ~ N(0, I_D)`.
pub(crate) fn directions(arch: &ArchSpec) -> Vec<Vec<f64>> {
    let s = arch.sigma_w / (arch.d_in as f64).sqrt();
    arch.inputs
        .iter()
        .map(|x| {
            let mut v: Vec<f64> = x.iter().map(|xi| s * xi).collect();
            if arch.sigma_b > 0.0 {
                v.push(arch.sigma_b);
            }
            v
        })
        .collect()
}

impl UnitMoments {
    /// Computes `M` for every sorted tuple of each order in `orders`.
    pub fn new(arch: &ArchSpec, orders: &[usize], acc: Accuracy) -> Self {
        let k = arch.k();
        if orders.is_empty() {
            return UnitMoments { k, by_order: BTreeMap::new() };
        }
        let v = directions(arch);
        let dim = v[0].len();
        let by_order = match arch.activation {
            Activation::Gauss => orders.iter().map(|&o| (o, tuples(k, o).iter().map(|t| gauss_moment(arch, t)).collect())).collect(),
            Activation::Relu if dim <= 3 && !arch.has_hidden_means() => orders
                .iter()
                .map(|&o| (o, tuples(k, o).iter().map(|t| relu_moment(&v, t, acc.relu_nodes)).collect()))
                .collect(),
            _ => tensor_moments(arch, &v, orders, acc.budget_scale),
        };
        UnitMoments { k, by_order }
    }

    /// `M` by the tensor rule whatever the activation (for cross-checks of
    /// the closed forms and the relu sphere rule).
    pub fn tensor(arch: &ArchSpec, orders: &[usize], budget_scale: f64) -> Self {
        UnitMoments { k: arch.k(), by_order: tensor_moments(arch, &directions(arch), orders, budget_scale) }
    }

    /// `M` of a tuple of input indices (any order of the indices).
    pub fn get(&self, t: &[usize]) -> f64 {
        let mut s = t.to_vec();
        s.sort_unstable();
        let table = self.by_order.get(&s.len()).unwrap_or_else(|| panic!("order {} not computed", s.len()));
        table[tuple_index(self.k, &s)]
    }
}

/// Gauss-net closed form: `M = exp(sw^2 |sum x|^2 / (2d) + m^2 sb^2 / 2 - m sb^2 - sw^2 sum |x|^2 / d)`,
/// times `exp(sum_a m(x_a))` with pre-activation means.
pub(crate) fn gauss_moment(arch: &ArchSpec, t: &[usize]) -> f64 {
    let (sw2, sb2, d) = (arch.sigma_w.powi(2), arch.sigma_b.powi(2), arch.d_in as f64);
    let m = t.len() as f64;
    let mut sum = vec![0.0; arch.d_in];
    let mut sq = 0.0;
    for &a in t {
        for (s, x) in sum.iter_mut().zip(&arch.inputs[a]) {
            *s += x;
        }
        sq += arch.inputs[a].iter().map(|x| x * x).sum::<f64>();
    }
    let sum2: f64 = sum.iter().map(|s| s * s).sum();
    // pre-activation means multiply prod exp(z_a) by exp(sum_a m(x_a))
    let shift: f64 = if arch.has_hidden_means() { t.iter().map(|&a| arch.pre_mean(&arch.inputs[a])).sum() } else { 0.0 };
    (sw2 * sum2 / (2.0 * d) + m * m * sb2 / 2.0 - m * sb2 - sw2 * sq / d + shift).exp()
}

/// Tensor rule over the D Gaussian variables; all tuples at once through the
/// product tree (weights = the rule's weights).
fn tensor_moments(arch: &ArchSpec, v: &[Vec<f64>], orders: &[usize], budget_scale: f64) -> BTreeMap<usize, Vec<f64>> {
    let tree = ProductTree::new(v.len(), orders);
    let mut total: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for s in tensor_slabs(arch, v, NODE_BUDGET as f64 * budget_scale, |cols, weights| {
        let refs: Vec<&[f64]> = cols.iter().map(|c| c.as_slice()).collect();
        tree.sums(&refs, Some(weights))
    }) {
        crate::tuples::add_sums(&mut total, s);
    }
    total
}

/// Runs `f` on each slab of the tensor rule (about `budget` nodes in all):
/// `f(cols, weights)` gets `cols[a][i] = h_a(z_a)` at the slab's nodes and
/// their weights. The slabs (fixed first coordinate: bounded memory) are
/// evaluated in parallel and returned in slab order, so sums over them do
/// not depend on the thread count.
pub(crate) fn tensor_slabs<R: Send>(arch: &ArchSpec, v: &[Vec<f64>], budget: f64, f: impl Fn(&[Vec<f64>], &[f64]) -> R + Sync) -> Vec<R> {
    let dim = v[0].len();
    let per_dim = (budget.powf(1.0 / dim as f64).floor() as usize).max(4);
    // Golub-Welsch weights of the outermost Gauss-Hermite nodes are only
    // accurate relative to the largest weight: fine for bounded integrands
    // (erf, up to 100 nodes), not for exp (gauss, capped at 60).
    let rule = match arch.activation {
        Activation::Erf => NormalRule::new(per_dim.min(100)),
        Activation::Gauss => NormalRule::new(per_dim.min(60)),
        _ => {
            let per_panel = 8;
            NormalRule::panels(9.0, (per_dim / per_panel).clamp(1, 108), per_panel)
        }
    };
    let n1 = rule.nodes.len();
    let unit = arch.unit();
    let k = v.len();
    // z_a = m(x_a) + v_a . u when the hidden layer has means
    let shift: Option<Vec<f64>> = arch.has_hidden_means().then(|| arch.inputs.iter().map(|x| arch.pre_mean(x)).collect());
    let slab = n1.pow(dim as u32 - 1);
    (0..n1)
        .into_par_iter()
        .map(|i0| {
            let mut cols = vec![Vec::with_capacity(slab); k];
            let mut weights = Vec::with_capacity(slab);
            let mut idx = vec![0usize; dim];
            idx[0] = i0;
            for _ in 0..slab {
                let mut w = 1.0;
                let mut u = [0.0f64; 8];
                for (j, &i) in idx.iter().enumerate() {
                    w *= rule.weights[i];
                    u[j] = rule.nodes[i];
                }
                weights.push(w);
                for (a, va) in v.iter().enumerate() {
                    let mut z: f64 = va.iter().zip(&u).map(|(c, x)| c * x).sum();
                    if let Some(m) = &shift {
                        z += m[a];
                    }
                    cols[a].push(unit.h(a, z));
                }
                for j in (1..dim).rev() {
                    idx[j] += 1;
                    if idx[j] < n1 {
                        break;
                    }
                    idx[j] = 0;
                }
            }
            f(&cols, &weights)
        })
        .collect()
}

/// `E[r^m]` for `r` chi-distributed with `dim` degrees of freedom.
fn chi_moment(dim: usize, m: usize) -> f64 {
    let ln = (m as f64 / 2.0) * 2f64.ln() + libm::lgamma((dim + m) as f64 / 2.0) - libm::lgamma(dim as f64 / 2.0);
    ln.exp()
}

/// relu: `M = E[r^m] avg_sphere prod relu(v_a . theta)`.
fn relu_moment(v: &[Vec<f64>], t: &[usize], nodes: usize) -> f64 {
    relu_moment_pow(v, &t.iter().map(|&a| (a, 1)).collect::<Vec<_>>(), nodes)
}

/// relu: `M = E[r^m] avg_sphere prod relu(v_a . theta)^p_a` for the factors
/// `(a, p_a)`, m = sum of the p_a (a point repeated p times is one factor
/// to the power p: the same zero crossings, once).
pub(crate) fn relu_moment_pow(v: &[Vec<f64>], t: &[(usize, i32)], nodes: usize) -> f64 {
    let dim = v[0].len();
    let factors: Vec<Factor> = t.iter().map(|&(a, p)| (v[a].clone(), 0.0, p)).collect();
    let gl = GaussLegendre::new(NonZeroUsize::new(nodes).expect("nodes >= 1"));
    let rule: Vec<(f64, f64)> = gl.iter().map(|(x, w)| (*x, *w)).collect();
    let m: i32 = t.iter().map(|&(_, p)| p).sum();
    chi_moment(dim, m as usize) * sphere_avg(&factors, &rule)
}

/// `relu(c . theta + e)^p` on the sphere: (c, e, p).
type Factor = (Vec<f64>, f64, i32);

/// Average over theta uniform on the unit sphere of R^D of
/// `prod_j relu(c_j . theta + e_j)^p_j`, D = length of the c_j.
fn sphere_avg(factors: &[Factor], rule: &[(f64, f64)]) -> f64 {
    let dim = factors[0].0.len();
    match dim {
        1 => {
            let prod = |s: f64| factors.iter().map(|(c, e, p)| (s * c[0] + e).max(0.0).powi(*p)).product::<f64>();
            0.5 * (prod(1.0) + prod(-1.0))
        }
        2 => circle_avg(factors, rule),
        _ => {
            // theta = (sin psi theta', cos psi), theta' on S^(D-2); density sin^(D-2) psi / Z.
            let p = (dim - 2) as i32;
            let z = sin_power_integral(dim - 2);
            let mut cuts = vec![0.0, PI];
            for (c, e, _) in factors {
                let cp = c[..dim - 1].iter().map(|x| x * x).sum::<f64>().sqrt();
                let cd = c[dim - 1];
                // psi where |c'| sin psi = +-(cd cos psi + e): a zero set appears or vanishes.
                for sign in [1.0, -1.0] {
                    // |c'| sin psi - sign cd cos psi = sign e  <=>  rho sin(psi - delta) = sign e
                    let rho = (cp * cp + cd * cd).sqrt();
                    if rho == 0.0 || (e / rho).abs() > 1.0 {
                        continue;
                    }
                    let delta = (sign * cd).atan2(cp);
                    let a = (sign * e / rho).asin();
                    for psi in [delta + a, delta + PI - a] {
                        let psi = psi.rem_euclid(2.0 * PI);
                        if psi > 0.0 && psi < PI {
                            cuts.push(psi);
                        }
                    }
                }
            }
            if dim == 3 && factors.iter().all(|(_, e, _)| *e == 0.0) {
                // Two great circles cross at +-(c_i x c_j); where their zero
                // crossings on the inner circle coincide, the inner integral's
                // third derivative jumps: cut there too.
                for (i, (ci, _, _)) in factors.iter().enumerate() {
                    for (cj, _, _) in &factors[i + 1..] {
                        let n = [ci[1] * cj[2] - ci[2] * cj[1], ci[2] * cj[0] - ci[0] * cj[2], ci[0] * cj[1] - ci[1] * cj[0]];
                        let norm = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
                        if norm > 0.0 {
                            let c = (n[2] / norm).clamp(-1.0, 1.0);
                            cuts.extend([c.acos(), (-c).acos()].into_iter().filter(|&p| p > 0.0 && p < PI));
                        }
                    }
                }
            }
            cuts.sort_by(f64::total_cmp);
            cuts.dedup_by(|a, b| (*a - *b).abs() < 1e-14);
            let mut total = 0.0;
            for w in cuts.windows(2) {
                let (lo, hi) = (w[0], w[1]);
                // psi = lo + (hi - lo)(1 - cos(pi s)) / 2, s in [0, 1]: clusters nodes at both ends.
                for &(x, wt) in rule {
                    let s = 0.5 * (x + 1.0);
                    let psi = lo + (hi - lo) * 0.5 * (1.0 - (PI * s).cos());
                    let jac = (hi - lo) * 0.5 * PI * (PI * s).sin() * 0.5;
                    let (sp, cpsi) = psi.sin_cos();
                    let sub: Vec<Factor> = factors
                        .iter()
                        .map(|(c, e, p)| (c[..dim - 1].iter().map(|x| x * sp).collect(), c[dim - 1] * cpsi + e, *p))
                        .collect();
                    total += wt * jac * sp.powi(p) * sphere_avg(&sub, rule);
                }
            }
            total / z
        }
    }
}

/// `int_0^pi sin^p psi dpsi`.
fn sin_power_integral(p: usize) -> f64 {
    // Wallis: I_0 = pi, I_1 = 2, I_p = (p-1)/p I_{p-2}
    match p {
        0 => PI,
        1 => 2.0,
        _ => (p - 1) as f64 / p as f64 * sin_power_integral(p - 2),
    }
}

/// Circle case of [`sphere_avg`]: each factor is `A cos(phi - phi0) + e`.
fn circle_avg(factors: &[Factor], rule: &[(f64, f64)]) -> f64 {
    let mut cuts = vec![0.0, 2.0 * PI];
    let polar: Vec<(f64, f64, f64, i32)> = factors.iter().map(|(c, e, p)| (c[0].hypot(c[1]), c[1].atan2(c[0]), *e, *p)).collect();
    for &(a, phi0, e, _) in &polar {
        if a > 0.0 && (e / a).abs() < 1.0 {
            let half = (-e / a).acos();
            cuts.push((phi0 + half).rem_euclid(2.0 * PI));
            cuts.push((phi0 - half).rem_euclid(2.0 * PI));
        }
    }
    cuts.sort_by(f64::total_cmp);
    let f = |phi: f64| polar.iter().map(|&(a, p0, e, p)| (a * (phi - p0).cos() + e).max(0.0).powi(p)).product::<f64>();
    let mut total = 0.0;
    for w in cuts.windows(2) {
        let (lo, hi) = (w[0], w[1]);
        if hi - lo < 1e-300 || f(0.5 * (lo + hi)) == 0.0 {
            continue;
        }
        let half = 0.5 * (hi - lo);
        total += half * rule.iter().map(|&(x, wt)| wt * f(lo + half * (x + 1.0))).sum::<f64>();
    }
    total / (2.0 * PI)
}

/// The exact finite-N predictions for one architecture (all widths).
#[derive(Clone, Debug)]
pub struct ExactTheory {
    sw: f64,
    /// Full kernel K (with sb^2).
    k: Vec<Vec<f64>>,
    /// P = K_W / sw^2 = M(a, b).
    p: Vec<Vec<f64>>,
    m: UnitMoments,
}

impl ExactTheory {
    /// Prepares the unit moments of orders 4 and 6 for `arch`.
    ///
    /// ```
    /// use nnqft_core::{ArchSpec, Activation, exact::{ExactTheory, Accuracy}};
    /// // relu, sb = 0, d = 1, x > 0: N kappa4 = (15/4) sw^8 prod x.
    /// let arch = ArchSpec::single("r", Activation::Relu, 1.0, 0.0, vec![vec![0.2], vec![0.4], vec![0.6], vec![0.8]]);
    /// let th = ExactTheory::new(&arch, Accuracy::default());
    /// let want = 15.0 / 4.0 * 0.2 * 0.4 * 0.6 * 0.8 / 10.0;
    /// assert!((th.kappa4(&[0, 1, 2, 3], 10) - want).abs() < 1e-15);
    /// ```
    pub fn new(arch: &ArchSpec, acc: Accuracy) -> Self {
        Self::for_orders(arch, &[2, 4, 6], acc)
    }

    /// Prepares only what the n-point functions of `orders` need: order 2
    /// none (it is the GP at every width), order 4 the unit moments of order
    /// 4, order 6 those of orders 4 and 6. [`delta`](Self::delta) of an
    /// order not prepared panics.
    ///
    /// ```
    /// use nnqft_core::{ArchSpec, Activation, exact::{ExactTheory, Accuracy}};
    /// let arch = ArchSpec::single("e", Activation::Erf, 1.0, 1.0, vec![vec![-1.0], vec![1.0]]);
    /// let th = ExactTheory::for_orders(&arch, &[2], Accuracy::default());
    /// assert_eq!(th.delta(&[0, 1], 10), 0.0);
    /// assert!((th.gp(&[0, 1]) - 1.0).abs() < 1e-12);
    /// ```
    pub fn for_orders(arch: &ArchSpec, orders: &[usize], acc: Accuracy) -> Self {
        let unit: Vec<usize> = [4, 6].into_iter().filter(|&u| orders.iter().any(|&o| o >= u)).collect();
        let sw2 = arch.sigma_w * arch.sigma_w;
        let p = arch
            .inputs
            .iter()
            .map(|x| arch.inputs.iter().map(|y| if sw2 > 0.0 { arch.kernel_w(x, y) / sw2 } else { 0.0 }).collect())
            .collect();
        ExactTheory { sw: arch.sigma_w, k: arch.kernel_matrix(), p, m: UnitMoments::new(arch, &unit, acc) }
    }

    /// The Gaussian-process value of the n-point function (Wick sum of K).
    pub fn gp(&self, t: &[usize]) -> f64 {
        crate::tuples::wick(t, |a, b| self.k[a][b])
    }

    /// Connected 4-point function at width `n`.
    pub fn kappa4(&self, t: &[usize], n: usize) -> f64 {
        let pp: f64 = pairings(4).iter().map(|q| q.iter().map(|&(i, j)| self.p[t[i]][t[j]]).product::<f64>()).sum();
        self.sw.powi(4) / n as f64 * (3.0 * self.m.get(t) - pp)
    }

    /// Connected 6-point function at width `n`.
    pub fn kappa6(&self, t: &[usize], n: usize) -> f64 {
        let mp: f64 = pair_quad_splits()
            .iter()
            .map(|&((i, j), q)| self.m.get(&[t[q[0]], t[q[1]], t[q[2]], t[q[3]]]) * self.p[t[i]][t[j]])
            .sum();
        let ppp: f64 = pairings(6).iter().map(|q| q.iter().map(|&(i, j)| self.p[t[i]][t[j]]).product::<f64>()).sum();
        self.sw.powi(6) / (n as f64).powi(2) * (15.0 * self.m.get(t) - 3.0 * mp + 2.0 * ppp)
    }

    /// The Gaussian-process value of `G_{o_1..o_n}(t_1..t_n)` between
    /// outputs `o` of a net with several outputs (centred parameters):
    /// the Wick sum of `delta_{o o'} K`.
    pub fn gp_outputs(&self, t: &[usize], o: &[usize]) -> f64 {
        pairings(t.len()).iter().map(|q| q.iter().map(|&(i, j)| if o[i] == o[j] { self.k[t[i]][t[j]] } else { 0.0 }).product::<f64>()).sum()
    }

    /// Connected 4-point function between outputs `o` at inputs `t`, width
    /// `n` (docs/physics.md §12): `(sw^4 / n) sum over the pairings (pq|rs)
    /// of delta_{o_p o_q} delta_{o_r o_s} [M(t) - P_{pq} P_{rs}]`; with all
    /// outputs equal it is [`kappa4`](Self::kappa4).
    ///
    /// ```
    /// use nnqft_core::{ArchSpec, Activation, exact::{ExactTheory, Accuracy}};
    /// let arch = ArchSpec::single("e", Activation::Erf, 1.0, 1.0, vec![vec![-1.0], vec![1.0]]);
    /// let th = ExactTheory::for_orders(&arch, &[4], Accuracy::default());
    /// let t = [0, 1, 0, 1];
    /// assert!((th.kappa4_outputs(&t, &[2, 2, 2, 2], 5) - th.kappa4(&t, 5)).abs() < 1e-15);
    /// assert_eq!(th.kappa4_outputs(&t, &[0, 1, 2, 2], 5), 0.0); // an output appears once
    /// ```
    pub fn kappa4_outputs(&self, t: &[usize], o: &[usize], n: usize) -> f64 {
        let m = self.m.get(t);
        let sum: f64 = pairings(4)
            .iter()
            .filter(|q| q.iter().all(|&(i, j)| o[i] == o[j]))
            .map(|q| m - q.iter().map(|&(i, j)| self.p[t[i]][t[j]]).product::<f64>())
            .sum();
        self.sw.powi(4) / n as f64 * sum
    }

    /// Exact `G_n - G_n^GP` at width `n` for a tuple of order 2, 4 or 6
    /// (0 for order 2: the two-point function is exactly K at every width).
    pub fn delta(&self, t: &[usize], n: usize) -> f64 {
        match t.len() {
            2 => 0.0,
            4 => self.kappa4(t, n),
            6 => {
                let disc: f64 = pair_quad_splits()
                    .iter()
                    .map(|&((i, j), q)| self.k[t[i]][t[j]] * self.kappa4(&[t[q[0]], t[q[1]], t[q[2]], t[q[3]]], n))
                    .sum();
                disc + self.kappa6(t, n)
            }
            o => panic!("no exact prediction for order {o}"),
        }
    }
}
