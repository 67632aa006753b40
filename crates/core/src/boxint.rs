//! Integrals of products of GP kernels over the box `[-L, L]^d` or all of
//! `R^d` (docs/physics.md §5-7): the templates of the quartic and sextic
//! couplings.
//!
//! The rule is a tensor product of one-dimensional composite Gauss-Legendre
//! rules. Each axis is cut at the kernels' kinks (0 and the inputs'
//! coordinates: the relu kernel with `sigma_b = 0` is `sw^4 x y / 2` for
//! `y > 0` and 0 for `y < 0` in d = 1) and at a geometric sequence of
//! points `+-h q^j` (panels grow with the distance from the inputs, where the
//! integrands are smooth and slowly varying), so every panel integrates an
//! analytic function; the error is estimated by a second, finer rule
//! ([`Templates::rel_err`]) and tested against closed forms.
//!
//! ```
//! use nnqft_core::{ArchSpec, Activation, boxint::{BoxRule, Resolution}};
//! // relu, sb = 0, d = 1: int_{-L}^{L} K(x, y)^4 dy = (x/2)^4 L^5 / 5 for x > 0.
//! let a = ArchSpec::single("r", Activation::Relu, 1.0, 0.0, vec![vec![0.5]]);
//! let rule = BoxRule::new(&a, 10.0, Resolution::default());
//! let i = rule.integrate(|y| a.kernel(&[0.5], y).powi(4));
//! assert!((i - 0.25f64.powi(4) * 1e5 / 5.0).abs() < 1e-9 * i);
//! ```

use crate::tuples::{add_sums, tuple_index, tuples, ProductTree};
use crate::{Activation, ArchSpec};
use gauss_quad::GaussLegendre;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::num::NonZeroUsize;

/// Which two-point function the integrals use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Propagator {
    /// The full kernel `K = sb^2 + K_W` (docs/physics.md §5, the default).
    #[serde(rename = "K")]
    Full,
    /// The weight part `K_W` only (the reference code's choice; seed 001's N_K).
    #[serde(rename = "K_W")]
    Weight,
}

impl Propagator {
    pub fn name(self) -> &'static str {
        match self {
            Propagator::Full => "K",
            Propagator::Weight => "K_W",
        }
    }

    /// The propagator between `x` and `y` for `arch`.
    pub fn eval(self, arch: &ArchSpec, x: &[f64], y: &[f64]) -> f64 {
        match self {
            Propagator::Full => arch.sigma_b * arch.sigma_b + arch.kernel_w_fast(x, y),
            Propagator::Weight => arch.kernel_w_fast(x, y),
        }
    }
}

/// Why an integral over the region cannot be done.
pub fn check_integrable(arch: &ArchSpec, cutoff: f64, prop: Propagator) -> Result<(), String> {
    if !(cutoff > 0.0) {
        return Err(format!("cutoff must be > 0 (got {cutoff})"));
    }
    if cutoff.is_infinite() && !decays(arch, prop) {
        return Err(format!(
            "cutoff = inf needs a kernel that decays at large |y|: only gauss with propagator K_W (or sigma_b = 0); {} with {} grows or tends to a constant, so the integrals over R^{} diverge",
            arch.activation.name(),
            prop.name(),
            arch.d_in
        ));
    }
    Ok(())
}

fn decays(arch: &ArchSpec, prop: Propagator) -> bool {
    arch.activation == Activation::Gauss && (prop == Propagator::Weight || arch.sigma_b == 0.0)
}

/// Nodes per panel and panel growth of a [`BoxRule`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Resolution {
    /// Gauss-Legendre nodes per panel (per axis).
    pub nodes: usize,
    /// Ratio of successive panel edges away from the inputs (> 1).
    pub growth: f64,
    /// Smallest panel, relative to the kernel's length scale.
    pub first: f64,
}

impl Default for Resolution {
    fn default() -> Self {
        Resolution { nodes: 16, growth: 1.6, first: 0.1 }
    }
}

