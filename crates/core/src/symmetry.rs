//! Output symmetries (docs/physics.md §12): seeded random rotations of the
//! outputs and the decomposition of a correlator's output-index tensor into
//! O(D)-invariant tensors (products of Kronecker deltas) plus a residual.
//!
//! With centred output-layer parameters the law of `(f_1..f_D)` is
//! O(D)-invariant, so at fixed inputs `G_{i_1..i_n}` is a combination of the
//! pairing tensors `delta_{i_p i_q} delta_{i_r i_s} ..` (none for odd n): the
//! residual of its least-squares projection onto them is zero.

use nalgebra::DMatrix;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// A Haar-random rotation of R^d (determinant +1), row-major, drawn from
/// `rng`: the Q of the QR factorisation of a standard normal matrix, with
/// the signs fixed by R's diagonal (so Q is Haar on O(d)), then the first
/// column negated if the determinant is -1.
///
/// ```
/// use nnqft_core::{rng::StreamKey, symmetry::rotation};
/// let r = rotation(3, &mut StreamKey { seed: 1, arch: "rot", width: 0, bag: 0, part: 0 }.stream());
/// for i in 0..3 {
///     for j in 0..3 {
///         let dot: f64 = (0..3).map(|k| r[i * 3 + k] * r[j * 3 + k]).sum();
///         assert!((dot - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
///     }
/// }
/// ```
pub fn rotation<R: Rng + ?Sized>(d: usize, rng: &mut R) -> Vec<f64> {
    let g = DMatrix::from_fn(d, d, |_, _| StandardNormal.sample(rng));
    let qr = g.qr();
    let (mut q, r) = (qr.q(), qr.r());
    for j in 0..d {
        if r[(j, j)] < 0.0 {
            q.column_mut(j).neg_mut();
        }
    }
    if d > 0 && q.determinant() < 0.0 {
        q.column_mut(0).neg_mut();
    }
    (0..d).flat_map(|i| (0..d).map(move |j| (i, j))).map(|(i, j)| q[(i, j)]).collect()
}

/// The `d^n` output-index tuples of an order-n tensor, last index fastest.
pub fn index_tuples(n: usize, d: usize) -> Vec<Vec<usize>> {
    let total = d.pow(n as u32);
    (0..total)
        .map(|mut c| {
            let mut idx = vec![0; n];
            for slot in (0..n).rev() {
                idx[slot] = c % d;
                c /= d;
            }
            idx
        })
        .collect()
}

/// The invariant part of an order-n output tensor and what is left.
#[derive(Clone, Debug, PartialEq)]
pub struct Decomposition {
    /// One coefficient per pairing of the n slots ([`crate::tuples::pairings`]
    /// order); empty for odd n. For D < n / 2 the pairing tensors are
    /// linearly dependent and the coefficients are the minimum-norm ones.
    pub coefficients: Vec<f64>,
    /// `tensor - sum_p c_p delta_p`, entry by entry (index_tuples order).
    pub residual: Vec<f64>,
}

impl Decomposition {
    /// Root-mean-square of the residual over all entries.
    pub fn residual_rms(&self) -> f64 {
        (self.residual.iter().map(|r| r * r).sum::<f64>() / self.residual.len().max(1) as f64).sqrt()
    }
}

/// Least-squares projection of `tensor` (order `n`, dimension `d`, entries
/// in [`index_tuples`] order) onto the pairing tensors.
///
/// ```
/// use nnqft_core::symmetry::{decompose, index_tuples};
/// // 2 delta_ij delta_kl + 0.5 delta_ik delta_jl in D = 3 is invariant
/// let t: Vec<f64> = index_tuples(4, 3).iter().map(|i| {
///     2.0 * ((i[0] == i[1] && i[2] == i[3]) as u8 as f64) + 0.5 * ((i[0] == i[2] && i[1] == i[3]) as u8 as f64)
/// }).collect();
/// let d = decompose(&t, 4, 3);
/// assert!(d.residual_rms() < 1e-14);
/// assert!((d.coefficients[0] - 2.0).abs() < 1e-12 && (d.coefficients[1] - 0.5).abs() < 1e-12);
/// ```
pub fn decompose(tensor: &[f64], n: usize, d: usize) -> Decomposition {
    let idx = index_tuples(n, d);
    assert_eq!(tensor.len(), idx.len(), "a tensor of d^n entries");
    if n % 2 == 1 {
        return Decomposition { coefficients: Vec::new(), residual: tensor.to_vec() };
    }
    let pairs = crate::tuples::pairings(n);
    let basis = DMatrix::from_fn(idx.len(), pairs.len(), |e, p| f64::from(u8::from(pairs[p].iter().all(|&(a, b)| idx[e][a] == idx[e][b]))));
    let y = nalgebra::DVector::from_column_slice(tensor);
    let svd = basis.clone().svd(true, true);
    let c = svd.solve(&y, 1e-10).expect("SVD with both factors");
    let fit = &basis * &c;
    Decomposition { coefficients: c.iter().copied().collect(), residual: (y - fit).iter().copied().collect() }
}

/// `f'_i = sum_j R_ij f_j` for each input: `values[o k + a]` output-major
/// (as the samplers write them), `r` row-major `D x D`.
pub fn rotate_outputs(r: &[f64], values: &[f64], k: usize, out: &mut [f64]) {
    let d = values.len() / k;
    for i in 0..d {
        for a in 0..k {
            out[i * k + a] = (0..d).map(|j| r[i * d + j] * values[j * k + a]).sum();
        }
    }
}
