//! Branch-free, vectorisable activations for the sampler's hot loop, with
//! tested error bounds against libm (`tests/fastmath.rs`):
//!
//! | function | method | max error over the real line (measured) |
//! |---|---|---|
//! | `exp`, `exp_fused` | `2^n * p(r)`, `|r| <= ln2 / 2`, degree-13 Taylor, exponent by bit arithmetic | relative 2.3e-16 on [-700, 700] |
//! | `tanh`, `tanh_fused` | `sign(z) (1 - t) / (1 + t)`, `t = exp(-2|z|)` | absolute 3.4e-16 |
//! | `erf` | `|x| < 6`: 16 pieces of width 3/8, a degree-11 polynomial on each (interpolating erf at 12 Chebyshev points; constant term exactly 0 on the first); `|x| >= 6`: `+-1`; exactly odd, erf(0) = 0 | absolute 1.0e-15; relative 1.9e-15 near 0 |
//!
//! Every lane computes every branch and selects, so loops over slices
//! auto-vectorise, and the results are bit-identical whatever the vector
//! width or CPU: the sampler's forms (`exp_fused`, `tanh_fused`, `erf`,
//! SAMPLER_VERSION 4) use fused multiply-adds, which are correctly rounded
//! wherever they run (in hardware on AVX2 + FMA, AVX-512 and aarch64; in
//! software, slowly, on older x86-64); `exp` and `tanh` use none (the
//! normal generator's wedge tests call `exp`, and the analyses `tanh`).

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