impl Resolution {
    /// The default for `d` dimensions (coarser per axis as d grows, so a
    /// tensor rule stays within a few million nodes).
    pub fn for_dim(d: usize) -> Self {
        match d {
            1 => Resolution::default(),
            2 => Resolution { nodes: 10, growth: 1.8, first: 0.1 },
            _ => Resolution { nodes: 6, growth: 2.0, first: 0.15 },
        }
    }

    /// A finer rule for error estimates: 1.5x the nodes, smaller growth.
    pub fn finer(self) -> Self {
        Resolution { nodes: self.nodes * 3 / 2, growth: 1.0 + (self.growth - 1.0) * 0.75, first: self.first * 0.75 }
    }

    /// A coarser rule with about `budget` nodes at most in `d` dimensions
    /// (for the double integrals, whose cost is quadratic in the nodes).
    pub fn within(self, arch: &ArchSpec, cutoff: f64, budget: usize) -> Self {
        let mut r = self;
        loop {
            let n = BoxRule::new(arch, cutoff, r).len();
            if n <= budget || (r.nodes <= 2 && r.growth >= 4.0) {
                return r;
            }
            if r.nodes > 2 {
                r.nodes -= 1;
            } else {
                r.growth *= 1.25;
            }
        }
    }
}

/// A quadrature rule on `[-L, L]^d` (or on the region of `R^d` where a
/// decaying kernel's products are above 1e-17 of their peak).
#[derive(Clone, Debug)]
pub struct BoxRule {
    pub d: usize,
    /// Node r is `points[r * d .. (r + 1) * d]`.
    pub points: Vec<f64>,
    pub weights: Vec<f64>,
}

/// One axis: breakpoints and a composite Gauss-Legendre rule between them.
/// The kinks are always panel edges; around each, panel edges are graded
/// from `first * scale` growing by `growth`; edges closer than half the local
/// panel size to the previous one are dropped.
fn axis_rule(lo: f64, hi: f64, kinks: &[f64], scale: f64, res: Resolution) -> (Vec<f64>, Vec<f64>) {
    let kinks: Vec<f64> = kinks.iter().copied().filter(|&k| k > lo && k < hi).collect();
    let near = |c: f64| kinks.iter().fold(f64::MAX, |m, &k| m.min((c - k).abs()));
    let local = |c: f64| res.first * scale + (res.growth - 1.0) * near(c);
    let mut cand = Vec::new();
    for &k in &kinks {
        let (mut step, mut off) = (res.first * scale, res.first * scale);
        while off < hi - lo {
            cand.extend([k - off, k + off].into_iter().filter(|&p| p > lo && p < hi));
            step *= res.growth;
            off += step;
        }
    }
    if kinks.is_empty() {
        // No kink inside (a whole-line rule around the inputs): uniform panels.
        let panels = ((hi - lo) / (res.first * scale * 4.0)).ceil().max(1.0) as usize;
        cand.extend((1..panels).map(|i| lo + (hi - lo) * i as f64 / panels as f64));
    }
    cand.sort_by(f64::total_cmp);
    let mut edges: Vec<f64> = vec![lo];
    let mut ki = kinks.clone();
    ki.sort_by(f64::total_cmp);
    let mut kit = ki.into_iter().peekable();
    for c in cand.into_iter().chain([hi]) {
        // Kinks before c are always kept.
        while let Some(&k) = kit.peek() {
            if k > c {
                break;
            }
            if k > *edges.last().expect("edges") {
                edges.push(k);
            }
            kit.next();
        }
        let last = *edges.last().expect("edges");
        if c == hi {
            if hi - last < 0.25 * local(hi) && edges.len() > 1 && !kinks.contains(&last) {
                edges.pop();
            }
            edges.push(hi);
        } else if c - last >= 0.5 * local(c) && hi - c >= 0.25 * local(c) {
            edges.push(c);
        }
    }
    let gl = GaussLegendre::new(NonZeroUsize::new(res.nodes).expect("nodes >= 1"));
    let mut nodes = Vec::new();
    let mut weights = Vec::new();
    for w in edges.windows(2) {
        let (a, b) = (w[0], w[1]);
        let (mid, half) = (0.5 * (a + b), 0.5 * (b - a));
        for (t, wt) in gl.iter() {
            nodes.push(mid + half * t);
            weights.push(half * wt);
        }
    }
    (nodes, weights)
}

