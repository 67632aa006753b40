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
use std::cell::RefCell;
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

fn binom(n: u8, k: u8) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
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
    /// // with E F^2 = 1/2 and E F^4 = 3/4 + 3 (5/2 - 1/4) / N (F a sum of N iid terms v relu(w) / sqrt(N)).
    /// let arch = ArchSpec::single("r", Activation::Relu, 1.0, 0.0, vec![vec![0.5]]);
    /// let ev = EstimatorVariance::new(&arch, &[2], Accuracy::default());
    /// let n = 10.0;
    /// let want = 0.5f64.powi(4) * (0.75 + 15.0 / (4.0 * n) - 0.25);
    /// assert!((ev.at_width(10).var(&[0, 0]) - want).abs() < 1e-14);
    /// ```
    pub fn new(arch: &ArchSpec, orders: &[usize], acc: Accuracy) -> Self {
        let k = arch.k();
        let mut need: BTreeSet<Counts> = BTreeSet::new();
        for &o in orders {
            for t in tuples(k, o) {
                let doubled: Counts = counts(k, &t).iter().map(|c| 2 * c).collect();
                need.extend(sub_multisets(&doubled).into_iter().filter(|b| size(b) >= 2 && size(b) % 2 == 0));
            }
        }
        let need: Vec<Counts> = need.into_iter().collect();
        let values = unit_moments(arch, &need, acc);
        EstimatorVariance {
            k,
            sw2: arch.sigma_w * arch.sigma_w,
            sb2: arch.sigma_b * arch.sigma_b,
            m: need.into_iter().zip(values).collect(),
        }
    }

    /// How many multisets' unit moments were computed.
    pub fn n_moments(&self) -> usize {
        self.m.len()
    }

    /// The moments and cumulants at width `n` (memoised: one per width).
    pub fn at_width(&self, n: usize) -> WidthMoments<'_> {
        WidthMoments { ev: self, n: n as f64, cum_t: RefCell::default(), mom_f: RefCell::default() }
    }

    /// The unit moment `M(B)` of a multiset (one the constructor prepared).
    pub fn unit_moment(&self, b: &[u8]) -> f64 {
        *self.m.get(b).unwrap_or_else(|| panic!("unit moment {b:?} was not prepared"))
    }
}

/// The exact joint moments of `f` at one width; see [`EstimatorVariance`].
pub struct WidthMoments<'a> {
    ev: &'a EstimatorVariance,
    n: f64,
    cum_t: RefCell<HashMap<Counts, f64>>,
    mom_f: RefCell<HashMap<Counts, f64>>,
}

/// Calls `f(block, rest, multiplicity)` for every sub-multiset `block` of `c`
/// that holds one fixed copy of the first point present in `c` (the other
/// copies and points free), with the number of ways to choose its slots.
fn blocks_with_first(c: &[u8], mut f: impl FnMut(&[u8], &[u8], f64)) {
    let Some(p0) = c.iter().position(|&x| x > 0) else { return };
    let mut rest = c.to_vec();
    rest[p0] -= 1;
    for b in sub_multisets(&rest) {
        let mult: f64 = b.iter().zip(&rest).map(|(&bi, &ci)| binom(ci, bi)).product();
        let mut block = b.clone();
        block[p0] += 1;
        let remain: Counts = c.iter().zip(&block).map(|(ci, bi)| ci - bi).collect();
        f(&block, &remain, mult);
    }
}

