//! n-point tuples, Wick pairings and the product-tree reducer.
//!
//! A tuple is a sorted multiset of input indices (docs/physics.md §3): for k
//! inputs there are C(k + n - 1, n) tuples of order n (21, 126, 462 for k = 6
//! and n = 2, 4, 6), enumerated in lexicographic order.

use crate::sampler::Isa;

/// All sorted n-tuples over `0..k`, lexicographic.
///
/// ```
/// use nnqft_core::tuples::tuples;
/// assert_eq!(tuples(3, 2), vec![vec![0, 0], vec![0, 1], vec![0, 2], vec![1, 1], vec![1, 2], vec![2, 2]]);
/// assert_eq!(tuples(6, 4).len(), 126);
/// ```
pub fn tuples(k: usize, n: usize) -> Vec<Vec<usize>> {
    fn rec(k: usize, n: usize, start: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if cur.len() == n {
            out.push(cur.clone());
            return;
        }
        for a in start..k {
            cur.push(a);
            rec(k, n, a, cur, out);
            cur.pop();
        }
    }
    let mut out = Vec::new();
    rec(k, n, 0, &mut Vec::with_capacity(n), &mut out);
    out
}

/// All ways to split positions `0..n` (n even) into unordered pairs:
/// 1, 3, 15 pairings for n = 2, 4, 6.
///
/// ```
/// assert_eq!(nnqft_core::tuples::pairings(4), vec![vec![(0, 1), (2, 3)], vec![(0, 2), (1, 3)], vec![(0, 3), (1, 2)]]);
/// ```
pub fn pairings(n: usize) -> Vec<Vec<(usize, usize)>> {
    fn rec(rest: &[usize], cur: &mut Vec<(usize, usize)>, out: &mut Vec<Vec<(usize, usize)>>) {
        let Some((&first, others)) = rest.split_first() else {
            out.push(cur.clone());
            return;
        };
        for (i, &second) in others.iter().enumerate() {
            let remaining: Vec<usize> = others.iter().enumerate().filter(|&(j, _)| j != i).map(|(_, &v)| v).collect();
            cur.push((first, second));
            rec(&remaining, cur, out);
            cur.pop();
        }
    }
    assert!(n % 2 == 0, "pairings need an even number of points");
    let mut out = Vec::new();
    rec(&(0..n).collect::<Vec<_>>(), &mut Vec::new(), &mut out);
    out
}

/// The 15 ways to split six positions into a pair and a quadruple, as
/// (pair, quadruple).
pub fn pair_quad_splits() -> Vec<((usize, usize), [usize; 4])> {
    let mut out = Vec::new();
    for a in 0..6 {
        for b in a + 1..6 {
            let rest: Vec<usize> = (0..6).filter(|&i| i != a && i != b).collect();
            out.push(((a, b), [rest[0], rest[1], rest[2], rest[3]]));
        }
    }
    out
}

/// The Wick sum `sum over pairings of prod K(x_a, x_b)` for the points of `t`
/// (any even length), with `k(a, b)` the two-point function.
///
/// ```
/// use nnqft_core::tuples::wick;
/// // <x^4> of a unit Gaussian: 3 pairings of 1.
/// assert_eq!(wick(&[0, 0, 0, 0], |_, _| 1.0), 3.0);
/// ```
pub fn wick(t: &[usize], k: impl Fn(usize, usize) -> f64) -> f64 {
    pairings(t.len()).iter().map(|p| p.iter().map(|&(i, j)| k(t[i], t[j])).product::<f64>()).sum()
}

/// Index of the sorted tuple `t` in [`tuples`]`(k, t.len())`.
pub fn tuple_index(k: usize, t: &[usize]) -> usize {
    // Count tuples lexicographically smaller: a combinatorial number system
    // for multisets (stars and bars).
    fn count(k: usize, n: usize) -> usize {
        // C(k + n - 1, n): n-multisets over k symbols
        if k == 0 {
            return usize::from(n == 0);
        }
        let (top, r) = (k + n - 1, n.min(k - 1));
        (0..r).fold(1usize, |acc, i| acc * (top - i) / (i + 1))
    }
    let mut idx = 0;
    let mut start = 0;
    for (pos, &a) in t.iter().enumerate() {
        let left = t.len() - pos - 1;
        for b in start..a {
            idx += count(k - b, left);
        }
        start = a;
    }
    idx
}