impl BoxRule {
    /// The rule for `arch`'s kernels on `[-cutoff, cutoff]^d`; `cutoff =
    /// inf` means all of `R^d` and needs a decaying kernel (see
    /// [`check_integrable`]; the region is then cut where the products of
    /// two kernels fall below 1e-17).
    pub fn new(arch: &ArchSpec, cutoff: f64, res: Resolution) -> Self {
        let d = arch.d_in;
        let sw = arch.sigma_w.max(1e-12);
        // The kernels' length scale: gauss K_W = exp(-sw^2 |x - y|^2 / (2 d)).
        let scale = match arch.activation {
            Activation::Gauss => (d as f64).sqrt() / sw,
            _ => 1.0,
        };
        let axes: Vec<(Vec<f64>, Vec<f64>)> = (0..d)
            .map(|j| {
                let coords: Vec<f64> = arch.inputs.iter().map(|x| x[j]).collect();
                let (lo, hi) = if cutoff.is_finite() {
                    (-cutoff, cutoff)
                } else {
                    let r = (40.0 * d as f64).sqrt() / sw;
                    let (mn, mx) = coords.iter().fold((f64::MAX, f64::MIN), |(a, b), &c| (a.min(c), b.max(c)));
                    (mn - r, mx + r)
                };
                let mut kinks = vec![0.0];
                kinks.extend(&coords);
                axis_rule(lo, hi, &kinks, scale, res)
            })
            .collect();
        let n: usize = axes.iter().map(|a| a.0.len()).product();
        let mut points = Vec::with_capacity(n * d);
        let mut weights = Vec::with_capacity(n);
        for r in 0..n {
            let (mut rest, mut w) = (r, 1.0);
            for (nodes, ws) in &axes {
                let i = rest % nodes.len();
                rest /= nodes.len();
                points.push(nodes[i]);
                w *= ws[i];
            }
            weights.push(w);
        }
        BoxRule { d, points, weights }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// Node `r`.
    pub fn point(&self, r: usize) -> &[f64] {
        &self.points[r * self.d..(r + 1) * self.d]
    }

    /// `sum_r w_r g(y_r)`.
    pub fn integrate(&self, g: impl Fn(&[f64]) -> f64 + Sync) -> f64 {
        let parts: Vec<f64> = (0..self.len())
            .into_par_iter()
            .with_min_len(4096)
            .fold(|| 0.0, |acc, r| acc + self.weights[r] * g(self.point(r)))
            .collect();
        parts.iter().sum()
    }

    /// `int prod_{a in t} K(x_a, y) dy` on this rule for every sorted tuple t
    /// of each order (in [`tuples`] order).
    pub fn kernel_products(&self, arch: &ArchSpec, prop: Propagator, orders: &[usize]) -> BTreeMap<usize, Vec<f64>> {
        self.product_sums(&self.columns(arch, prop), orders, |_| 1.0)
    }

    /// `K(x_a, y_r)` for every input a (outer) and node r (inner).
    fn columns(&self, arch: &ArchSpec, prop: Propagator) -> Vec<Vec<f64>> {
        arch.inputs
            .par_iter()
            .map(|x| (0..self.len()).map(|r| prop.eval(arch, x, self.point(r))).collect())
            .collect()
    }

    /// `sum_r w_r g(y_r) prod_{a in t} K(x_a, y_r)` for every sorted tuple t
    /// of each order, in [`tuples`] order; blocks of nodes in parallel,
    /// combined in a fixed order (deterministic).
    fn product_sums(&self, cols: &[Vec<f64>], orders: &[usize], g: impl Fn(&[f64]) -> f64 + Sync) -> BTreeMap<usize, Vec<f64>> {
        const CHUNK: usize = 1 << 14;
        let tree = ProductTree::new(cols.len(), orders);
        let w: Vec<f64> = (0..self.len()).map(|r| self.weights[r] * g(self.point(r))).collect();
        let blocks: Vec<BTreeMap<usize, Vec<f64>>> = (0..self.len().div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| {
                let range = c * CHUNK..((c + 1) * CHUNK).min(self.len());
                let sl: Vec<&[f64]> = cols.iter().map(|col| &col[range.clone()]).collect();
                tree.sums(&sl, Some(&w[range]))
            })
            .collect();
        let mut acc = BTreeMap::new();
        for b in blocks {
            add_sums(&mut acc, b);
        }
        acc
    }
}

/// The integrals the couplings need, for every tuple of `arch`'s inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Templates {
    pub k: usize,
    pub d: usize,
    pub cutoff: f64,
    pub propagator: Propagator,
    /// `int prod_{a in t} K(x_a, y) dy` for t in `tuples(k, 2)`, `tuples(k, 4)`, `tuples(k, 6)`.
    pub prod: BTreeMap<usize, Vec<f64>>,
    /// `int |y|^2 prod_{a in t} K(x_a, y) dy` for t in `tuples(k, 4)`.
    pub prod4_y2: Vec<f64>,
    /// `sum_10 int int K(1y)K(2y)K(3y) K(y,z) K(4z)K(5z)K(6z)` for t in
    /// `tuples(k, 6)` (empty when not requested).
    pub two_vertex: Vec<f64>,
    /// Largest relative difference between this rule and a finer one, per
    /// template: "prod2", "prod4", "prod4_y2", "prod6", "two_vertex".
    pub rel_err: BTreeMap<String, f64>,
    /// Nodes of the main rule and of the double-integral rule.
    pub nodes: usize,
    pub nodes_two_vertex: usize,
}