/// The sampler's `e^x` (gauss nets, and within [`tanh_fused`]): [`exp`]'s
/// method with fused multiply-adds in the range reduction and the Horner
/// steps (each one rounding instead of two: fewer operations, and
/// results within 2.3e-16 relative of libm as before, but different
/// bits). Bit-identical to [`exp_block`] per lane, and on every CPU:
/// a fused multiply-add is correctly rounded wherever it runs (in
/// software where the CPU has none).
///
/// ```
/// let x = 0.7;
/// assert!((nnqft_core::fastmath::exp_fused(x) - x.exp()).abs() < 1e-15);
/// ```
#[inline(always)]
pub fn exp_fused(x: f64) -> f64 {
    let (t, r) = exp_reduce_fused(x);
    let mut p = EXP_TAYLOR[0];
    for &c in &EXP_TAYLOR[1..] {
        p = p.mul_add(r, c);
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

/// [`exp_reduce`] in fused multiply-adds ([`exp_fused`]).
#[inline(always)]
fn exp_reduce_fused(x: f64) -> (f64, f64) {
    exp_reduce_clamped(x.clamp(-708.0, 709.0))
}

/// [`exp_reduce_fused`] of an `x <= 0` (or NaN), for which the clamp's
/// upper bound never acts: one comparison fewer, the same bits.
#[inline(always)]
fn exp_reduce_fused_nonpositive(x: f64) -> (f64, f64) {
    // not x.max(-708.0), which would turn NaN into -708
    exp_reduce_clamped(if x < -708.0 { -708.0 } else { x })
}

/// The fused range reduction of an `x` already within [-708, 709].
#[inline(always)]
fn exp_reduce_clamped(x: f64) -> (f64, f64) {
    let t = x.mul_add(LOG2E, ROUND);
    let n = t - ROUND;
    (t, (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, x)))
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

/// [`exp_fused`] of every lane of a block, bit-identical to it per lane
/// (the same operations in the same order; `tests/fastmath.rs`).
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
/// assert_eq!(b, [nnqft_core::fastmath::exp_fused(0.7), nnqft_core::fastmath::exp_fused(-1.2)]);
/// ```
#[inline(always)]
pub fn exp_block<const L: usize>(x: &mut [f64; L]) {
    exp_block_with(x, exp_reduce_fused, |_, e| e)
}

/// [`exp_block`] with the range reduction `reduce` of each lane, which may
/// form the exponent's argument from `x[l]` first, and `x[l] = finish(x[l],
/// e)` from its exponential `e` ([`tanh_block`]).
#[inline(always)]
fn exp_block_with<const L: usize>(x: &mut [f64; L], reduce: impl Fn(f64) -> (f64, f64), finish: impl Fn(f64, f64) -> f64) {
    let mut t = [0.0; L];
    let mut r = [0.0; L];
    let mut p = [EXP_TAYLOR[0]; L];
    for l in 0..L {
        (t[l], r[l]) = reduce(x[l]);
    }
    for &c in std::hint::black_box(&EXP_TAYLOR[1..]) {
        for l in 0..L {
            p[l] = p[l].mul_add(r[l], c);
        }
    }
    for l in 0..L {
        x[l] = finish(x[l], exp_scale(t[l], p[l]));
    }
}

/// `tanh(z)`.
///
/// ```
/// assert!((nnqft_core::fastmath::tanh(-0.3) - (-0.3f64).tanh()).abs() < 1e-15);
/// ```
#[inline(always)]
pub fn tanh(z: f64) -> f64 {
    tanh_from(z, exp(-2.0 * z.abs()))
}

/// `tanh(z)` from `t = exp(-2 |z|)`.
#[inline(always)]
fn tanh_from(z: f64, t: f64) -> f64 {
    ((1.0 - t) / (1.0 + t)).copysign(z)
}

/// The sampler's `tanh(z)`: [`tanh`] with its exponential from [`exp_fused`].
///
/// ```
/// assert!((nnqft_core::fastmath::tanh_fused(-0.3) - (-0.3f64).tanh()).abs() < 1e-15);
/// ```
#[inline(always)]
pub fn tanh_fused(z: f64) -> f64 {
    tanh_from(z, exp_fused(-2.0 * z.abs()))
}

/// [`tanh_fused`] of every lane of a block, bit-identical to it per lane
/// (its exponentials as [`exp_block`]). The argument `-2 |z|` is formed in
/// the range reduction's loop rather than a pass of its own, and, being
/// `<= 0`, is clamped from below only: 1.07x on the AVX-512 Xeon
/// (BENCHMARKS.md), the same bits.
#[inline(always)]
pub fn tanh_block<const L: usize>(z: &mut [f64; L]) {
    exp_block_with(z, |v| exp_reduce_fused_nonpositive(-2.0 * v.abs()), tanh_from);
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

/// [`Erf`] whose 32-lane blocks run [`Erf::eval_block32_avx512`] (other
/// block sizes the portable [`Erf::eval_block`]; the same bits either way).
/// It exists only on a CPU with AVX-512F.
///
/// ```
/// use nnqft_core::fastmath::{Block, Erf, ErfAvx512};
/// if let Some(e) = ErfAvx512::new() {
///     let mut b = [0.3; 32];
///     e.eval_block(&mut b);
///     assert_eq!(b[31], Erf::new().eval(0.3));
/// }
/// ```
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug)]
pub struct ErfAvx512(());

#[cfg(target_arch = "x86_64")]
impl ErfAvx512 {
    /// `None` when the CPU lacks AVX-512F.
    pub fn new() -> Option<Self> {
        std::arch::is_x86_feature_detected!("avx512f").then_some(ErfAvx512(()))
    }
}

#[cfg(target_arch = "x86_64")]
impl<const L: usize> Block<L> for ErfAvx512 {
    #[inline(always)]
    fn eval_block(&self, x: &mut [f64; L]) {
        if L == 32 {
            let b: &mut [f64; 32] = x.as_mut_slice().try_into().expect("L = 32");
            // SAFETY: an ErfAvx512 exists only on a CPU with AVX-512F (new).
            unsafe { Erf::eval_block32_avx512(b) }
        } else {
            Erf::new().eval_block(x)
        }
    }
}

/// [`Erf`] whose 16-lane blocks run [`Erf::eval_block16_avx2`] (other
/// block sizes the portable [`Erf::eval_block`]; the same bits either way).
/// It exists only on a CPU with AVX2 and FMA.
///
/// ```
/// use nnqft_core::fastmath::{Block, Erf, ErfAvx2};
/// if let Some(e) = ErfAvx2::new() {
///     let mut b = [0.3; 16];
///     e.eval_block(&mut b);
///     assert_eq!(b[15], Erf::new().eval(0.3));
/// }
/// ```
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug)]
pub struct ErfAvx2(());

