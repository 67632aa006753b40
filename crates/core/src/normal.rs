//! The sampler's standard normals (SAMPLER_VERSION 5): a ziggurat run on
//! [`LANES`] Xoshiro256++ generators stepped together.
//!
//! Each step draws one 64-bit word per lane and tries the ziggurat's fast
//! path on it (2048 layers, the tables of [`crate::ziggurat_tables`]): the
//! low 11 bits pick the layer `i`, the top 52 bits give `u` in [-1, 1), and
//! `x = u X[i]` is accepted when `|x| < X[i + 1]` (99.77 % of draws). A lane
//! that falls outside the rectangle finishes on a separate scalar
//! Xoshiro256++ stream, the *spill* stream: the wedge test against the
//! density, or the tail beyond `R` for the base layer (Marsaglia's method),
//! and a fresh ziggurat draw from the spill stream after a wedge rejection.
//! Every one of these steps is that of the exact ziggurat method, so the
//! normals are exact in law (to double rounding); the spill stream only
//! changes which independent uniforms are used.
//!
//! Normals come out step by step, lane 0 first. The arithmetic of the fast
//! path (a bit mask, an `or`, one subtraction, one product, one comparison)
//! is the same under AVX-512 and AVX2 intrinsics and in the generic code,
//! and the slow path is scalar on every CPU, so the bits do not depend on
//! the instruction set (`tests/normal.rs` and `tests/pinned_bits.rs` force
//! each). AVX-512 holds a step's 8 lanes in one register and fetches the
//! table entries by two gathers or by 16-byte loads, whichever this CPU
//! runs faster ([`TableLoads`]); AVX2 uses two registers and 16-byte loads
//! (cheaper than gathers on AMD). Both run the fast paths of a batch of
//! [`BATCH`] normals first and the batch's slow draws after them, in the
//! same order, so the fast loop has no branch on a miss.
//!
//! Streams: [`NormalStream::new`] takes four words of the work unit's stream
//! ([`crate::rng::StreamKey`]) as lane 0's state; lane j is lane 0 advanced
//! by j Xoshiro256 jumps (2^128 steps each) and the spill stream by
//! [`LANES`] jumps, so no two overlap. A step begun and not used up is
//! carried to the next call, so the sequence does not depend on how calls
//! split it.
//!
//! ```
//! use nnqft_core::normal::NormalStream;
//! use nnqft_core::rng::StreamKey;
//! let key = StreamKey { seed: 1, arch: "a", width: 10, bag: 0, part: 0 };
//! let (mut a, mut b) = (NormalStream::new(&mut key.stream()), NormalStream::new(&mut key.stream()));
//! let mut x = vec![0.0; 40];
//! a.fill(&mut x);
//! // the same 40 normals, drawn 7 and 33 at a time
//! let mut y = vec![0.0; 40];
//! b.fill(&mut y[..7]);
//! b.fill(&mut y[7..]);
//! assert_eq!(x, y);
//! assert!(x.iter().all(|z| z.is_finite()));
//! ```

use crate::sampler::Isa;
use crate::ziggurat_tables::{ZIG_NORM_F as F, ZIG_NORM_LAYERS as LAYERS, ZIG_NORM_R as R, ZIG_NORM_X as X};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::mem::MaybeUninit;
use std::sync::OnceLock;

/// Generators stepped together (one AVX-512 or two AVX2 registers per state word).
pub const LANES: usize = 8;

/// Xoshiro256's jump polynomial: 2^128 steps.
const JUMP: [u64; 4] = [0x180e_c6d3_3cfd_0aba, 0xd5a6_1266_f0c9_392c, 0xa958_2618_e03f_c9aa, 0x39ab_dc45_29b1_661c];

/// A word's layer bits: its low `log2(LAYERS)` bits pick the ziggurat layer.
const LAYER: u64 = LAYERS as u64 - 1;

/// The exponent bits of 2.0: `(bits >> 12) | TWO` is a double in [2, 4).
const TWO: u64 = 0x4000_0000_0000_0000;