/// Weighted sums of products over rows, for every sorted tuple of the
/// requested orders: `sums[o][i] = sum_r w_r prod_{a in tuples(k, o)[i]} cols[a][r]`.
///
/// The tuples are visited as a prefix tree (depth-first, which is
/// lexicographic), so each tuple costs one multiply-add per row on top of its
/// parent's partial product; rows are processed in cache-sized blocks in a
/// fixed order, so the result is deterministic. Accumulation is in f64.
///
/// ```
/// use nnqft_core::tuples::ProductTree;
/// let tree = ProductTree::new(2, &[2, 4]);
/// let (x, y) = (vec![1.0f32, 2.0], vec![3.0f32, -1.0]);
/// let sums = tree.sums(&[&x[..], &y[..]], None);
/// assert_eq!(sums[&2], vec![1.0 + 4.0, 3.0 - 2.0, 9.0 + 1.0]);    // xx, xy, yy
/// assert_eq!(sums[&4][0], 1.0 + 16.0);                             // xxxx
/// ```
#[derive(Clone, Debug)]
pub struct ProductTree {
    k: usize,
    max_order: usize,
    /// wanted[o] is true if order o is reported.
    wanted: Vec<bool>,
    /// The prefix tree's nodes depth-first (so lexicographic within each
    /// order), as (level, input): a node's parent is the last node before
    /// it one level up, whose partial product is still in `prod` when the
    /// node is visited.
    nodes: Vec<(usize, usize)>,
}

/// Adds per-order sums `s` into `acc` element-wise (orders missing from
/// `acc` are taken over as they are). Used to combine blocks, slabs or parts
/// in a fixed order, so totals stay deterministic.
pub fn add_sums(acc: &mut std::collections::BTreeMap<usize, Vec<f64>>, s: std::collections::BTreeMap<usize, Vec<f64>>) {
    for (o, v) in s {
        match acc.get_mut(&o) {
            Some(a) => a.iter_mut().zip(&v).for_each(|(x, y)| *x += y),
            None => {
                acc.insert(o, v);
            }
        }
    }
}

/// Rows per block: the partial products of one block stay in L1/L2.
const BLOCK: usize = 512;
/// Independent partial sums per tree node.
const LANES: usize = 8;

/// A block's values of one column or partial product, aligned so that no
/// vector load of the loops straddles two cache lines.
#[derive(Clone, Copy)]
#[repr(align(64))]
struct Row([f64; BLOCK]);

/// A value that can be widened to f64 (f32 samples, f64 quadrature values).
pub trait Real: Copy + Send + Sync {
    fn f64(self) -> f64;
}
impl Real for f32 {
    #[inline(always)]
    fn f64(self) -> f64 {
        self as f64
    }
}
impl Real for f64 {
    #[inline(always)]
    fn f64(self) -> f64 {
        self
    }
}

impl ProductTree {
    /// A tree over `k` inputs reporting the given orders (each >= 1).
    pub fn new(k: usize, orders: &[usize]) -> Self {
        let max_order = orders.iter().copied().max().unwrap_or(0);
        let mut wanted = vec![false; max_order + 1];
        for &o in orders {
            assert!(o >= 1, "orders are >= 1");
            wanted[o] = true;
        }
        fn rec(k: usize, max: usize, level: usize, first: usize, out: &mut Vec<(usize, usize)>) {
            for a in first..k {
                out.push((level, a));
                if level < max {
                    rec(k, max, level + 1, a, out);
                }
            }
        }
        let mut nodes = Vec::new();
        if max_order >= 1 {
            rec(k, max_order, 1, 0, &mut nodes);
        }
        ProductTree { k, max_order, wanted, nodes }
    }

    /// Number of tuples of order `o`.
    pub fn len(&self, o: usize) -> usize {
        tuples(self.k, o).len()
    }

    /// The sums for every wanted order (see the type's docs). `weights`
    /// defaults to 1 per row. All columns must have the same length.
    ///
    /// The loops are compiled for AVX-512, AVX2 and baseline x86-64 and the
    /// widest the CPU has is used ([`Self::sums_with_isa`] forces one): the
    /// same multiplies and adds in the same order (none fused), so the same
    /// bits on each.
    pub fn sums<T: Real>(&self, cols: &[&[T]], weights: Option<&[f64]>) -> std::collections::BTreeMap<usize, Vec<f64>> {
        self.sums_with_isa(Isa::detect(), cols, weights)
    }