#[cfg(target_arch = "x86_64")]
impl ErfAvx2 {
    /// `None` when the CPU lacks AVX2 or FMA.
    pub fn new() -> Option<Self> {
        (std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")).then_some(ErfAvx2(()))
    }
}

#[cfg(target_arch = "x86_64")]
impl<const L: usize> Block<L> for ErfAvx2 {
    #[inline(always)]
    fn eval_block(&self, x: &mut [f64; L]) {
        if L == 16 {
            let b: &mut [f64; 16] = x.as_mut_slice().try_into().expect("L = 16");
            // SAFETY: an ErfAvx2 exists only on a CPU with AVX2 and FMA (new).
            unsafe { Erf::eval_block16_avx2(b) }
        } else {
            Erf::new().eval_block(x)
        }
    }
}

/// Pieces of `erf`'s polynomial on [0, ERF_END), each `ERF_WIDTH` wide.
const ERF_PIECES: usize = 16;
const ERF_WIDTH: f64 = 0.375;
/// `1 / ERF_WIDTH`, rounded: the piece of `a` is `trunc(a * ERF_PER_WIDTH)`
/// (a value that rounds into a neighbour is still within its polynomial's
/// accuracy there: the fits hold a little past their ends).
const ERF_PER_WIDTH: f64 = 8.0 / 3.0;
const ERF_END: f64 = 6.0;
/// Coefficients per piece (degree 11).
const ERF_TERMS: usize = 12;

/// The expansion point of each piece: its midpoint, except 0 for the first,
/// whose constant coefficient is exactly 0, so that erf(0) = 0.
const ERF_CENTERS: [f64; ERF_PIECES] = {
    let mut c = [0.0; ERF_PIECES];
    let mut i = 1;
    while i < ERF_PIECES {
        c[i] = (i as f64 + 0.5) * ERF_WIDTH;
        i += 1;
    }
    c
};

/// `ERF_POLY[j][i]`: the coefficient of `dx^j` on piece i, `dx = |x| -
/// ERF_CENTERS[i]`. The degree-11 polynomial interpolating erf at the 12
/// Chebyshev points of the piece, computed in 50-digit arithmetic and
/// rounded to f64 by `crates/core/tools/erf_table.py` (with the first
/// piece's constant term fixed at 0): at most 9.1e-16 from erf on the first
/// piece and 2.2e-16 on the others, before the rounding of the Horner steps.
/// Stored power-major, so that each power's 16 coefficients fill two
/// 8-lane registers ([`Erf::eval_block32_avx512`]).
#[rustfmt::skip]
const ERF_POLY: [[f64; ERF_PIECES]; ERF_TERMS] = include!("erf_poly.in");

/// [`ERF_POLY`] piece-major: row i holds piece i's 12 coefficients side by
/// side, so that the AVX2 block loads them in pairs ([`Erf::eval_block16_avx2`]).
#[cfg(target_arch = "x86_64")]
static ERF_ROWS: [[f64; ERF_TERMS]; ERF_PIECES] = {
    let mut r = [[0.0; ERF_TERMS]; ERF_PIECES];
    let mut i = 0;
    while i < ERF_PIECES {
        let mut j = 0;
        while j < ERF_TERMS {
            r[i][j] = ERF_POLY[j][i];
            j += 1;
        }
        i += 1;
    }
    r
};

/// `erf(x)` (see the module table for the error bound).
///
/// ```
/// assert!((nnqft_core::fastmath::erf(0.4) - libm::erf(0.4)).abs() < 1e-15);
/// assert_eq!(nnqft_core::fastmath::erf(0.0), 0.0);
/// assert_eq!(nnqft_core::fastmath::erf(-0.4), -nnqft_core::fastmath::erf(0.4));
/// ```
#[inline(always)]
pub fn erf(x: f64) -> f64 {
    Erf::new().eval(x)
}

/// erf as a value that can be passed to block loops ([`Block`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Erf(());

impl Erf {
    pub fn new() -> Self {
        Erf(())
    }

    /// `erf` of every lane of a block, bit-identical to [`Erf::eval`] per
    /// lane; the term loop runs outside the lane loop, so the coefficient
    /// reads become vector gathers.
    #[inline(always)]
    pub fn eval_block<const L: usize>(&self, x: &mut [f64; L]) {
        let mut idx = [0usize; L];
        let mut dx = [0.0; L];
        let mut p = [0.0; L];
        for l in 0..L {
            let (i, d) = erf_piece(x[l]);
            idx[l] = i;
            dx[l] = d;
        }
        for l in 0..L {
            p[l] = ERF_POLY[ERF_TERMS - 1][idx[l]];
        }
        for j in (0..ERF_TERMS - 1).rev() {
            for l in 0..L {
                p[l] = p[l].mul_add(dx[l], ERF_POLY[j][idx[l]]);
            }
        }
        for l in 0..L {
            x[l] = erf_finish(x[l], p[l]);
        }
    }