/// `LANES` Xoshiro256++ states (word-major, `s[w][lane]`), the spill stream
/// and the step in hand.
#[derive(Clone, Debug)]
pub struct NormalStream {
    s: [[u64; LANES]; 4],
    spill: Xoshiro256PlusPlus,
    buf: [f64; LANES],
    /// Normals of `buf` already handed out (`LANES`: none left).
    used: usize,
    isa: Isa,
    /// How the AVX-512 path fetches its table entries.
    loads: TableLoads,
}

/// How the AVX-512 path fetches each lane's two ziggurat table entries:
/// the same values either way, so the same bits; only the speed differs.
/// [`TableLoads::fastest`] measures which is faster on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableLoads {
    /// Two 8-lane gathers per step (0.78 ns per normal on the Intel Xeon
    /// of BENCHMARKS.md; AMD Zen 4's gathers are slow: 1.55 ns).
    Gather,
    /// Eight 16-byte loads of `(X[i], X[i + 1])` merged into two registers
    /// (0.93 ns per normal on AMD Zen 4).
    Pairs,
}

impl TableLoads {
    /// The faster of the two on this CPU, measured once per process (about
    /// a millisecond: the best of five alternating runs of 2^16 normals
    /// each). [`TableLoads::Gather`] without AVX-512, where it is unused.
    pub fn fastest() -> TableLoads {
        static CHOICE: OnceLock<TableLoads> = OnceLock::new();
        *CHOICE.get_or_init(|| {
            if !Isa::Avx512.available() {
                return TableLoads::Gather;
            }
            let mut best = [f64::INFINITY; 2];
            let mut buf = vec![0.0; 1 << 16];
            for _ in 0..5 {
                for (b, loads) in best.iter_mut().zip([TableLoads::Gather, TableLoads::Pairs]) {
                    let mut g = NormalStream::from_state_with([1, 2, 3, 4], Isa::Avx512, loads);
                    let t = std::time::Instant::now();
                    g.fill(&mut buf);
                    *b = b.min(t.elapsed().as_secs_f64());
                }
            }
            if best[1] < best[0] { TableLoads::Pairs } else { TableLoads::Gather }
        })
    }

    /// What a stream on `isa` uses: [`TableLoads::fastest`] on AVX-512
    /// (measured only then), otherwise unused.
    fn for_isa(isa: Isa) -> TableLoads {
        if isa == Isa::Avx512 { TableLoads::fastest() } else { TableLoads::Gather }
    }
}

/// One Xoshiro256++ step of a single state.
#[inline(always)]
fn step1(s: &mut [u64; 4]) -> u64 {
    let out = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
    let t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s[3].rotate_left(45);
    out
}

/// `s` advanced by 2^128 steps.
fn jump(s: &[u64; 4]) -> [u64; 4] {
    let (mut cur, mut acc) = (*s, [0u64; 4]);
    for word in JUMP {
        for b in 0..64 {
            if (word >> b) & 1 == 1 {
                for (a, c) in acc.iter_mut().zip(&cur) {
                    *a ^= c;
                }
            }
            step1(&mut cur);
        }
    }
    acc
}

/// Normals per batch: a vector path runs the fast paths of a batch's steps
/// first and its slow draws after them, in step and lane order (the order
/// in which the step-by-step loop serves them from the spill stream, so the
/// bits do not change). Without the per-step branch on a miss (about one
/// step in 55 has one, at random) the fast loop does not stall on
/// mispredictions.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const BATCH: usize = 256;

/// Per 8-bit mask of missed lanes, their indices in ascending order, one
/// per byte from the lowest.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const MISS_LANES: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut m = 0;
    while m < 256 {
        let (mut l, mut n) = (0, 0);
        while l < 8 {
            if m & (1 << l) != 0 {
                t[m] |= (l as u64) << (8 * n);
                n += 1;
            }
            l += 1;
        }
        m += 1;
    }
    t
};

/// The raw words of a batch's steps and where its missed lanes are.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct Batch {
    words: [MaybeUninit<u64>; BATCH],
    /// Positions in the batch of the missed lanes, in order.
    at: [MaybeUninit<u8>; BATCH + LANES],
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
impl Batch {
    #[inline(always)]
    fn new() -> Self {
        Batch { words: [MaybeUninit::uninit(); BATCH], at: [MaybeUninit::uninit(); BATCH + LANES] }
    }

