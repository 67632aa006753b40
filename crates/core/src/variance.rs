//! The exact variance of the per-net estimators of a single-hidden-layer
//! ensemble (docs/physics.md §10), before anything is sampled.
//!
//! The estimator of a tuple `t` (|t| = n) is `X_t = prod_{a in t} f(x_a)`, so
//! `Var X_t = G_2n(t + t) - G_n(t)^2`, with `G_m` the exact m-point function
//! of any multiset of input points at width N. It follows from the joint
//! cumulants of `f`:
//!
//! ```text
//! kappa_f(B) = [|B| = 2] sb^2 + N c_T(B)      (B a block of points, |B| even)
//! E[prod_{a in B} T(x_a)] = (sw^2 / N)^(|B|/2) (|B| - 1)!! M(B)
//! ```
//!
//! where `T = W1_i h_i` is one hidden unit's term and `c_T` its joint
//! cumulants (moment-cumulant recursion), and `G_m(S)` is the sum over the
//! set partitions of S into even blocks of the product of `kappa_f`. Both
//! recursions split off the block that holds one copy of the first point of
//! the multiset and are memoised by multiset (count vector), so the 150,349
//! partitions of twelve points are never enumerated.
//!
//! The unit moments `M` go up to order 12 with repeated points:
//!
//! - **gauss**: closed form (exact);
//! - **relu** (`D = d_in + [sb > 0] <= 3`): the sphere rule of
//!   [`crate::exact`], a repeated point being one factor to a power
//!   (exact to rounding for `D <= 2`; relu with `sb = 0, d = 1` is exact);
//! - **erf, tanh**, relu with `D = 4`: the tensor rule with about
//!   [`VARIANCE_NODE_BUDGET`] nodes (the orders are twice those of the
//!   moments, the accuracy needed is that of an error bar). Measured in
//!   `tests/variance.rs` as the largest relative change of Var X_t over the
//!   tuples of orders 2-6 against a rule with 1/2 to 2/3 of the nodes per
//!   dimension: erf 1.6e-7 (D = 2), 1.9e-6 (D = 3), 1.4e-4 (D = 4, 31 nodes
//!   per dimension); tanh 1e-14 (D = 1, 2); relu's sphere rule 2e-15 (D = 2)
//!   and 4e-10 (D = 3) between 24 and 48 nodes per arc.

use crate::exact::{Accuracy, directions, gauss_moment, relu_moment_pow, tensor_slabs};
use crate::tuples::tuples;
use crate::{Activation, ArchSpec};
use std::collections::{BTreeSet, HashMap};

/// About how many quadrature nodes the tensor rule of the order-12 unit
/// moments may use in all.
pub const VARIANCE_NODE_BUDGET: usize = 1_000_000;

/// A multiset of input points as its multiplicities: `counts[a]` copies of point a.
pub type Counts = Vec<u8>;

/// The multiplicities of a tuple of input indices over `k` points.
///
/// ```
/// assert_eq!(nnqft_core::variance::counts(3, &[0, 2, 2]), vec![1, 0, 2]);
/// ```
pub fn counts(k: usize, t: &[usize]) -> Counts {
    let mut c = vec![0u8; k];
    for &a in t {
        c[a] += 1;
    }
    c
}

/// One hidden unit's moments `M(B)` for every even multiset `B` that the
/// variances of the requested orders need; width-independent.
#[derive(Clone, Debug)]
pub struct EstimatorVariance {
    k: usize,
    sw2: f64,
    sb2: f64,
    m: HashMap<Counts, f64>,
}

/// Every sub-multiset of `c` (including the empty one and `c`).
fn sub_multisets(c: &[u8]) -> Vec<Counts> {
    let mut out = vec![Vec::with_capacity(c.len())];
    for &ca in c {
        out = out.into_iter().flat_map(|pre| (0..=ca).map(move |b| [pre.clone(), vec![b]].concat())).collect();
    }
    out
}

