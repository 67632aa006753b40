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
    let (t, r) = exp_reduce(x);
    // a constant trip count: unrolled to straight-line code (as a one-lane
    // exp_block, whose loop is kept, it costs scalar callers 2-3x)
    let mut p = EXP_TAYLOR[0];
    for &c in &EXP_TAYLOR[1..] {
        p = p * r + c;
    }
    exp_scale(t, p)
}

/// `exp`'s range reduction: `t` (holding `n = round(x / ln 2)` in its low
/// bits) and `r = x - n ln 2`, `|r| <= ln2 / 2`.
#[inline(always)]
fn exp_reduce(x: f64) -> (f64, f64) {
    let x = x.clamp(-708.0, 709.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    (t, (x - n * LN2_HI) - n * LN2_LO)
}

/// `p * 2^n`, with 2^n from the low bits of `t`, which hold n (two's
/// complement) after the ROUND shift.
#[inline(always)]
fn exp_scale(t: f64, p: f64) -> f64 {
    let ni = t.to_bits().wrapping_sub(ROUND.to_bits());
    p * f64::from_bits(ni.wrapping_add(1023) << 52)
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

/// [`exp`] of every lane of a block, bit-identical to it per lane (the same
/// operations in the same order; `tests/fastmath.rs`).
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
        (t[l], r[l]) = exp_reduce(x[l]);
    }
    for &c in std::hint::black_box(&EXP_TAYLOR[1..]) {
        for l in 0..L {
            p[l] = p[l] * r[l] + c;
        }
    }
    for l in 0..L {
        x[l] = exp_scale(t[l], p[l]);
    }
}