    /// Where step `k` of the batch stores its [`LANES`] words.
    #[inline(always)]
    fn words_of(&mut self, k: usize) -> *mut u64 {
        self.words[k * LANES..].as_mut_ptr() as *mut u64
    }

    /// Notes the lanes of step `k` not in `accepted` (a lane bit mask)
    /// after the `missed` ones of the steps before; returns the new count.
    /// (The count lives in the caller's register, not in the batch.)
    #[inline(always)]
    fn note(&mut self, k: usize, accepted: u8, missed: usize) -> usize {
        let lanes = !accepted;
        let at = MISS_LANES[lanes as usize] + (k * LANES) as u64 * 0x0101_0101_0101_0101;
        assert!(missed <= k * LANES && k < BATCH / LANES);
        // SAFETY: missed <= k LANES <= BATCH - LANES, so the 8 bytes at `missed` lie inside `at` (BATCH + LANES long).
        unsafe { std::ptr::write_unaligned(self.at.as_mut_ptr().add(missed) as *mut u64, at) };
        missed + lanes.count_ones() as usize
    }

    /// Finishes the first `missed` noted lanes of `out` (the batch's
    /// normals, one per word stored) on the spill stream, in order.
    #[inline(always)]
    fn finish(&self, spill: &mut Xoshiro256PlusPlus, out: &mut [f64], missed: usize) {
        let lines = squeeze();
        for at in &self.at[..missed] {
            // SAFETY: note wrote the first `missed` positions, each a lane of a step whose words were stored before it.
            let (p, w) = unsafe {
                let p = at.assume_init() as usize;
                (p, self.words[p].assume_init())
            };
            out[p] = slow_common(spill, lines, w, out[p]);
        }
    }
}

/// [`slow`] without branches on its common outcomes: a wedge point that
/// the squeeze lines accept (one spill word), or reject with the fresh
/// draw accepted by the fast path (two words). Both words are drawn from
/// a copy of the spill stream and the stream then advanced by as many as
/// were used, so the result and the stream are those of [`slow`], which
/// takes every other case (the base layer, a point needing the exp, a
/// fresh draw that misses again). The wedge decision is a coin toss (about
/// half accept) that a branch mispredicts half the time.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#[inline(always)]
fn slow_common(spill: &mut Xoshiro256PlusPlus, lines: &[[f64; 4]; LAYERS], bits: u64, x: f64) -> f64 {
    let i = (bits & LAYER) as usize;
    let mut s = spill.clone();
    let y = F[i + 1] + (F[i] - F[i + 1]) * unit(&mut s);
    let after_one = s.clone();
    let (z, z_ok) = fast(s.next_u64());
    // the base layer's row is [-inf, 0, inf, 0]: neither line decides, so it goes to slow
    let [lo0, lo1, hi0, hi1] = lines[i];
    let a = x.abs();
    let accept = y < lo0 + lo1 * a;
    let reject = y >= hi0 + hi1 * a;
    if !(accept || reject & z_ok) {
        return slow(spill, bits, x);
    }
    *spill = if accept { after_one } else { s };
    if accept { x } else { z }
}

/// The fast path on one word: `(x, accepted)`.
#[inline(always)]
fn fast(bits: u64) -> (f64, bool) {
    let i = (bits & LAYER) as usize;
    let u = f64::from_bits((bits >> 12) | TWO) - 3.0;
    let x = u * X[i];
    (x, x.abs() < X[i + 1])
}