impl WidthMoments<'_> {
    /// `E[prod_{a in B} T(x_a)]` of one unit's term.
    fn mom_t(&self, b: &[u8]) -> f64 {
        let r = size(b);
        if r == 0 {
            return 1.0;
        }
        if r % 2 == 1 {
            return 0.0;
        }
        (self.ev.sw2 / self.n).powi(r as i32 / 2) * double_factorial_odd(r) * self.ev.unit_moment(b)
    }

    /// Joint cumulant of one unit's term over the multiset `b`.
    fn cum_t(&self, b: &[u8]) -> f64 {
        if size(b) % 2 == 1 {
            return 0.0;
        }
        if let Some(&v) = self.cum_t.borrow().get(b) {
            return v;
        }
        let mut v = self.mom_t(b);
        blocks_with_first(b, |block, rest, mult| {
            if size(rest) > 0 && size(block) % 2 == 0 {
                v -= mult * self.cum_t(block) * self.mom_t(rest);
            }
        });
        self.cum_t.borrow_mut().insert(b.to_vec(), v);
        v
    }

    /// Joint cumulant of `f` over the multiset `b`.
    pub fn kappa(&self, b: &[u8]) -> f64 {
        let r = size(b);
        if r % 2 == 1 {
            return 0.0;
        }
        self.n * self.cum_t(b) + if r == 2 { self.ev.sb2 } else { 0.0 }
    }

    /// The exact moment `E[prod_{a in S} f(x_a)]` of a multiset (counts).
    pub fn moment(&self, s: &[u8]) -> f64 {
        let r = size(s);
        if r == 0 {
            return 1.0;
        }
        if r % 2 == 1 {
            return 0.0;
        }
        if let Some(&v) = self.mom_f.borrow().get(s) {
            return v;
        }
        let mut v = 0.0;
        blocks_with_first(s, |block, rest, mult| {
            if size(block) % 2 == 0 {
                v += mult * self.kappa(block) * self.moment(rest);
            }
        });
        self.mom_f.borrow_mut().insert(s.to_vec(), v);
        v
    }

    /// The exact n-point function `G(t)` of a tuple of input indices.
    pub fn g(&self, t: &[usize]) -> f64 {
        self.moment(&counts(self.ev.k, t))
    }

    /// `Var X_t = G(t + t) - G(t)^2`: the variance of one net's product over `t`.
    pub fn var(&self, t: &[usize]) -> f64 {
        let c = counts(self.ev.k, t);
        let doubled: Counts = c.iter().map(|x| 2 * x).collect();
        let g = self.moment(&c);
        self.moment(&doubled) - g * g
    }
}

/// `M(B)` for each multiset of `need` (all of even size >= 2).
fn unit_moments(arch: &ArchSpec, need: &[Counts], acc: Accuracy) -> Vec<f64> {
    let expand = |c: &Counts| -> Vec<usize> { c.iter().enumerate().flat_map(|(a, &n)| std::iter::repeat_n(a, n as usize)).collect() };
    if arch.sigma_w == 0.0 && arch.sigma_b == 0.0 {
        // z = 0 for every unit: h is the activation at 0.
        let unit = arch.unit();
        return need.iter().map(|c| c.iter().enumerate().map(|(a, &n)| unit.h(a, 0.0).powi(n as i32)).product()).collect();
    }
    let v = directions(arch);
    let dim = v[0].len();
    match arch.activation {
        Activation::Gauss => need.iter().map(|c| gauss_moment(arch, &expand(c))).collect(),
        Activation::Relu if dim <= 3 => {
            use rayon::prelude::*;
            need.par_iter()
                .map(|c| {
                    let factors: Vec<(usize, i32)> = c.iter().enumerate().filter(|&(_, &n)| n > 0).map(|(a, &n)| (a, n as i32)).collect();
                    relu_moment_pow(&v, &factors, acc.relu_nodes)
                })
                .collect()
        }
        _ => {
            let max_power = need.iter().flat_map(|c| c.iter().copied()).max().unwrap_or(0) as usize;
            let slabs = tensor_slabs(arch, &v, VARIANCE_NODE_BUDGET as f64 * acc.budget_scale, |cols, weights| {
                // powers[a][p][i] = h_a(node i)^p
                let powers: Vec<Vec<Vec<f64>>> = cols
                    .iter()
                    .map(|col| {
                        let mut ps = vec![vec![1.0; col.len()]];
                        for p in 1..=max_power {
                            let next: Vec<f64> = ps[p - 1].iter().zip(col).map(|(a, b)| a * b).collect();
                            ps.push(next);
                        }
                        ps
                    })
                    .collect();
                need.iter()
                    .map(|c| {
                        let present: Vec<&[f64]> = c.iter().enumerate().filter(|&(_, &n)| n > 0).map(|(a, &n)| powers[a][n as usize].as_slice()).collect();
                        (0..weights.len()).map(|i| weights[i] * present.iter().map(|col| col[i]).product::<f64>()).sum::<f64>()
                    })
                    .collect::<Vec<f64>>()
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