    /// [`Erf::eval_block`] for 16 lanes in AVX2 + FMA intrinsics,
    /// bit-identical to it: each lane's coefficients come from its piece's
    /// row of [`ERF_ROWS`] in 16-byte pairs, two lanes' pairs to a register,
    /// and one unpack per coefficient makes the vector of 4 lanes' values,
    /// in place of a gather (12 gathers per 4 values ran erf nets at half
    /// the speed on the AVX-512 Xeon, whose gathers are slow).
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub unsafe fn eval_block16_avx2(x: &mut [f64; 16]) {
        use std::arch::x86_64::*;
        const U: usize = 4;
        let end = _mm256_set1_pd(ERF_END);
        let sign = _mm256_set1_pd(-0.0);
        let mut xv = [_mm256_setzero_pd(); U];
        let mut dx = [_mm256_setzero_pd(); U];
        let mut rows = [[std::ptr::null::<f64>(); 4]; U];
        for u in 0..U {
            // SAFETY: 4 u + 4 <= 16 values of x.
            xv[u] = unsafe { _mm256_loadu_pd(x.as_ptr().add(4 * u)) };
            // min(|x|, 6) with 6 for NaN, as f64::min
            let a = _mm256_min_pd(_mm256_andnot_pd(sign, xv[u]), end);
            let i = _mm256_cvttpd_epi32(_mm256_mul_pd(a, _mm256_set1_pd(ERF_PER_WIDTH)));
            // 16 (a = 6 only) becomes 15, as in erf_piece
            let i = _mm_min_epi32(i, _mm_set1_epi32(ERF_PIECES as i32 - 1));
            let mut idx = [0i32; 4];
            // SAFETY: 4 i32 into a 4-element array.
            unsafe { _mm_storeu_si128(idx.as_mut_ptr().cast(), i) };
            // ERF_CENTERS[i]: (i + 1/2) 3/8 (exact), 0 for i = 0
            let fi = _mm256_cvtepi32_pd(i);
            let center = _mm256_mul_pd(_mm256_add_pd(fi, _mm256_set1_pd(0.5)), _mm256_set1_pd(ERF_WIDTH));
            let center = _mm256_andnot_pd(_mm256_cmp_pd::<_CMP_EQ_OQ>(fi, _mm256_setzero_pd()), center);
            dx[u] = _mm256_sub_pd(a, center);
            rows[u] = std::array::from_fn(|l| ERF_ROWS[idx[l] as usize].as_ptr());
        }
        // coefficients j and j + 1 of the 4 lanes: [l0 l2] and [l1 l3] pairs, unpacked
        let pair = |r: &[*const f64; 4], j: usize| {
            // SAFETY: j + 1 < ERF_TERMS, within each row.
            let (a, b) = unsafe { (_mm256_loadu2_m128d(r[2].add(j), r[0].add(j)), _mm256_loadu2_m128d(r[3].add(j), r[1].add(j))) };
            (_mm256_unpacklo_pd(a, b), _mm256_unpackhi_pd(a, b))
        };
        let mut p = [_mm256_setzero_pd(); U];
        for u in 0..U {
            let (c10, c11) = pair(&rows[u], ERF_TERMS - 2);
            p[u] = _mm256_fmadd_pd(c11, dx[u], c10);
        }
        for j in (0..ERF_TERMS - 2).step_by(2).rev() {
            for u in 0..U {
                let (lo, hi) = pair(&rows[u], j);
                p[u] = _mm256_fmadd_pd(_mm256_fmadd_pd(p[u], dx[u], hi), dx[u], lo);
            }
        }
        for u in 0..U {
            let inside = _mm256_cmp_pd::<_CMP_LT_OQ>(_mm256_andnot_pd(sign, xv[u]), end);
            let y = _mm256_blendv_pd(_mm256_set1_pd(1.0), p[u], inside);
            let y = _mm256_or_pd(_mm256_andnot_pd(sign, y), _mm256_and_pd(sign, xv[u]));
            // SAFETY: as the load.
            unsafe { _mm256_storeu_pd(x.as_mut_ptr().add(4 * u), y) };
        }
    }