/// A uniform in [0, 1) from the top 53 bits.
#[inline(always)]
fn unit(r: &mut Xoshiro256PlusPlus) -> f64 {
    (r.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
}

/// The rest of a ziggurat draw whose first word `bits` (giving `x`) missed
/// the rectangle, on the spill stream.
#[cold]
#[inline(never)]
fn slow(spill: &mut Xoshiro256PlusPlus, mut bits: u64, mut x: f64) -> f64 {
    loop {
        let i = (bits & LAYER) as usize;
        if i == 0 {
            // the tail |z| > R, by Marsaglia's method, on x's side
            loop {
                let a = -libm::log(1.0 - unit(spill)) / R;
                let b = -libm::log(1.0 - unit(spill));
                if 2.0 * b >= a * a {
                    return if x < 0.0 { -(R + a) } else { R + a };
                }
            }
        }
        // the wedge between layers i and i + 1
        if wedge_accepts(i, x, F[i + 1] + (F[i] - F[i + 1]) * unit(spill)) {
            return x;
        }
        // rejected: a fresh draw
        bits = spill.next_u64();
        let (y, ok) = fast(bits);
        if ok {
            return y;
        }
        x = y;
    }
}

/// The wedge test of layer `i` (1..LAYERS) at `x` (`X[i + 1] <= |x| <= X[i]`):
/// whether `y < exp(-x^2 / 2)`, with exp that of [`crate::fastmath`].
///
/// The answer is exactly that comparison's, but most points are decided
/// by two lines that bound the density on the layer ([`squeeze`]), without
/// the exp, whose 13 dependent steps are most of a wedge draw's time. Only
/// points within the bounds' gap (a small fraction, where the layer is
/// strongly curved) compute it.
#[inline(always)]
fn wedge_accepts(i: usize, x: f64, y: f64) -> bool {
    let [lo0, lo1, hi0, hi1] = squeeze()[i];
    let a = x.abs();
    if y < lo0 + lo1 * a {
        true
    } else if y >= hi0 + hi1 * a {
        false
    } else {
        y < crate::fastmath::exp(-0.5 * x * x)
    }
}

/// Per layer i, `[lo0, lo1, hi0, hi1]` with `lo0 + lo1 a < e(a) <= hi0 +
/// hi1 a` for `a` in `[X[i + 1], X[i]]`, where `e(a)` is the computed
/// `fastmath::exp(-0.5 a a)`. On a convex stretch of the density (`a >=
/// 1`) the chord lies above it and the tangent at the midpoint below; on
/// a concave one (`a <= 1`) the other way round; the one layer across
/// a = 1 gets no bounds (always the exp). Each line is moved outwards by
/// 1e-12 of the layer's largest density: the rounding of `e` (a few
/// 1e-16 relative) and of evaluating a line (below 1e-14 of it) are far
/// smaller, so a point a line decides is one the exp decides the same way.
fn squeeze() -> &'static [[f64; 4]; LAYERS] {
    static T: OnceLock<[[f64; 4]; LAYERS]> = OnceLock::new();
    T.get_or_init(|| {
        let g = |a: f64| libm::exp(-0.5 * a * a);
        let mut t = [[f64::NEG_INFINITY, 0.0, f64::INFINITY, 0.0]; LAYERS];
        for (i, row) in t.iter_mut().enumerate().skip(1) {
            let (inner, outer) = (X[i + 1], X[i]);
            let margin = 1e-12 * g(inner);
            let slope = (g(outer) - g(inner)) / (outer - inner);
            let chord = [g(inner) - slope * inner, slope];
            let m = 0.5 * (inner + outer);
            let tangent = [g(m) * (1.0 + m * m), -m * g(m)];
            let (lo, hi) = if inner >= 1.0 {
                (tangent, chord)
            } else if outer <= 1.0 {
                (chord, tangent)
            } else {
                continue;
            };
            *row = [lo[0] - margin, lo[1], hi[0] + margin, hi[1]];
        }
        t
    })
}

impl NormalStream {
    /// Lanes seeded from four words of `rng`, on this CPU's widest path.
    pub fn new<R: Rng + ?Sized>(rng: &mut R) -> Self {
        Self::with_isa(rng, Isa::detect())
    }

    /// [`NormalStream::new`] on a forced instruction set (the same bits on
    /// each; panics if the CPU lacks it).
    pub fn with_isa<R: Rng + ?Sized>(rng: &mut R, isa: Isa) -> Self {
        Self::with_table_loads(rng, isa, TableLoads::for_isa(isa))
    }

