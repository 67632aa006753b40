//! Branch-free, vectorisable activations for the sampler's hot loop, with
//! tested error bounds against libm (`tests/fastmath.rs`):
//!
//! | function | method | max abs error over the real line (measured) |
//! |---|---|---|
//! | `exp` | `2^n * p(r)`, `|r| <= ln2 / 2`, degree-13 Taylor, exponent by bit arithmetic | relative 2.3e-16 on [-700, 700] |
//! | `tanh` | `sign(z) (1 - t) / (1 + t)`, `t = exp(-2|z|)` | 3.4e-16 |
//! | `erf` | `|x| < 6`: table of 384 intervals of width 1/64, degree-5 Taylor polynomial about each midpoint, about 0 for the first (coefficients from Hermite polynomials at start-up); `|x| >= 6`: `+-1`; exactly odd, erf(0) = 0 | 1.2e-14 |
//!
//! Every lane computes every branch and selects, so loops over slices
//! auto-vectorise; there are no fused multiply-adds, so results are
//! bit-identical whatever the vector width or CPU.

use std::sync::OnceLock;

const LOG2E: f64 = std::f64::consts::LOG2_E;
const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-01;
const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
/// 1.5 * 2^52: adding and subtracting it rounds to the nearest integer.
const ROUND: f64 = 6_755_399_441_055_744.0;

/// `e^x` for `x` in [-708, 709] (clamped outside: 0-ish below, +inf-ish above).
///
/// ```
/// let x = 0.7;
/// assert!((nnqft_core::fastmath::exp(x) - x.exp()).abs() < 1e-15);
/// ```
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    let mut b = [x];
    exp_block(&mut b);
    b[0]
}

/// The Taylor coefficients of [`exp`]'s `p(r)`, highest first: `1 / 13!`, ..., `1 / 2`, 1, 1
/// (to r^13 / 13!: |r| <= 0.3466, remainder < 5e-18).
const EXP_TAYLOR: [f64; 14] = [
    1.0 / 6_227_020_800.0,
    1.0 / 479_001_600.0,
    1.0 / 39_916_800.0,
    1.0 / 3_628_800.0,
    1.0 / 362_880.0,
    1.0 / 40_320.0,
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
    1.0,
];

/// [`exp`] of every lane of a block, bit-identical to it per lane.
///
/// The Horner steps run as a loop whose body advances every lane, so a
/// block of 32 keeps 8 AVX2 registers' dependency chains in flight. Fully
/// unrolled (a constant trip count), the compiler schedules the chains one
/// after another and each waits on its own latency: 2.0 against 1.2 ns per
/// value on the AVX2 EPYC (BENCHMARKS.md); `black_box` on the coefficient
/// slice keeps the loop.
///
/// ```
/// let mut b = [0.7, -1.2];
/// nnqft_core::fastmath::exp_block(&mut b);
/// assert_eq!(b, [nnqft_core::fastmath::exp(0.7), nnqft_core::fastmath::exp(-1.2)]);
/// ```
#[inline(always)]
pub fn exp_block<const L: usize>(x: &mut [f64; L]) {
    let mut t = [0.0; L];
    let mut r = [0.0; L];
    let mut p = [EXP_TAYLOR[0]; L];
    for l in 0..L {
        let xc = x[l].clamp(-708.0, 709.0);
        t[l] = xc * LOG2E + ROUND;
        let n = t[l] - ROUND;
        r[l] = (xc - n * LN2_HI) - n * LN2_LO;
    }
    for &c in std::hint::black_box(&EXP_TAYLOR[1..]) {
        for l in 0..L {
            p[l] = p[l] * r[l] + c;
        }
    }
    for l in 0..L {
        // 2^n from the low bits of t, which hold n (two's complement) after the ROUND shift
        let ni = t[l].to_bits().wrapping_sub(ROUND.to_bits());
        x[l] = p[l] * f64::from_bits(ni.wrapping_add(1023) << 52);
    }
}

/// `tanh(z)`.
///
/// ```
/// assert!((nnqft_core::fastmath::tanh(-0.3) - (-0.3f64).tanh()).abs() < 1e-15);
/// ```
#[inline(always)]
pub fn tanh(z: f64) -> f64 {
    let mut b = [z];
    tanh_block(&mut b);
    b[0]
}

/// [`tanh`] of every lane of a block, bit-identical to it per lane (its
/// exponentials as [`exp_block`]).
#[inline(always)]
pub fn tanh_block<const L: usize>(z: &mut [f64; L]) {
    let mut t = [0.0; L];
    for l in 0..L {
        t[l] = -2.0 * z[l].abs();
    }
    exp_block(&mut t);
    for l in 0..L {
        z[l] = ((1.0 - t[l]) / (1.0 + t[l])).copysign(z[l]);
    }
}

/// A function applied lane by lane to a block of `L` values, each lane's
/// bits independent of the others (the sampler's activation passes).
pub trait Block<const L: usize> {
    /// `x[l] = f(x[l])` for every lane.
    fn eval_block(&self, x: &mut [f64; L]);
}

/// [`exp`] as a [`Block`].
///
/// ```
/// use nnqft_core::fastmath::{Block, Exp, exp};
/// let mut b = [0.5; 4];
/// Exp.eval_block(&mut b);
/// assert_eq!(b[3], exp(0.5));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Exp;

impl<const L: usize> Block<L> for Exp {
    #[inline(always)]
    fn eval_block(&self, x: &mut [f64; L]) {
        exp_block(x)
    }
}

/// [`tanh`] as a [`Block`].
#[derive(Clone, Copy, Debug)]
pub struct Tanh;