fn size(c: &[u8]) -> usize {
    c.iter().map(|&x| x as usize).sum()
}

/// `(r - 1)!!` for even r.
fn double_factorial_odd(r: usize) -> f64 {
    (1..r).step_by(2).map(|x| x as f64).product()
}

impl EstimatorVariance {
    /// Prepares the unit moments for the variances of every tuple of each
    /// order in `orders` (orders up to 6: unit moments up to order 12).
    ///
    /// ```
    /// use nnqft_core::{ArchSpec, Activation, exact::Accuracy, variance::EstimatorVariance};
    /// // relu, sb = 0, d = 1, x > 0: f(x) = sw^2 x F, so Var f(x)^2 = sw^8 x^4 (E F^4 - (E F^2)^2)
    /// // with E F^2 = 1/2 and E F^4 = 3/4 + 15 / (4 N) (F a sum of N iid terms v relu(w) / sqrt(N)).
    /// let arch = ArchSpec::single("r", Activation::Relu, 1.0, 0.0, vec![vec![0.5]]);
    /// let ev = EstimatorVariance::new(&arch, &[2], Accuracy::default());
    /// let n = 10.0;
    /// let want = 0.5f64.powi(4) * (0.75 + 15.0 / (4.0 * n) - 0.25);
    /// assert!((ev.at_width(10).var(&[0, 0]) - want).abs() < 1e-14);
    /// ```
    pub fn new(arch: &ArchSpec, orders: &[usize], acc: Accuracy) -> Self {
        let k = arch.k();
        // Every non-empty sub-multiset of each doubled tuple (a set closed under removing a point).
        let mut all: BTreeSet<Counts> = BTreeSet::new();
        for &o in orders {
            for t in tuples(k, o) {
                let doubled: Counts = counts(k, &t).iter().map(|c| 2 * c).collect();
                all.extend(sub_multisets(&doubled).into_iter().filter(|b| size(b) >= 1));
            }
        }
        let all: Vec<Counts> = all.into_iter().collect();
        let values = unit_moments(arch, &all, acc);
        let m = all.into_iter().zip(values).filter(|(b, _)| size(b) % 2 == 0).collect();
        EstimatorVariance { k, sw2: arch.sigma_w * arch.sigma_w, sb2: arch.sigma_b * arch.sigma_b, m }
    }

    /// How many multisets' unit moments were computed.
    pub fn n_moments(&self) -> usize {
        self.m.len()
    }

    /// The moments and cumulants at width `n`.
    pub fn at_width(&self, n: usize) -> WidthMoments<'_> {
        WidthMoments { ev: self, n: n as f64 }
    }

    /// The unit moment `M(B)` of an even multiset (one the constructor prepared).
    pub fn unit_moment(&self, b: &[u8]) -> f64 {
        *self.m.get(b).unwrap_or_else(|| panic!("unit moment {b:?} was not prepared"))
    }
}

/// The exact joint moments of `f` at one width; see [`EstimatorVariance`].
pub struct WidthMoments<'a> {
    ev: &'a EstimatorVariance,
    n: f64,
}

/// `C(n, k)` for n <= 12.
fn binom(n: u8, k: u8) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// The sub-multisets of one multiset (at most 6 distinct points, each up to
/// 12 times) in mixed-radix order: index `sum_i b_i stride_i`, so every
/// sub-multiset of S comes before S.
struct Local {
    /// The distinct points and the multiplicity of each in the full multiset.
    points: Vec<usize>,
    top: Vec<u8>,
    stride: Vec<usize>,
    len: usize,
}

impl Local {
    fn new(full: &[u8]) -> Self {
        let points: Vec<usize> = (0..full.len()).filter(|&a| full[a] > 0).collect();
        let top: Vec<u8> = points.iter().map(|&a| full[a]).collect();
        let mut stride = Vec::with_capacity(top.len());
        let mut len = 1;
        for &t in &top {
            stride.push(len);
            len *= t as usize + 1;
        }
        Local { points, top, stride, len }
    }