    /// [`NormalStream::with_isa`] with the AVX-512 path's table loads forced
    /// (tests check that both give the same bits).
    pub fn with_table_loads<R: Rng + ?Sized>(rng: &mut R, isa: Isa, loads: TableLoads) -> Self {
        assert!(isa.available(), "{isa:?} is not available on this CPU");
        let mut s0 = [rng.next_u64(), rng.next_u64(), rng.next_u64(), rng.next_u64()];
        if s0 == [0; 4] {
            // the one state Xoshiro cannot leave (probability 2^-256)
            s0 = [0x9e37_79b9_7f4a_7c15, 1, 2, 3];
        }
        Self::from_state_with(s0, isa, loads)
    }

    /// Lanes from lane 0's state (tests compare the lanes with rand_xoshiro).
    pub fn from_state(s0: [u64; 4], isa: Isa) -> Self {
        Self::from_state_with(s0, isa, TableLoads::for_isa(isa))
    }

    fn from_state_with(s0: [u64; 4], isa: Isa, loads: TableLoads) -> Self {
        let mut s = [[0u64; LANES]; 4];
        let mut cur = s0;
        for l in 0..LANES {
            for w in 0..4 {
                s[w][l] = cur[w];
            }
            cur = jump(&cur);
        }
        let seed: Vec<u8> = cur.iter().flat_map(|w| w.to_le_bytes()).collect();
        let spill = Xoshiro256PlusPlus::from_seed(seed.try_into().expect("32 bytes"));
        NormalStream { s, spill, buf: [0.0; LANES], used: LANES, isa, loads }
    }

    /// The next raw word of every lane (the generic path's generator).
    #[inline(always)]
    pub fn next_u64s(&mut self) -> [u64; LANES] {
        let [s0, s1, s2, s3] = &mut self.s;
        let mut out = [0u64; LANES];
        for l in 0..LANES {
            out[l] = s0[l].wrapping_add(s3[l]).rotate_left(23).wrapping_add(s0[l]);
            let t = s1[l] << 17;
            s2[l] ^= s0[l];
            s3[l] ^= s1[l];
            s1[l] ^= s2[l];
            s0[l] ^= s3[l];
            s2[l] ^= t;
            s3[l] = s3[l].rotate_left(45);
        }
        out
    }

    /// Fills `out` with the next standard normals of the stream.
    #[inline]
    pub fn fill(&mut self, out: &mut [f64]) {
        let take = (LANES - self.used).min(out.len());
        out[..take].copy_from_slice(&self.buf[self.used..self.used + take]);
        self.used += take;
        let rest = &mut out[take..];
        let whole = rest.len() / LANES * LANES;
        let (steps, tail) = rest.split_at_mut(whole);
        self.steps(steps);
        if !tail.is_empty() {
            let mut buf = [0.0; LANES];
            self.steps(&mut buf);
            self.buf = buf;
            tail.copy_from_slice(&buf[..tail.len()]);
            self.used = tail.len();
        }
    }

    /// Whole steps into `out` (a multiple of [`LANES`] long).
    fn steps(&mut self, out: &mut [f64]) {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: with_isa asserted the CPU has this instruction set, and every AVX-512F CPU has AVX2.
            Isa::Avx512 if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("popcnt") => unsafe {
                match self.loads {
                    TableLoads::Gather => self.steps_avx512::<true>(out),
                    TableLoads::Pairs => self.steps_avx512::<false>(out),
                }
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 | Isa::Avx512 if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt") => unsafe { self.steps_avx2(out) },
            _ => self.steps_generic(out),
        }
    }

    fn steps_generic(&mut self, out: &mut [f64]) {
        for c in out.chunks_exact_mut(LANES) {
            let bits = self.next_u64s();
            for (o, &b) in c.iter_mut().zip(&bits) {
                let (x, ok) = fast(b);
                *o = if ok { x } else { slow(&mut self.spill, b, x) };
            }
        }
    }