/// `tanh(z)`.
///
/// ```
/// assert!((nnqft_core::fastmath::tanh(-0.3) - (-0.3f64).tanh()).abs() < 1e-15);
/// ```
#[inline(always)]
pub fn tanh(z: f64) -> f64 {
    let t = exp(-2.0 * z.abs());
    ((1.0 - t) / (1.0 + t)).copysign(z)
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

/// [`Erf`] whose 16-lane blocks run [`Erf::eval_block16_avx2`] (other
/// block sizes the portable [`Erf::eval_block`]; the same bits either way).
/// It exists only on a CPU with AVX2.
///
/// ```
/// use nnqft_core::fastmath::{Block, Erf, ErfAvx2};
/// if let Some(e) = ErfAvx2::new(Erf::new()) {
///     let mut b = [0.3; 16];
///     e.eval_block(&mut b);
///     assert_eq!(b[15], Erf::new().eval(0.3));
/// }
/// ```
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub struct ErfAvx2(Erf);

#[cfg(target_arch = "x86_64")]
impl ErfAvx2 {
    /// `None` when the CPU lacks AVX2.
    pub fn new(e: Erf) -> Option<Self> {
        std::arch::is_x86_feature_detected!("avx2").then_some(ErfAvx2(e))
    }
}

#[cfg(target_arch = "x86_64")]
impl<const L: usize> Block<L> for ErfAvx2 {
    #[inline(always)]
    fn eval_block(&self, x: &mut [f64; L]) {
        if L == 16 {
            let b: &mut [f64; 16] = x.as_mut_slice().try_into().expect("L = 16");
            // SAFETY: an ErfAvx2 exists only on a CPU with AVX2 (new).
            unsafe { self.0.eval_block16_avx2(b) }
        } else {
            self.0.eval_block(x)
        }
    }
}

/// Intervals of `erf`'s table per unit of `|x|`, and the table's end.
const ERF_PER_UNIT: f64 = 64.0;
const ERF_END: f64 = 6.0;
/// Taylor degree + 1 per interval.
const ERF_TERMS: usize = 6;
const ERF_INTERVALS: usize = 384;
/// Table entries per interval: the `ERF_TERMS` coefficients and two zeros,
/// so that each interval's row is one 64-byte cache line (the table is
/// aligned to 64 bytes): the AVX2 block's row loads never straddle two
/// lines, as one in four of its 32-byte loads did with 48-byte rows.
const ERF_STRIDE: usize = 8;

/// The table's rows, aligned to cache lines.
#[repr(C, align(64))]
struct ErfRows([[f64; ERF_STRIDE]; ERF_INTERVALS]);

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
/// Hermite polynomials). Degree 5 on half-width 1/128 leaves 1.2e-14; rows of
/// [`ERF_STRIDE`] entries, 24 KB, in L1.
fn erf_table() -> &'static [f64] {
    static T: OnceLock<Box<ErfRows>> = OnceLock::new();
    let rows = T.get_or_init(|| {
        let mut rows = Box::new(ErfRows([[0.0; ERF_STRIDE]; ERF_INTERVALS]));
        for (i, row) in rows.0.iter_mut().enumerate() {
            let c = erf_center(i);
            row[0] = libm::erf(c);
            let g = 2.0 / std::f64::consts::PI.sqrt() * (-c * c).exp();
            let (mut h0, mut h1) = (1.0, 2.0 * c); // H_0, H_1
            let mut fact = 1.0;
            for m in 1..ERF_TERMS {
                fact *= m as f64;
                // H_(m-1)
                let h = if m == 1 { h0 } else { h1 };
                let sign = if (m - 1) % 2 == 0 { 1.0 } else { -1.0 };
                row[m] = sign * g * h / fact;
                if m >= 2 {
                    let next = 2.0 * c * h1 - 2.0 * (m - 1) as f64 * h0;
                    h0 = h1;
                    h1 = next;
                }
            }
        }
        rows
    });
    rows.0.as_flattened()
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
            idx[l] = (i as u32) * ERF_STRIDE as u32;
            dx[l] = a - erf_center(i as usize);
        }
        let t = self.table;
        assert!(t.len() == ERF_INTERVALS * ERF_STRIDE);
        for l in 0..L {
            // SAFETY: idx[l] <= (ERF_INTERVALS - 1) * ERF_STRIDE, so + ERF_TERMS - 1 is in bounds (asserted length).
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

    /// [`Erf::eval_block`] for 16 lanes in AVX2 intrinsics, bit-identical
    /// to it: the same operations in the same order, but each lane's six
    /// coefficients come in two contiguous loads (they lie side by side in
    /// the table), turned into one vector per coefficient by shuffles, in
    /// place of six gathers.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline]
    pub unsafe fn eval_block16_avx2(&self, x: &mut [f64; 16]) {
        use std::arch::x86_64::*;
        let t = self.table;
        assert!(t.len() == ERF_INTERVALS * ERF_STRIDE);
        let sign = _mm256_set1_pd(-0.0);
        let end = _mm256_set1_pd(ERF_END);
        let mut xv = [_mm256_setzero_pd(); 4];
        let mut dx = [_mm256_setzero_pd(); 4];
        let mut c = [[_mm256_setzero_pd(); ERF_TERMS]; 4];
        for u in 0..4 {
            // SAFETY: 4 u + 4 <= 16 values of x.
            xv[u] = unsafe { _mm256_loadu_pd(x.as_ptr().add(4 * u)) };
            // min(|x|, 6) with 6 for NaN, as f64::min
            let a = _mm256_min_pd(_mm256_andnot_pd(sign, xv[u]), end);
            let i = _mm_min_epi32(_mm256_cvttpd_epi32(_mm256_mul_pd(a, _mm256_set1_pd(ERF_PER_UNIT))), _mm_set1_epi32(ERF_INTERVALS as i32 - 1));
            let fi = _mm256_cvtepi32_pd(i);
            // erf_center: (i + 1/2) / 64 (exact as a product by 1/64), 0 for i = 0
            let center = _mm256_mul_pd(_mm256_add_pd(fi, _mm256_set1_pd(0.5)), _mm256_set1_pd(1.0 / ERF_PER_UNIT));
            let center = _mm256_andnot_pd(_mm256_cmp_pd::<_CMP_EQ_OQ>(fi, _mm256_setzero_pd()), center);
            dx[u] = _mm256_sub_pd(a, center);
            let o = _mm_mullo_epi32(i, _mm_set1_epi32(ERF_STRIDE as i32));
            // the four offsets through two 64-bit moves (as fast as a store and
            // four loads; four 32-bit extracts measured 20 % slower)
            let (o01, o23) = (_mm_cvtsi128_si64(o) as u64, _mm_extract_epi64::<1>(o) as u64);
            let off = [o01 as u32, (o01 >> 32) as u32, o23 as u32, (o23 >> 32) as u32];
            // SAFETY: 0 <= off <= (ERF_INTERVALS - 1) ERF_STRIDE, so the 6 values at off are in the table (asserted length).
            let (lo, hi) = unsafe {
                let p = |l: usize| t.as_ptr().add(off[l] as usize);
                (
                    [_mm256_loadu_pd(p(0)), _mm256_loadu_pd(p(1)), _mm256_loadu_pd(p(2)), _mm256_loadu_pd(p(3))],
                    [_mm256_loadu2_m128d(p(2).add(4), p(0).add(4)), _mm256_loadu2_m128d(p(3).add(4), p(1).add(4))],
                )
            };
            let (t0, t1) = (_mm256_unpacklo_pd(lo[0], lo[1]), _mm256_unpackhi_pd(lo[0], lo[1]));
            let (t2, t3) = (_mm256_unpacklo_pd(lo[2], lo[3]), _mm256_unpackhi_pd(lo[2], lo[3]));
            c[u] = [
                _mm256_permute2f128_pd::<0x20>(t0, t2),
                _mm256_permute2f128_pd::<0x20>(t1, t3),
                _mm256_permute2f128_pd::<0x31>(t0, t2),
                _mm256_permute2f128_pd::<0x31>(t1, t3),
                _mm256_unpacklo_pd(hi[0], hi[1]),
                _mm256_unpackhi_pd(hi[0], hi[1]),
            ];
        }
        let mut p = [_mm256_setzero_pd(); 4];
        for u in 0..4 {
            p[u] = c[u][ERF_TERMS - 1];
        }
        for j in (0..ERF_TERMS - 1).rev() {
            for u in 0..4 {
                p[u] = _mm256_add_pd(_mm256_mul_pd(p[u], dx[u]), c[u][j]);
            }
        }
        for u in 0..4 {
            let inside = _mm256_cmp_pd::<_CMP_LT_OQ>(_mm256_andnot_pd(sign, xv[u]), end);
            let y = _mm256_blendv_pd(_mm256_set1_pd(1.0), p[u], inside);
            let y = _mm256_or_pd(_mm256_andnot_pd(sign, y), _mm256_and_pd(sign, xv[u]));
            // SAFETY: as the load.
            unsafe { _mm256_storeu_pd(x.as_mut_ptr().add(4 * u), y) };
        }
    }

    /// `erf(x)`: a table lookup and a degree-5 polynomial.
    #[inline(always)]
    pub fn eval(&self, x: f64) -> f64 {
        let a = x.abs().min(ERF_END);
        // a in [0, 6]: interval 0..383 (6.0 itself goes to the last one)
        let i = ((a * ERF_PER_UNIT) as usize).min(ERF_INTERVALS - 1);
        let dx = a - erf_center(i);
        let c = &self.table[i * ERF_STRIDE..i * ERF_STRIDE + ERF_TERMS];
        let mut p = c[ERF_TERMS - 1];
        for &ck in c[..ERF_TERMS - 1].iter().rev() {
            p = p * dx + ck;
        }
        let y = if x.abs() < ERF_END { p } else { 1.0 };
        y.copysign(x)
    }
}