    fn digits(&self, mut idx: usize) -> Vec<u8> {
        self.top.iter().map(|&t| {
            let d = (idx % (t as usize + 1)) as u8;
            idx /= t as usize + 1;
            d
        }).collect()
    }

    fn index(&self, digits: &[u8]) -> usize {
        digits.iter().zip(&self.stride).map(|(&d, &s)| d as usize * s).sum()
    }

    /// `f(block index, rest index, multiplicity)` for every even-sized block
    /// of the sub-multiset `s` (digits) that holds one fixed copy of its
    /// first point: the terms of both recursions.
    fn blocks(&self, s: &[u8], mut f: impl FnMut(usize, usize, f64)) {
        let Some(p0) = s.iter().position(|&x| x > 0) else { return };
        let si = self.index(s);
        let mut b = vec![0u8; s.len()];
        b[p0] = 1;
        loop {
            if b.iter().map(|&x| x as usize).sum::<usize>() % 2 == 0 {
                let mult: f64 = (0..s.len()).map(|i| if i == p0 { binom(s[i] - 1, b[i] - 1) } else { binom(s[i], b[i]) }).product();
                // The index is linear in the digits: rest = s - b.
                let bi = self.index(&b);
                f(bi, si - bi, mult);
            }
            // odometer over b <= s with b[p0] >= 1
            let mut i = 0;
            loop {
                if i == s.len() {
                    return;
                }
                let lo = u8::from(i == p0);
                if b[i] < s[i] {
                    b[i] += 1;
                    break;
                }
                b[i] = lo;
                i += 1;
            }
        }
    }
}

impl WidthMoments<'_> {
    /// The exact moments of `f` over every sub-multiset of `full`, indexed as in [`Local`].
    fn moments_below(&self, full: &[u8]) -> (Local, Vec<f64>) {
        let loc = Local::new(full);
        let (sw2n, n, sb2) = (self.ev.sw2 / self.n, self.n, self.ev.sb2);
        let mut dig = Vec::with_capacity(loc.len);
        let mut mom_t = vec![0.0; loc.len];
        for (idx, m) in mom_t.iter_mut().enumerate() {
            let d = loc.digits(idx);
            let r: usize = d.iter().map(|&x| x as usize).sum();
            if r == 0 {
                *m = 1.0;
            } else if r % 2 == 0 {
                let mut c = vec![0u8; self.ev.k];
                for (&a, &x) in loc.points.iter().zip(&d) {
                    c[a] = x;
                }
                *m = sw2n.powi(r as i32 / 2) * double_factorial_odd(r) * self.ev.unit_moment(&c);
            }
            dig.push((d, r));
        }
        // one unit's joint cumulants, then f's moments from f's cumulants
        let mut cum_t = vec![0.0; loc.len];
        for idx in 1..loc.len {
            let (d, r) = &dig[idx];
            if r % 2 == 1 {
                continue;
            }
            let mut v = mom_t[idx];
            loc.blocks(d, |b, rest, mult| {
                if rest != 0 {
                    v -= mult * cum_t[b] * mom_t[rest];
                }
            });
            cum_t[idx] = v;
        }
        let kappa = |idx: usize| n * cum_t[idx] + if dig[idx].1 == 2 { sb2 } else { 0.0 };
        let mut mom_f = vec![0.0; loc.len];
        mom_f[0] = 1.0;
        for idx in 1..loc.len {
            let (d, r) = &dig[idx];
            if r % 2 == 1 {
                continue;
            }
            let mut v = 0.0;
            loc.blocks(d, |b, rest, mult| v += mult * kappa(b) * mom_f[rest]);
            mom_f[idx] = v;
        }
        (loc, mom_f)
    }

    /// The exact n-point function `G(t)` of a tuple of input indices.
    pub fn g(&self, t: &[usize]) -> f64 {
        let c = counts(self.ev.k, t);
        let (loc, mom) = self.moments_below(&c);
        mom[loc.len - 1]
    }

    /// `Var X_t = G(t + t) - G(t)^2`: the variance of one net's product over `t`.
    pub fn var(&self, t: &[usize]) -> f64 {
        let c = counts(self.ev.k, t);
        let doubled: Counts = c.iter().map(|x| 2 * x).collect();
        let (loc, mom) = self.moments_below(&doubled);
        let half: Vec<u8> = loc.points.iter().map(|&a| c[a]).collect();
        let g = mom[loc.index(&half)];
        mom[loc.len - 1] - g * g
    }
}