    /// The generic step with all [`LANES`] lanes in one AVX-512 register:
    /// the state stays in registers over the whole call, and each lane's
    /// two table entries come by two gathers (`GATHER`) or by eight 16-byte
    /// loads ([`TableLoads`]). On the Intel Xeon of BENCHMARKS.md the
    /// gathers draw a normal in 0.78 ns against 1.06 for the AVX2 path
    /// (both with slow draws batched); on AMD Zen 4 the loads take 0.93 ns,
    /// the gathers 1.55 and the AVX2 path 1.07.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,popcnt")]
    unsafe fn steps_avx512<const GATHER: bool>(&mut self, out: &mut [f64]) {
        // SAFETY: the caller checked AVX-512F and POPCNT; the loads and stores stay inside self.s, words and the chunk c, and the gathers and pair loads inside X (i + 1 <= LAYERS of LAYERS + 1 entries).
        unsafe {
            use std::arch::x86_64::*;
            let mut s = [_mm512_setzero_si512(); 4];
            for (w, v) in s.iter_mut().enumerate() {
                *v = _mm512_loadu_si512(self.s[w].as_ptr() as *const _);
            }
            let layer = _mm512_set1_epi64(LAYER as i64);
            let two = _mm512_set1_epi64(TWO as i64);
            let three = _mm512_set1_pd(3.0);
            for batch in out.chunks_mut(BATCH) {
                let (mut misses, mut missed) = (Batch::new(), 0);
                for (k, c) in batch.chunks_exact_mut(LANES).enumerate() {
                    let [s0, s1, s2, s3] = s;
                    let b = _mm512_add_epi64(_mm512_rol_epi64::<23>(_mm512_add_epi64(s0, s3)), s0);
                    let t = _mm512_slli_epi64::<17>(s1);
                    let s2 = _mm512_xor_si512(s2, s0);
                    let s3 = _mm512_xor_si512(s3, s1);
                    let s1 = _mm512_xor_si512(s1, s2);
                    let s0 = _mm512_xor_si512(s0, s3);
                    let s2 = _mm512_xor_si512(s2, t);
                    let s3 = _mm512_rol_epi64::<45>(s3);
                    s = [s0, s1, s2, s3];
                    let i = _mm512_and_si512(b, layer);
                    let (xi, xi1) = if GATHER {
                        (_mm512_i64gather_pd::<8>(i, X.as_ptr()), _mm512_i64gather_pd::<8>(i, X.as_ptr().add(1)))
                    } else {
                        let mut idx = [0u64; LANES];
                        _mm512_storeu_si512(idx.as_mut_ptr() as *mut _, i);
                        // (X[i], X[i + 1]) of lane l; lanes 0, 2, 4, 6 in `even`'s 128-bit
                        // quarters and 1, 3, 5, 7 in `odd`'s, so the unpacks give lanes 0..8 in order
                        let pair = |l: usize| _mm_loadu_pd(X.as_ptr().add(idx[l] as usize));
                        let quad = |a: usize, b: usize, c: usize, d: usize| {
                            _mm512_insertf64x4::<1>(_mm512_castpd256_pd512(_mm256_set_m128d(pair(b), pair(a))), _mm256_set_m128d(pair(d), pair(c)))
                        };
                        let (even, odd) = (quad(0, 2, 4, 6), quad(1, 3, 5, 7));
                        (_mm512_unpacklo_pd(even, odd), _mm512_unpackhi_pd(even, odd))
                    };
                    let u = _mm512_sub_pd(_mm512_castsi512_pd(_mm512_or_si512(_mm512_srli_epi64::<12>(b), two)), three);
                    let xv = _mm512_mul_pd(u, xi);
                    _mm512_storeu_pd(c.as_mut_ptr(), xv);
                    _mm512_storeu_si512(misses.words_of(k) as *mut _, b);
                    missed = misses.note(k, _mm512_cmp_pd_mask::<_CMP_LT_OQ>(_mm512_abs_pd(xv), xi1), missed);
                }
                misses.finish(&mut self.spill, batch, missed);
            }
            for (w, v) in s.iter().enumerate() {
                _mm512_storeu_si512(self.s[w].as_mut_ptr() as *mut _, *v);
            }
        }
    }