    /// [`Self::sums`] with the loops of one instruction set.
    ///
    /// # Panics
    /// If this CPU cannot run `isa` ([`Isa::available`]).
    pub fn sums_with_isa<T: Real>(&self, isa: Isa, cols: &[&[T]], weights: Option<&[f64]>) -> std::collections::BTreeMap<usize, Vec<f64>> {
        assert!(isa.available(), "this CPU cannot run {isa:?}");
        assert_eq!(cols.len(), self.k, "one column per input");
        let rows = cols.first().map_or(0, |c| c.len());
        assert!(cols.iter().all(|c| c.len() == rows), "columns of equal length");
        if let Some(w) = weights {
            assert_eq!(w.len(), rows, "one weight per row");
        }
        let mut sums: Vec<Vec<f64>> = (0..=self.max_order)
            .map(|o| if self.wanted[o] { vec![0.0; self.len(o)] } else { Vec::new() })
            .collect();
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU supports AVX-512F (asserted above).
            Isa::Avx512 => unsafe { self.blocks_avx512(cols, weights, &mut sums) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU supports AVX2 (asserted above).
            Isa::Avx2 => unsafe { self.blocks_avx2(cols, weights, &mut sums) },
            _ => self.blocks_generic(cols, weights, &mut sums),
        }
        (0..=self.max_order).filter(|&o| self.wanted[o]).map(|o| (o, std::mem::take(&mut sums[o]))).collect()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn blocks_avx512<T: Real>(&self, cols: &[&[T]], weights: Option<&[f64]>, sums: &mut [Vec<f64>]) {
        self.blocks(cols, weights, sums);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn blocks_avx2<T: Real>(&self, cols: &[&[T]], weights: Option<&[f64]>, sums: &mut [Vec<f64>]) {
        self.blocks(cols, weights, sums);
    }

    #[inline(never)]
    fn blocks_generic<T: Real>(&self, cols: &[&[T]], weights: Option<&[f64]>, sums: &mut [Vec<f64>]) {
        self.blocks(cols, weights, sums);
    }

    /// The reduction, inlined into each instruction set's function.
    #[inline(always)]
    fn blocks<T: Real>(&self, cols: &[&[T]], weights: Option<&[f64]>, sums: &mut [Vec<f64>]) {
        let rows = cols.first().map_or(0, |c| c.len());
        // prod[l] holds the partial product of the current prefix of length l (+1 for weights).
        let mut prod = vec![Row([0.0; BLOCK]); self.max_order + 1];
        let mut counters = vec![0usize; self.max_order + 1];
        // The block's columns widened to f64 once, not once per tree node.
        let mut block = vec![Row([0.0; BLOCK]); self.k];
        let mut start = 0;
        while start < rows {
            let len = BLOCK.min(rows - start);
            for (dst, src) in block.iter_mut().zip(cols) {
                for (d, x) in dst.0[..len].iter_mut().zip(&src[start..start + len]) {
                    *d = x.f64();
                }
            }
            match weights {
                Some(w) => prod[0].0[..len].copy_from_slice(&w[start..start + len]),
                None => prod[0].0[..len].fill(1.0),
            }
            counters.fill(0);
            for &(level, a) in &self.nodes {
                let col = &block[a].0[..len];
                let (lo, hi) = prod.split_at_mut(level);
                let parent = &lo[level - 1].0[..len];
                // (the partial sums are combined after the branch: combined
                // in each arm, the loops vectorise worse)
                let acc = if level == self.max_order { leaf(parent, col) } else { node(parent, col, &mut hi[0].0[..len]) };
                let s = combine(&acc);
                if self.wanted[level] {
                    sums[level][counters[level]] += s;
                }
                counters[level] += 1;
            }
            start += len;
        }
    }
}

/// `sum_r parent[r] col[r]` in eight independent partial sums: the adds
/// pipeline and vectorise instead of waiting on one another; they are
/// combined in a fixed order ([`combine`]), so the result is still
/// deterministic.
#[inline(always)]
fn leaf(parent: &[f64], col: &[f64]) -> [f64; LANES] {
    let mut acc = [0.0f64; LANES];
    let (pc, pr) = parent.as_chunks::<LANES>();
    let (xc, xr) = col.as_chunks::<LANES>();
    for (p, x) in pc.iter().zip(xc) {
        acc = std::array::from_fn(|l| acc[l] + p[l] * x[l]);
    }
    for (l, (p, x)) in pr.iter().zip(xr).enumerate() {
        acc[l] += p * x;
    }
    acc
}

/// [`leaf`], also storing the products in `cur` for the node's children.
#[inline(always)]
fn node(parent: &[f64], col: &[f64], cur: &mut [f64]) -> [f64; LANES] {
    let mut acc = [0.0f64; LANES];
    let (pc, pr) = parent.as_chunks::<LANES>();
    let (xc, xr) = col.as_chunks::<LANES>();
    let (cc, cr) = cur.as_chunks_mut::<LANES>();
    for ((c, p), x) in cc.iter_mut().zip(pc).zip(xc) {
        // all eight products before the store, so the loads need not wait
        // on it and the eight lanes are one vector operation
        let v: [f64; LANES] = std::array::from_fn(|l| p[l] * x[l]);
        *c = v;
        acc = std::array::from_fn(|l| acc[l] + v[l]);
    }
    for (l, ((c, p), x)) in cr.iter_mut().zip(pr).zip(xr).enumerate() {
        *c = p * x;
        acc[l] += *c;
    }
    acc
}

#[inline(always)]
fn combine(acc: &[f64; LANES]) -> f64 {
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}