/// Largest number of (node, multiset) products the tensor rule of the
/// variance may evaluate: many inputs shrink the rule.
const VARIANCE_WORK: f64 = 4e9;

/// `M(B)` for each multiset of `need` (all non-empty; closed under
/// removing one point, which the tensor rule's product tree relies on).
fn unit_moments(arch: &ArchSpec, need: &[Counts], acc: Accuracy) -> Vec<f64> {
    let expand = |c: &Counts| -> Vec<usize> { c.iter().enumerate().flat_map(|(a, &n)| std::iter::repeat_n(a, n as usize)).collect() };
    if arch.sigma_w == 0.0 && arch.sigma_b == 0.0 {
        // z = 0 for every unit: h is the activation at 0.
        let unit = arch.unit();
        return need.iter().map(|c| c.iter().enumerate().map(|(a, &n)| unit.h(a, 0.0).powi(n as i32)).product()).collect();
    }
    let v = directions(arch);
    let dim = v[0].len();
    use rayon::prelude::*;
    match arch.activation {
        Activation::Gauss => need.iter().map(|c| gauss_moment(arch, &expand(c))).collect(),
        Activation::Relu if dim <= 3 => need
            .par_iter()
            .map(|c| {
                if size(c) % 2 == 1 {
                    return f64::NAN; // not needed
                }
                let factors: Vec<(usize, i32)> = c.iter().enumerate().filter(|&(_, &n)| n > 0).map(|(a, &n)| (a, n as i32)).collect();
                relu_moment_pow(&v, &factors, acc.relu_nodes)
            })
            .collect(),
        _ => {
            // Product tree: each multiset is its parent (the last point removed) times h(last).
            let index: HashMap<&Counts, usize> = need.iter().enumerate().map(|(i, c)| (c, i)).collect();
            let mut order: Vec<usize> = (0..need.len()).collect();
            order.sort_by_key(|&i| size(&need[i]));
            let links: Vec<(usize, Option<usize>, usize)> = order
                .iter()
                .map(|&i| {
                    let c = &need[i];
                    let last = c.iter().rposition(|&x| x > 0).expect("non-empty");
                    let mut parent = c.clone();
                    parent[last] -= 1;
                    let p = (size(&parent) > 0).then(|| index[&parent]);
                    (i, p, last)
                })
                .collect();
            let budget = (VARIANCE_NODE_BUDGET as f64).min(VARIANCE_WORK / need.len() as f64) * acc.budget_scale;
            let slabs = tensor_slabs(arch, &v, budget, |cols, weights| {
                let mut acc = vec![0.0; need.len()];
                let mut val = vec![0.0; need.len()];
                for (node, &w) in weights.iter().enumerate() {
                    for &(i, parent, last) in &links {
                        let h = cols[last][node];
                        val[i] = parent.map_or(h, |p| val[p] * h);
                        acc[i] += w * val[i];
                    }
                }
                acc
            });
            let mut total = vec![0.0; need.len()];
            for s in slabs {
                for (t, x) in total.iter_mut().zip(s) {
                    *t += x;
                }
            }
            total
        }
    }
}