    /// The generic step, four lanes per register: the state stays in
    /// registers over the whole call; the two table entries of each lane's
    /// layer are one 16-byte load (cheaper than two gathers on AMD).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,popcnt")]
    unsafe fn steps_avx2(&mut self, out: &mut [f64]) {
        // SAFETY: the caller checked AVX2 and POPCNT; every load and store stays inside self.s, X (i + 1 <= LAYERS of LAYERS + 1 entries), idx, words and the chunk c.
        unsafe {
            use std::arch::x86_64::*;
            #[inline(always)]
            unsafe fn rotl<const A: i32, const B: i32>(x: __m256i) -> __m256i {
                // SAFETY: only called from steps_avx2, on an AVX2 CPU.
                unsafe { _mm256_or_si256(_mm256_slli_epi64::<A>(x), _mm256_srli_epi64::<B>(x)) }
            }
            let mut s = [[_mm256_setzero_si256(); 2]; 4];
            for (w, sw) in s.iter_mut().enumerate() {
                for (h, v) in sw.iter_mut().enumerate() {
                    *v = _mm256_loadu_si256(self.s[w].as_ptr().add(4 * h) as *const __m256i);
                }
            }
            let layer = _mm256_set1_epi64x(LAYER as i64);
            let two = _mm256_set1_epi64x(TWO as i64);
            let three = _mm256_set1_pd(3.0);
            let abs = _mm256_castsi256_pd(_mm256_set1_epi64x(i64::MAX));
            for batch in out.chunks_mut(BATCH) {
                let (mut misses, mut missed) = (Batch::new(), 0);
                for (k, c) in batch.chunks_exact_mut(LANES).enumerate() {
                    let mut x = [_mm256_setzero_pd(); 2];
                    let mut accepted = 0;
                    for h in 0..2 {
                        let (s0, s1, s2, s3) = (s[0][h], s[1][h], s[2][h], s[3][h]);
                        let b = _mm256_add_epi64(rotl::<23, 41>(_mm256_add_epi64(s0, s3)), s0);
                        let t = _mm256_slli_epi64::<17>(s1);
                        let s2 = _mm256_xor_si256(s2, s0);
                        let s3 = _mm256_xor_si256(s3, s1);
                        let s1 = _mm256_xor_si256(s1, s2);
                        let s0 = _mm256_xor_si256(s0, s3);
                        let s2 = _mm256_xor_si256(s2, t);
                        let s3 = rotl::<45, 19>(s3);
                        s[0][h] = s0;
                        s[1][h] = s1;
                        s[2][h] = s2;
                        s[3][h] = s3;
                        _mm256_storeu_si256(misses.words_of(k).add(4 * h) as *mut __m256i, b);
                        let mut idx = [0u64; 4];
                        _mm256_storeu_si256(idx.as_mut_ptr() as *mut __m256i, _mm256_and_si256(b, layer));
                        // (X[i], X[i + 1]) per lane; i < LAYERS, so i + 1 is in the table of LAYERS + 1
                        let pair = |l: usize| _mm_loadu_pd(X.as_ptr().add(idx[l] as usize));
                        let (lo, hi) = (_mm256_set_m128d(pair(2), pair(0)), _mm256_set_m128d(pair(3), pair(1)));
                        let (xi, xi1) = (_mm256_unpacklo_pd(lo, hi), _mm256_unpackhi_pd(lo, hi));
                        let u = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64::<12>(b), two)), three);
                        let xv = _mm256_mul_pd(u, xi);
                        let ok = _mm256_cmp_pd::<_CMP_LT_OQ>(_mm256_and_pd(xv, abs), xi1);
                        accepted |= _mm256_movemask_pd(ok) << (4 * h);
                        x[h] = xv;
                    }
                    _mm256_storeu_pd(c.as_mut_ptr(), x[0]);
                    _mm256_storeu_pd(c.as_mut_ptr().add(4), x[1]);
                    missed = misses.note(k, accepted as u8, missed);
                }
                misses.finish(&mut self.spill, batch, missed);
            }
            for (w, sw) in s.iter().enumerate() {
                for (h, v) in sw.iter().enumerate() {
                    _mm256_storeu_si256(self.s[w].as_mut_ptr().add(4 * h) as *mut __m256i, *v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lane 0 is the reference Xoshiro256++ from the same state, lane 1 its
    /// jump and lane 2 its second jump, as rand_xoshiro computes them.
    #[test]
    fn lanes_are_xoshiro_and_its_jumps() {
        let seed: [u64; 4] = [1, 0x1234_5678_9abc_def0, 42, 7];
        let bytes: [u8; 32] = seed.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>().try_into().unwrap();
        let mut reference = Xoshiro256PlusPlus::from_seed(bytes);
        let mut jumped = Xoshiro256PlusPlus::from_seed(bytes);
        jumped.jump();
        let mut twice = jumped.clone();
        twice.jump();
        let mut s = NormalStream::from_state(seed, Isa::Generic);
        for _ in 0..100 {
            let v = s.next_u64s();
            assert_eq!(v[0], reference.next_u64());
            assert_eq!(v[1], jumped.next_u64());
            assert_eq!(v[2], twice.next_u64());
        }
    }

    /// The squeeze lines bound the computed density on every layer: on a
    /// grid of 2001 points per layer, its ends included, `lo < e <= hi`
    /// with room to spare (at least a third of the margin).
    #[test]
    fn squeeze_lines_bound_the_density() {
        let mut bounded = 0;
        for i in 1..LAYERS {
            let [lo0, lo1, hi0, hi1] = squeeze()[i];
            if lo0 == f64::NEG_INFINITY {
                assert!(X[i + 1] < 1.0 && X[i] > 1.0, "layer {i} is not the one across a = 1");
                continue;
            }
            bounded += 1;
            let room = 0.33e-12 * libm::exp(-0.5 * X[i + 1] * X[i + 1]);
            for k in 0..=2000 {
                let a = X[i + 1] + (X[i] - X[i + 1]) * k as f64 / 2000.0;
                let e = crate::fastmath::exp(-0.5 * a * a);
                assert!(lo0 + lo1 * a < e - room, "layer {i}, a = {a}: lower line {} vs {e}", lo0 + lo1 * a);
                assert!(hi0 + hi1 * a > e + room, "layer {i}, a = {a}: upper line {} vs {e}", hi0 + hi1 * a);
            }
        }
        assert_eq!(bounded, LAYERS - 2);
    }

    /// `wedge_accepts` answers exactly as the exp comparison: at random
    /// points of every layer, and at `y` within a few ulps of the exp and
    /// of each line (where a wrong margin would show). Fewer than 1 % of
    /// random wedge points need the exp (0.12 % with 2048 layers).
    #[test]
    fn wedge_test_equals_the_exp_comparison() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let (mut points, mut ambiguous) = (0u64, 0u64);
        for i in 1..LAYERS {
            let [lo0, lo1, hi0, hi1] = squeeze()[i];
            for _ in 0..2_000_000 / LAYERS {
                let a = X[i + 1] + (X[i] - X[i + 1]) * unit(&mut rng);
                let x = if rng.next_u64() & 1 == 0 { a } else { -a };
                let e = crate::fastmath::exp(-0.5 * x * x);
                let y = F[i + 1] + (F[i] - F[i + 1]) * unit(&mut rng);
                points += 1;
                ambiguous += (y >= lo0 + lo1 * a && y < hi0 + hi1 * a) as u64;
                let near = [e, lo0 + lo1 * a, hi0 + hi1 * a];
                for y in std::iter::once(y).chain(near.iter().filter(|v| v.is_finite()).flat_map(|&v| {
                    (-3i64..=3).map(move |d| f64::from_bits((v.to_bits() as i64 + d) as u64))
                })) {
                    assert_eq!(wedge_accepts(i, x, y), y < e, "layer {i}, x = {x}, y = {y}, e = {e}");
                }
            }
        }
        let frac = ambiguous as f64 / points as f64;
        eprintln!("wedge points needing the exp: {frac:.4}");
        assert!(frac < 0.01, "{frac}");
    }

    /// The fast path is rand_distr's: the same layer and the same x from a word.
    #[test]
    fn fast_path_accepts_inside_the_rectangle() {
        // layer 5, u = 0: x = 0, accepted
        let (x, ok) = fast((1u64 << 63) | 5);
        assert_eq!(x, 0.0);
        assert!(ok);
        // layer 0, |u| near 1: x near X[0] > R, rejected (the base layer's tail side)
        let (x, ok) = fast(u64::MAX & !LAYER);
        assert!(x > R && !ok);
    }
}