/// Node budget of the double integrals (their cost is quadratic in it; a
/// quadrature kernel, tanh, gets a sixth of it).
pub const TWO_VERTEX_BUDGET: usize = 5000;

fn max_rel_diff(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs() / y.abs().max(1e-300).max(1e-12 * scale)).fold(0.0, f64::max)
}

/// max |a - b| / max |b|: the difference relative to the table's scale.
fn max_scaled_diff(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

/// The ten ways to split six positions into two unordered triples.
pub fn triple_splits() -> Vec<([usize; 3], [usize; 3])> {
    let mut out = Vec::new();
    for b in 1..6 {
        for c in b + 1..6 {
            let rest: Vec<usize> = (1..6).filter(|&i| i != b && i != c).collect();
            out.push(([0, b, c], [rest[0], rest[1], rest[2]]));
        }
    }
    out
}

fn sorted<const N: usize>(t: &[usize], pos: [usize; N]) -> Vec<usize> {
    let mut v: Vec<usize> = pos.iter().map(|&p| t[p]).collect();
    v.sort_unstable();
    v
}

impl Templates {
    /// All templates of `arch` on `[-cutoff, cutoff]^d` (or `R^d`) with the
    /// given propagator. `six` adds the order-6 templates (the double
    /// integral is the expensive part). The error estimate costs one more
    /// evaluation on a finer rule.
    pub fn new(arch: &ArchSpec, cutoff: f64, prop: Propagator, six: bool) -> Result<Self, String> {
        check_integrable(arch, cutoff, prop)?;
        let res = Resolution::for_dim(arch.d_in);
        let orders: Vec<usize> = if six { vec![2, 4, 6] } else { vec![2, 4] };
        let compute = |res: Resolution| {
            let rule = BoxRule::new(arch, cutoff, res);
            let cols = rule.columns(arch, prop);
            let prod = rule.product_sums(&cols, &orders, |_| 1.0);
            let y2 = rule.product_sums(&cols, &[4], |y| y.iter().map(|v| v * v).sum()).remove(&4).expect("order 4");
            (rule.len(), prod, y2)
        };
        let (nodes, prod, prod4_y2) = compute(res);
        let (_, fprod, fy2) = compute(res.finer());
        let mut rel_err = BTreeMap::new();
        for &o in &orders {
            rel_err.insert(format!("prod{o}"), max_rel_diff(&prod[&o], &fprod[&o]));
        }
        rel_err.insert("prod4_y2".into(), max_rel_diff(&prod4_y2, &fy2));
        let (mut two_vertex, mut nodes_two_vertex) = (Vec::new(), 0);
        if six {
            // A quadrature kernel (tanh) costs ~1e4 times a closed form: fewer nodes.
            let budget = if arch.activation == Activation::Tanh { TWO_VERTEX_BUDGET / 6 } else { TWO_VERTEX_BUDGET };
            let coarse = res.within(arch, cutoff, budget);
            let tv = two_vertex_sums(arch, cutoff, prop, coarse);
            let tv_fine = two_vertex_sums(arch, cutoff, prop, coarse.finer());
            // Relative to the table's scale, not entry by entry: the ten-term sums change sign
            // across tuples, and near a zero a tiny absolute error is a huge relative one. The
            // template enters the 6-point fit as an additive offset, where the absolute error is
            // what counts.
            rel_err.insert("two_vertex".into(), max_scaled_diff(&tv.0, &tv_fine.0));
            two_vertex = tv.0;
            nodes_two_vertex = tv.1;
        }
        Ok(Templates { k: arch.k(), d: arch.d_in, cutoff, propagator: prop, prod, prod4_y2, two_vertex, rel_err, nodes, nodes_two_vertex })
    }

    /// `int prod_{a in t} K(x_a, y) dy` for a sorted tuple t of order 2, 4 or 6.
    pub fn prod(&self, t: &[usize]) -> f64 {
        self.prod[&t.len()][tuple_index(self.k, t)]
    }

    /// `int |y|^2 prod K` for a sorted 4-tuple.
    pub fn prod4_y2(&self, t: &[usize]) -> f64 {
        self.prod4_y2[tuple_index(self.k, t)]
    }

    /// The non-local template `sum_3 [int K_a K_b] [int K_c K_d]` of a sorted 4-tuple.
    pub fn nonlocal(&self, t: &[usize]) -> f64 {
        let pair = |i: usize, j: usize| {
            let (a, b) = (t[i].min(t[j]), t[i].max(t[j]));
            self.prod(&[a, b])
        };
        pair(0, 1) * pair(2, 3) + pair(0, 2) * pair(1, 3) + pair(0, 3) * pair(1, 2)
    }

    /// The two-vertex template of a sorted 6-tuple.
    pub fn two_vertex(&self, t: &[usize]) -> f64 {
        self.two_vertex[tuple_index(self.k, t)]
    }

    /// Largest estimated relative quadrature error over all templates.
    pub fn max_rel_err(&self) -> f64 {
        self.rel_err.values().fold(0.0, |m, &v| m.max(v))
    }

    /// Largest estimated relative error of the templates an `order`-point
    /// model uses: 4 (the quartic fits) uses `prod2` (the non-local
    /// template), `prod4` and `prod4_y2`; 6 uses `prod6` and `two_vertex`.
    /// So a coarse 6-point double integral cannot disqualify a 4-point fit.
    ///
    /// ```
    /// # use nnqft_core::{ArchSpec, Activation, boxint::{Templates, Propagator}};
    /// let a = ArchSpec::single("e", Activation::Erf, 1.0, 1.0, vec![vec![-1.0], vec![1.0]]);
    /// let t = Templates::new(&a, 10.0, Propagator::Full, true).unwrap();
    /// assert!(t.rel_err_of_order(4) <= t.max_rel_err());
    /// assert!(t.rel_err_of_order(6) <= t.max_rel_err());
    /// ```
    pub fn rel_err_of_order(&self, order: usize) -> f64 {
        let keys: &[&str] = if order <= 4 { &["prod2", "prod4", "prod4_y2"] } else { &["prod6", "two_vertex"] };
        keys.iter().filter_map(|k| self.rel_err.get(*k)).fold(0.0, |m, &v| m.max(v))
    }
}

/// `int prod_{a in t} K(x_a, y) dy` for every sorted 4-tuple t only (the
/// denominator of lambda_m, for cutoff scans), with the largest relative
/// difference to a finer rule.
pub fn quartic_integrals(arch: &ArchSpec, cutoff: f64, prop: Propagator) -> Result<(Vec<f64>, f64), String> {
    check_integrable(arch, cutoff, prop)?;
    let res = Resolution::for_dim(arch.d_in);
    let coarse = BoxRule::new(arch, cutoff, res).kernel_products(arch, prop, &[4]).remove(&4).expect("order 4");
    let fine = BoxRule::new(arch, cutoff, res.finer()).kernel_products(arch, prop, &[4]).remove(&4).expect("order 4");
    let err = max_rel_diff(&coarse, &fine);
    Ok((coarse, err))
}

/// `sum_10 int int A_{abc}(y) K(y, z) A_{def}(z)` for every sorted 6-tuple,
/// with `A_{abc}(y) = K(x_a,y) K(x_b,y) K(x_c,y)`: one matrix-vector product
/// per sorted triple, then dot products.
fn two_vertex_sums(arch: &ArchSpec, cutoff: f64, prop: Propagator, res: Resolution) -> (Vec<f64>, usize) {
    let rule = BoxRule::new(arch, cutoff, res);
    let n = rule.len();
    let cols = rule.columns(arch, prop);
    let k = arch.k();
    let triples = tuples(k, 3);
    // v[tau][r] = w_r prod_{a in tau} K(x_a, y_r)
    let v: Vec<Vec<f64>> = triples
        .iter()
        .map(|tau| (0..n).map(|r| rule.weights[r] * tau.iter().map(|&a| cols[a][r]).product::<f64>()).collect())
        .collect();
    let nt = triples.len();
    // u[tau] = Kyy v[tau], one row of K(y_r, .) at a time (never the n x n matrix).
    let rows: Vec<Vec<f64>> = (0..n)
        .into_par_iter()
        .map_init(
            || vec![0.0; n],
            |row, r| {
                for (s, k) in row.iter_mut().enumerate() {
                    *k = prop.eval(arch, rule.point(r), rule.point(s));
                }
                v.iter().map(|vt| row.iter().zip(vt).map(|(a, b)| a * b).sum()).collect()
            },
        )
        .collect();
    let u: Vec<Vec<f64>> = (0..nt).map(|tau| rows.iter().map(|ur| ur[tau]).collect()).collect();
    let g: Vec<f64> = (0..nt * nt).into_par_iter().map(|ij| v[ij / nt].iter().zip(&u[ij % nt]).map(|(a, b)| a * b).sum()).collect();
    let splits = triple_splits();
    let out = tuples(k, 6)
        .iter()
        .map(|t| {
            splits
                .iter()
                .map(|(p, q)| g[tuple_index(k, &sorted(t, *p)) * nt + tuple_index(k, &sorted(t, *q))])
                .sum()
        })
        .collect();
    (out, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_triple_splits_cover_each_pair_once() {
        let s = triple_splits();
        assert_eq!(s.len(), 10);
        let mut seen = std::collections::HashSet::new();
        for (a, b) in s {
            let mut all: Vec<usize> = a.iter().chain(&b).copied().collect();
            all.sort_unstable();
            assert_eq!(all, vec![0, 1, 2, 3, 4, 5]);
            assert!(seen.insert(a));
        }
    }
}