impl<const L: usize> Block<L> for Tanh {
    #[inline(always)]
    fn eval_block(&self, x: &mut [f64; L]) {
        tanh_block(x)
    }
}

impl<const L: usize> Block<L> for Erf {
    #[inline(always)]
    fn eval_block(&self, x: &mut [f64; L]) {
        Erf::eval_block(self, x)
    }
}

/// Intervals of `erf`'s table per unit of `|x|`, and the table's end.
const ERF_PER_UNIT: f64 = 64.0;
const ERF_END: f64 = 6.0;
/// Taylor degree + 1 per interval.
const ERF_TERMS: usize = 6;
const ERF_INTERVALS: usize = 384;

/// The expansion point of interval i: its midpoint, except 0 for the first,
/// so that erf(0) is exactly 0 (its polynomial there is odd: the even
/// coefficients vanish exactly; the remainder (2 / sqrt(pi)) x^7 / 42 is
/// below 6.1e-15 on [0, 1/64]).
#[inline(always)]
fn erf_center(i: usize) -> f64 {
    if i == 0 { 0.0 } else { (i as f64 + 0.5) / ERF_PER_UNIT }
}

/// Per interval `[i / 64, (i + 1) / 64)` of `|x|`, the Taylor coefficients of
/// erf about `c` ([`erf_center`]): `erf^(m)(c) / m!`, with
/// `erf^(m)(c) = (2 / sqrt(pi)) (-1)^(m-1) H_(m-1)(c) exp(-c^2)` (physicists'
/// Hermite polynomials). Degree 5 on half-width 1/128 leaves 1.2e-14; 18 KB, in L1.
fn erf_table() -> &'static [f64] {
    static T: OnceLock<Vec<f64>> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = Vec::with_capacity(ERF_INTERVALS * ERF_TERMS);
        for i in 0..ERF_INTERVALS {
            let c = erf_center(i);
            t.push(libm::erf(c));
            let g = 2.0 / std::f64::consts::PI.sqrt() * (-c * c).exp();
            let (mut h0, mut h1) = (1.0, 2.0 * c); // H_0, H_1
            let mut fact = 1.0;
            for m in 1..ERF_TERMS {
                fact *= m as f64;
                // H_(m-1)
                let h = if m == 1 { h0 } else { h1 };
                let sign = if (m - 1) % 2 == 0 { 1.0 } else { -1.0 };
                t.push(sign * g * h / fact);
                if m >= 2 {
                    let next = 2.0 * c * h1 - 2.0 * (m - 1) as f64 * h0;
                    h0 = h1;
                    h1 = next;
                }
            }
        }
        t
    })
}

/// `erf(x)` (see the module table for the error bound).
///
/// ```
/// assert!((nnqft_core::fastmath::erf(0.4) - libm::erf(0.4)).abs() < 1e-15);
/// ```
#[inline(always)]
pub fn erf(x: f64) -> f64 {
    Erf::new().eval(x)
}

/// erf with its table fetched once, for loops.
#[derive(Clone, Copy)]
pub struct Erf {
    table: &'static [f64],
}

impl Default for Erf {
    fn default() -> Self {
        Self::new()
    }
}

impl Erf {
    pub fn new() -> Self {
        Erf { table: erf_table() }
    }

    /// `erf` of every lane of a block, bit-identical to [`Erf::eval`] per
    /// lane; the term loop runs outside the lane loop, so the table reads
    /// become vector gathers.
    #[inline(always)]
    pub fn eval_block<const L: usize>(&self, x: &mut [f64; L]) {
        let mut idx = [0u32; L];
        let mut dx = [0.0; L];
        let mut p = [0.0; L];
        for l in 0..L {
            let a = x[l].abs().min(ERF_END);
            let i = ((a * ERF_PER_UNIT) as i32).min(ERF_INTERVALS as i32 - 1);
            idx[l] = (i as u32) * ERF_TERMS as u32;
            dx[l] = a - erf_center(i as usize);
        }
        let t = self.table;
        assert!(t.len() == ERF_INTERVALS * ERF_TERMS);
        for l in 0..L {
            // SAFETY: idx[l] <= (ERF_INTERVALS - 1) * ERF_TERMS, so + ERF_TERMS - 1 is in bounds (asserted length).
            p[l] = unsafe { *t.get_unchecked(idx[l] as usize + ERF_TERMS - 1) };
        }
        for j in (0..ERF_TERMS - 1).rev() {
            for l in 0..L {
                // SAFETY: as above, j < ERF_TERMS.
                p[l] = p[l] * dx[l] + unsafe { *t.get_unchecked(idx[l] as usize + j) };
            }
        }
        for l in 0..L {
            let y = if x[l].abs() < ERF_END { p[l] } else { 1.0 };
            x[l] = y.copysign(x[l]);
        }
    }

    /// `erf(x)`: a table lookup and a degree-5 polynomial.
    #[inline(always)]
    pub fn eval(&self, x: f64) -> f64 {
        let a = x.abs().min(ERF_END);
        // a in [0, 6]: interval 0..383 (6.0 itself goes to the last one)
        let i = ((a * ERF_PER_UNIT) as usize).min(ERF_INTERVALS - 1);
        let dx = a - erf_center(i);
        let c = &self.table[i * ERF_TERMS..(i + 1) * ERF_TERMS];
        let mut p = c[ERF_TERMS - 1];
        for &ck in c[..ERF_TERMS - 1].iter().rev() {
            p = p * dx + ck;
        }
        let y = if x.abs() < ERF_END { p } else { 1.0 };
        y.copysign(x)
    }
}