    /// [`Erf::eval_block`] for 32 lanes in AVX-512 intrinsics, bit-identical
    /// to it: the same operations in the same order, but each power's 16
    /// coefficients sit in two registers and `vpermt2pd` picks every lane's
    /// from them, in place of a gather from memory.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub unsafe fn eval_block32_avx512(x: &mut [f64; 32]) {
        use std::arch::x86_64::*;
        const U: usize = 4;
        // SAFETY (all loads and stores): 8 u + 8 <= 32 values of x; the
        // tables are 16 values, read 8 at a time from 0 and 8.
        let table = |t: &[f64; ERF_PIECES]| unsafe { (_mm512_loadu_pd(t.as_ptr()), _mm512_loadu_pd(t.as_ptr().add(8))) };
        let end = _mm512_set1_pd(ERF_END);
        let abs = |v: __m512d| _mm512_castsi512_pd(_mm512_and_si512(_mm512_castpd_si512(v), _mm512_set1_epi64(i64::MAX)));
        let mut xv = [_mm512_setzero_pd(); U];
        let mut idx = [_mm512_setzero_si512(); U];
        let mut dx = [_mm512_setzero_pd(); U];
        let (c_lo, c_hi) = table(&ERF_CENTERS);
        for u in 0..U {
            xv[u] = unsafe { _mm512_loadu_pd(x.as_ptr().add(8 * u)) };
            // min(|x|, 6) with 6 for NaN, as f64::min
            let a = _mm512_min_pd(abs(xv[u]), end);
            // trunc(a * 8/3) in 0..=16; 16 (a = 6 only) selects piece 0
            // here and 15 in erf_piece, and both give way to 1 in erf_finish
            let i = _mm512_cvttpd_epi32(_mm512_mul_pd(a, _mm512_set1_pd(ERF_PER_WIDTH)));
            idx[u] = _mm512_cvtepu32_epi64(i);
            dx[u] = _mm512_sub_pd(a, _mm512_permutex2var_pd(c_lo, idx[u], c_hi));
        }
        let (lo, hi) = table(&ERF_POLY[ERF_TERMS - 1]);
        let mut p: [__m512d; U] = std::array::from_fn(|u| _mm512_permutex2var_pd(lo, idx[u], hi));
        for j in (0..ERF_TERMS - 1).rev() {
            let (lo, hi) = table(&ERF_POLY[j]);
            for u in 0..U {
                p[u] = _mm512_fmadd_pd(p[u], dx[u], _mm512_permutex2var_pd(lo, idx[u], hi));
            }
        }
        for u in 0..U {
            let a = abs(xv[u]);
            let inside = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(a, end);
            let y = _mm512_mask_blend_pd(inside, _mm512_set1_pd(1.0), p[u]);
            // copysign: |y| with x's sign bit
            let sign = _mm512_set1_epi64(i64::MIN);
            let y = _mm512_ternarylogic_epi64::<0xCA>(sign, _mm512_castpd_si512(xv[u]), _mm512_castpd_si512(y));
            unsafe { _mm512_storeu_pd(x.as_mut_ptr().add(8 * u), _mm512_castsi512_pd(y)) };
        }
    }

    /// `erf(x)`: the piece of `|x|` and its degree-11 polynomial, by
    /// Horner's rule in fused multiply-adds.
    #[inline(always)]
    pub fn eval(&self, x: f64) -> f64 {
        let (i, dx) = erf_piece(x);
        let mut p = ERF_POLY[ERF_TERMS - 1][i];
        for j in (0..ERF_TERMS - 1).rev() {
            p = p.mul_add(dx, ERF_POLY[j][i]);
        }
        erf_finish(x, p)
    }
}

/// The piece of `min(|x|, 6)` (6 and NaN: the last) and the offset from its center.
#[inline(always)]
fn erf_piece(x: f64) -> (usize, f64) {
    let a = x.abs().min(ERF_END);
    let i = ((a * ERF_PER_WIDTH) as usize).min(ERF_PIECES - 1);
    (i, a - ERF_CENTERS[i])
}

/// The polynomial's value `p` inside [0, 6), 1 outside (and for NaN), with `x`'s sign.
#[inline(always)]
fn erf_finish(x: f64, p: f64) -> f64 {
    let y = if x.abs() < ERF_END { p } else { 1.0 };
    y.copysign(x)
}
