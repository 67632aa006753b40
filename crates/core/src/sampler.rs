//! Drawing networks from the ensemble and evaluating them at the inputs.

use crate::fastmath::{self, Block, Erf};
use crate::normal::NormalStream;
use crate::{Activation, ArchSpec};
use rand::Rng;

/// Version of the sampling algorithm (draw order, arithmetic). It enters
/// every config hash: a change that alters the samples must bump it, so old
/// data are never mixed with new.
///
/// 1: W0 unit-major, libm activations. 2: W0 coordinate-major, the
/// vectorised activations of [`crate::fastmath`], blocked sums. 3: the
/// normals of [`crate::normal`] (a ziggurat on 8 Xoshiro256++ lanes, in
/// place of rand_distr's on one stream); erf exactly odd with erf(0) = 0.
/// 4: fused multiply-adds in the activations, pre-activations and output
/// sums; erf from 16 degree-11 pieces (within 1.0e-15 of libm, was
/// 1.2e-14) picked from registers on AVX-512. The draws and their order
/// are version 3's; the outputs move by an ulp of f64, which changed 4 of
/// 24.6 million stored f32 values (by one f32 ulp) in a side-by-side run.
/// 5: the normals' ziggurat has 2048 layers instead of 256 (its tables
/// written in 60-digit arithmetic by `tools/ziggurat_table.py`), so 0.23 %
/// of draws take the scalar slow path instead of 1.5 %; the same law, other
/// draws.
pub const SAMPLER_VERSION: u32 = 5;

/// Normals the samplers ask [`NormalStream::fill`] for per call, as whole
/// nets (at least one): fewer calls for small nets, the same sequence.
pub const NORMALS_PER_CALL: usize = 4096;

/// The instruction set the sampler's loops are compiled for. Each gives
/// the same bits (the same operations in the same order, fused
/// multiply-adds being correctly rounded everywhere;
/// `tests/sampler_isa.rs` forces every one the CPU has); [`Isa::detect`]
/// picks the widest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2,
    Generic,
}

impl Isa {
    /// The widest this CPU has.
    pub fn detect() -> Isa {
        [Isa::Avx512, Isa::Avx2].into_iter().find(|i| i.available()).unwrap_or(Isa::Generic)
    }

    /// Whether this CPU can run it.
    pub fn available(self) -> bool {
        match self {
            Isa::Generic => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// Draws single-hidden-layer networks of one width (docs/physics.md §1) and
/// evaluates them at the architecture's inputs.
///
/// Per net, `(d + 1) N + D (N + 1)` standard normals ([`NormalStream`]) are drawn in this order: `W0`
/// (coordinate-major: the N first coordinates of every unit's weights, then
/// the N second ones, ...), `b0`, then for each output o = 0..D `W1_o`, `b1_o`;
/// they are scaled by `sw / sqrt(d)`, `sb`, `sw / sqrt(N)`, `sb`. The k x N
/// pre-activations are computed as one vector (`sb b0_i + sum_j (sw x_aj /
/// sqrt(d)) W0_ji`, j in order, then `+ m(x_a)` when the hidden layer has
/// means, [`ArchSpec::pre_mean`]), the activation is applied over it ([`crate::fastmath`]: erf, exp, tanh within a few 1e-16 of libm)
/// and the output sum runs in 8 fixed partial sums, so the loops vectorise
/// and the result is the same on every CPU (the multiply-adds of the
/// pre-activations and of the output sums are fused, one rounding each,
/// and correctly rounded everywhere; AVX-512 or AVX2 + FMA are used when
/// present). The output is computed in f64 and stored as f32
/// (any NaN as the canonical one). Output means add `mu_b_out + (mu_w_out / N) sum_i h_i`
/// after the sums. With D = 1 and zero means the order of the draws is
/// that of version 2; the normals are version 3's, the arithmetic version 4's.
///
/// ```
/// use nnqft_core::{ArchSpec, Activation, NetSampler, rng::StreamKey};
/// let arch = ArchSpec::single("relu", Activation::Relu, 1.0, 0.0, vec![vec![0.5], vec![1.0]]);
/// let mut s = NetSampler::new(&arch, 10);
/// let mut rng = StreamKey { seed: 7, arch: "relu", width: 10, bag: 0, part: 0 }.stream();
/// let cols = s.sample_part(&mut rng, 100);
/// assert_eq!(cols.len(), 2);
/// assert_eq!(cols[0].len(), 100);
/// // relu with sb = 0 is positively homogeneous: f(1.0) = 2 f(0.5) for each net
/// assert!((cols[1][3] - 2.0 * cols[0][3]).abs() < 1e-5);
/// ```
pub struct NetSampler {
    act: Activation,
    /// Per-input factor applied after the activation (1 except for gauss).
    scale: Vec<f64>,
    d: usize,
    n: usize,
    /// `sw / sqrt(d) * x_a`, k x d row-major.
    cx: Vec<f64>,
    sw_out: f64,
    sb: f64,
    /// `m(x_a)` per input, when the hidden layer has means.
    pre_mean: Option<Vec<f64>>,
    /// `(mu_w_out / N, mu_b_out)`, when the output layer has means.
    out_mean: Option<(f64, f64)>,
    d_out: usize,
    normals: Vec<f64>,
    z: Vec<f64>,
    acc: Vec<f64>,
}

/// Lanes of the blocked loops (partial sums, activation chunks).
const LANES: usize = 8;
/// Lanes of erf's blocks ([`Erf::eval_block`]).
const ERF_LANES: usize = 16;
/// Lanes of erf's AVX-512 blocks ([`fastmath::ErfAvx512`]): 4 registers.
#[cfg(target_arch = "x86_64")]
const ERF_LANES_512: usize = 32;
/// Lanes of exp's and tanh's blocks ([`fastmath::exp_block`]): 8 registers
/// of independent Horner chains, in AVX2's 4-lane registers.
const ACT_LANES: usize = 32;
/// The same on AVX-512, whose registers hold 8 lanes.
const ACT_LANES_512: usize = 64;

impl NetSampler {
    /// A sampler for `arch` at hidden width `width` (>= 1).
    pub fn new(arch: &ArchSpec, width: usize) -> Self {
        assert!(width >= 1, "width must be >= 1");
        assert_eq!(arch.hidden_layers, 1, "NetSampler is single-hidden-layer; deep nets use deep::DeepSampler");
        let d = arch.d_in;
        let sw_in = arch.sigma_w / (d as f64).sqrt();
        NetSampler {
            act: arch.activation,
            scale: arch.unit().scale,
            d,
            n: width,
            cx: arch.inputs.iter().flatten().map(|x| sw_in * x).collect(),
            sw_out: arch.sigma_w / (width as f64).sqrt(),
            sb: arch.sigma_b,
            pre_mean: arch.has_hidden_means().then(|| arch.inputs.iter().map(|x| arch.pre_mean(x)).collect()),
            out_mean: (arch.mu_w_out != 0.0 || arch.mu_b_out != 0.0).then(|| (arch.mu_w_out / width as f64, arch.mu_b_out)),
            d_out: arch.d_out,
            normals: vec![0.0; (d + 1) * width + arch.d_out * (width + 1)],
            z: vec![0.0; width * arch.k()],
            acc: vec![0.0; arch.k() * arch.d_out],
        }
    }

    /// Number of input points k.
    pub fn k(&self) -> usize {
        self.acc.len() / self.d_out
    }

    /// Values per net: `k D`, output-major (`out[o k + a]` = output o at input a).
    pub fn outputs_per_net(&self) -> usize {
        self.acc.len()
    }

    /// Standard normals drawn per net: `(d + 1) N + D (N + 1)`.
    pub fn normals_per_net(&self) -> usize {
        (self.d + 1) * self.n + self.d_out * (self.n + 1)
    }

    /// Draws one net from `normals` and writes `f_o(x_a)` into `out[o k + a]` (length k D).
    pub fn sample_net(&mut self, normals: &mut NormalStream, out: &mut [f64]) {
        let mut buf = std::mem::take(&mut self.normals);
        normals.fill(&mut buf);
        self.evaluate_generic(&buf, out);
        self.normals = buf;
    }

    /// `nets` nets into `cols` (f32, or f64 for tests) with the loops compiled for `isa`; the
    /// arithmetic, and so every bit, is the same for each.
    fn sample_into<R: Rng + ?Sized, T: Stored>(&mut self, isa: Isa, rng: &mut R, nets: usize, cols: &mut [Vec<T>]) {
        let mut rng = NormalStream::with_isa(rng, isa);
        let rng = &mut rng;
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU supports AVX-512F (with_isa asserted it).
            Isa::Avx512 => unsafe { self.sample_into_avx512(rng, nets, cols) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU supports AVX2 (with_isa asserted it).
            Isa::Avx2 => unsafe { self.sample_into_avx2(rng, nets, cols) },
            _ => self.sample_into_generic(Isa::Generic, rng, nets, cols),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn sample_into_avx512<T: Stored>(&mut self, rng: &mut NormalStream, nets: usize, cols: &mut [Vec<T>]) {
        self.sample_into_generic(Isa::Avx512, rng, nets, cols);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sample_into_avx2<T: Stored>(&mut self, rng: &mut NormalStream, nets: usize, cols: &mut [Vec<T>]) {
        self.sample_into_generic(Isa::Avx2, rng, nets, cols);
    }

    /// The sampling loop, inlined into each instruction set's function
    /// (`isa` names it, for the activation's blocks).
    #[inline(always)]
    fn sample_into_generic<T: Stored>(&mut self, isa: Isa, rng: &mut NormalStream, nets: usize, cols: &mut [Vec<T>]) {
        let mut out = vec![0.0; self.outputs_per_net()];
        // the normals of several nets per call (the same sequence: fill does
        // not depend on how calls split it), so small nets do not pay a
        // call per net
        let per = self.normals_per_net();
        let batch = (NORMALS_PER_CALL / per).clamp(1, nets.max(1));
        let mut buf = vec![0.0; batch * per];
        // one activation pass over all the batch's nets, so that small nets
        // fill whole blocks (at N = 10 one net has 60 values); the same bits
        // as net by net
        let mut zs = std::mem::take(&mut self.z);
        zs.resize(batch * self.k() * self.n, 0.0);
        let mut done = 0;
        while done < nets {
            let m = batch.min(nets - done);
            let buf = &mut buf[..m * per];
            rng.fill(buf);
            if self.fused() {
                for normals in buf.chunks_exact(per) {
                    self.evaluate_fused_relu(isa, normals, &mut out);
                    push_net(cols, &out);
                }
            } else {
                self.evaluate_unfused(isa, buf, &mut zs, &mut out, |o| push_net(cols, o));
            }
            done += m;
        }
        self.z = zs;
    }

    #[inline(always)]
    fn evaluate_generic(&mut self, normals: &[f64], out: &mut [f64]) {
        // relu is a single max per value, so it pays to skip the k x N
        // store; the polynomial activations run faster over the long row
        // (measured, BENCHMARKS.md)
        if self.fused() {
            self.evaluate_fused_relu(Isa::Generic, normals, out);
            return;
        }
        let mut z = std::mem::take(&mut self.z);
        self.evaluate_unfused(Isa::Generic, normals, &mut z, out, |_| {});
        self.z = z;
    }

    /// Whether the rows are long enough for the barrier of [`reduce_lanes`].
    #[inline(always)]
    fn wide(&self) -> bool {
        self.n >= WIDE
    }

    /// Whether nets go through [`Self::evaluate_fused_relu`].
    #[inline(always)]
    fn fused(&self) -> bool {
        self.d_out == 1 && self.out_mean.is_none() && self.act == Activation::Relu
    }

    /// One relu output without output means: each block of [`LANES`] units
    /// goes from pre-activation to activation to the output's partial sums
    /// without being stored. The operations and their order are those of
    /// [`Self::evaluate_unfused`] (same bits, `tests/sampler_isa.rs`, the
    /// unit test below), at less memory traffic. Long rows take the inputs
    /// in groups ([`Self::fused_relu_group`]), short ones one by one; the
    /// barrier of [`reduce_lanes`] applies to long rows, and to short ones
    /// on AVX-512 (`isa` names the path), where it lets one 8-lane register
    /// hold the partial sums: 1.03-1.06x at N = 10, 1.1x at N = 20, while
    /// on AVX2 it costs 1-2 % there.
    #[inline(always)]
    fn evaluate_fused_relu(&self, isa: Isa, normals: &[f64], out: &mut [f64]) {
        if !self.wide() {
            return match (isa == Isa::Avx512, self.d) {
                (true, 1) => self.fused_relu_by_input::<true, 1>(normals, out),
                (true, 2) => self.fused_relu_by_input::<true, 2>(normals, out),
                (true, 3) => self.fused_relu_by_input::<true, 3>(normals, out),
                (true, _) => self.fused_relu_by_input::<true, 0>(normals, out),
                (false, 1) => self.fused_relu_by_input::<false, 1>(normals, out),
                (false, 2) => self.fused_relu_by_input::<false, 2>(normals, out),
                (false, 3) => self.fused_relu_by_input::<false, 3>(normals, out),
                (false, _) => self.fused_relu_by_input::<false, 0>(normals, out),
            };
        }
        let mut groups = out.chunks_exact_mut(FUSED_GROUP);
        let mut a = 0;
        for o in &mut groups {
            let o = o.try_into().expect("FUSED_GROUP outputs");
            match self.d {
                1 => self.fused_relu_group::<FUSED_GROUP, 1>(normals, a, o),
                2 => self.fused_relu_group::<FUSED_GROUP, 2>(normals, a, o),
                3 => self.fused_relu_group::<FUSED_GROUP, 3>(normals, a, o),
                _ => self.fused_relu_group::<FUSED_GROUP, 0>(normals, a, o),
            }
            a += FUSED_GROUP;
        }
        for o in groups.into_remainder() {
            self.fused_relu_group::<1, 0>(normals, a, std::slice::from_mut(o).try_into().expect("one output"));
            a += 1;
        }
    }

    /// [`Self::evaluate_fused_relu`] for short rows, input by input: one
    /// block or a few leave nothing to overlap, and at N = 10 this form
    /// draws 9.4-9.7M nets/s against 7.2-7.4M as groups of one (AVX-512).
    #[inline(always)]
    fn fused_relu_by_input<const BARRIER: bool, const D: usize>(&self, normals: &[f64], out: &mut [f64]) {
        let (d, n) = (if D > 0 { D } else { self.d }, self.n);
        let (w0, rest) = normals.split_at(n * d);
        let (b0, outs) = rest.split_at(n);
        let (w1, b1) = outs.split_at(n);
        let blocks = n / LANES;
        for (a, (o, scale)) in out.iter_mut().zip(&self.scale).enumerate() {
            let cx = &self.cx[a * d..(a + 1) * d];
            let m = self.pre_mean.as_ref().map(|m| m[a]);
            let mut s = [0.0; LANES];
            for blk in 0..blocks {
                let i0 = blk * LANES;
                let mut h = self.pre_block(w0, b0, cx, m, i0);
                for v in h.iter_mut() {
                    *v = v.max(0.0);
                }
                let v: &[f64; LANES] = w1[i0..i0 + LANES].try_into().expect("LANES-sized block");
                for l in 0..LANES {
                    s[l] = v[l].mul_add(h[l], s[l]);
                }
            }
            let tail = self.relu_tail(w0, b0, w1, cx, m);
            *o = self.sb * b1[0] + self.sw_out * scale * (reduce_lanes::<BARRIER>(s) + tail);
        }
    }

    /// The outputs of inputs `a0..a0 + G`, unit block by unit block: each
    /// block's `sb b0` and output weights are loaded once for the G inputs,
    /// whose G sets of partial sums are independent chains of additions
    /// (one input at a time, a block's additions wait on the previous
    /// block's: on AVX-512 the 8 partial sums are one register, one chain).
    /// Per input, the operations and their order are those of
    /// [`Self::evaluate_unfused`].
    #[inline(always)]
    fn fused_relu_group<const G: usize, const D: usize>(&self, normals: &[f64], a0: usize, out: &mut [f64; G]) {
        let (d, n) = (if D > 0 { D } else { self.d }, self.n);
        let (w0, rest) = normals.split_at(n * d);
        let (b0, outs) = rest.split_at(n);
        let (w1, b1) = outs.split_at(n);
        let cxs: [&[f64]; G] = std::array::from_fn(|g| &self.cx[(a0 + g) * d..(a0 + g + 1) * d]);
        let ms: [Option<f64>; G] = std::array::from_fn(|g| self.pre_mean.as_ref().map(|m| m[a0 + g]));
        let mut s = [[0.0; LANES]; G];
        for i0 in (0..n / LANES).map(|blk| blk * LANES) {
            let b: &[f64; LANES] = b0[i0..i0 + LANES].try_into().expect("LANES-sized block");
            let v: &[f64; LANES] = w1[i0..i0 + LANES].try_into().expect("LANES-sized block");
            let mut sbb = [0.0; LANES];
            for l in 0..LANES {
                sbb[l] = self.sb * b[l];
            }
            let mut h = [sbb; G];
            for j in 0..d {
                let w: &[f64; LANES] = w0[j * n + i0..j * n + i0 + LANES].try_into().expect("LANES-sized block");
                for g in 0..G {
                    let c = cxs[g][j];
                    for l in 0..LANES {
                        h[g][l] = c.mul_add(w[l], h[g][l]);
                    }
                }
            }
            if self.pre_mean.is_some() {
                for g in 0..G {
                    let m = ms[g].unwrap_or(0.0);
                    for v in h[g].iter_mut() {
                        *v += m;
                    }
                }
            }
            for g in 0..G {
                for l in 0..LANES {
                    s[g][l] = v[l].mul_add(h[g][l].max(0.0), s[g][l]);
                }
            }
        }
        // reduced in a loop of its own, which unrolls: indexing s in the
        // loop below, which does not, would keep the partial sums in memory
        let mut sums = [0.0; G];
        for g in 0..G {
            sums[g] = reduce_lanes::<true>(s[g]);
        }
        for (g, (o, sg)) in out.iter_mut().zip(sums).enumerate() {
            let tail = self.relu_tail(w0, b0, w1, cxs[g], ms[g]);
            *o = self.sb * b1[0] + self.sw_out * self.scale[a0 + g] * (sg + tail);
        }
    }

    /// `sum_i w1_i relu(z_i)` over the units after the last whole block of
    /// [`LANES`], one by one, for the input whose scaled coordinates are
    /// `cx` and hidden mean `m`: the same operations, in the same order,
    /// as the blocks'.
    #[inline(always)]
    fn relu_tail(&self, w0: &[f64], b0: &[f64], w1: &[f64], cx: &[f64], m: Option<f64>) -> f64 {
        let n = self.n;
        let pre = |i: usize| {
            let mut z = self.sb * b0[i];
            for (j, c) in cx.iter().enumerate() {
                z = c.mul_add(w0[j * n + i], z);
            }
            if let Some(m) = m {
                z += m;
            }
            z
        };
        (n / LANES * LANES..n).fold(0.0, |s, i| w1[i].mul_add(pre(i).max(0.0), s))
    }

    /// Every other case, for the nets whose normals lie back to back in
    /// `normals`: their pre-activations (into `zs`), activations, output
    /// dot products and mean terms into `out`, handed to `emit` net by
    /// net; wide nets row by row ([`Self::evaluate_row_by_row`]), narrow
    /// ones batched ([`Self::evaluate_batched`]). The same bits either way.
    #[inline(always)]
    fn evaluate_unfused(&self, isa: Isa, normals: &[f64], zs: &mut [f64], out: &mut [f64], mut emit: impl FnMut(&[f64])) {
        if self.n >= ROW_BY_ROW {
            for net in normals.chunks_exact(self.normals_per_net()) {
                self.evaluate_row_by_row(isa, net, &mut zs[..self.n], out);
                emit(out);
            }
        } else {
            self.evaluate_batched(isa, normals, zs, out, emit);
        }
    }

    /// [`Self::evaluate_unfused`] for narrow nets: all the nets' k x N
    /// pre-activations, one activation pass over them (so that small nets
    /// fill whole blocks), then the outputs net by net.
    #[inline(always)]
    fn evaluate_batched(&self, isa: Isa, normals: &[f64], zs: &mut [f64], out: &mut [f64], mut emit: impl FnMut(&[f64])) {
        let (per, kn) = (self.normals_per_net(), self.k() * self.n);
        let zs = &mut zs[..normals.len() / per * kn];
        // whole blocks for short rows: 1.08-1.10x at N = 10, 1.1-1.3x at N
        // = 5 and 15, but 0.94-0.97x at N = 20-25 (AVX-512 and AVX2, Zen 4);
        // on the generic path software fused multiply-adds dominate
        // (0.91-1.01x there)
        if self.n < SHORT && isa != Isa::Generic {
            match self.d {
                1 => self.pre_activations_short::<1>(normals, zs),
                2 => self.pre_activations_short::<2>(normals, zs),
                3 => self.pre_activations_short::<3>(normals, zs),
                _ => self.pre_activations_short::<0>(normals, zs),
            }
        } else {
            for (net, z) in normals.chunks_exact(per).zip(zs.chunks_exact_mut(kn)) {
                self.pre_activations(net, z);
            }
        }
        activate_row(self.act, isa, zs);
        for (net, z) in normals.chunks_exact(per).zip(zs.chunks_exact(kn)) {
            if self.wide() {
                self.outputs::<true>(net, z, out);
            } else {
                self.outputs::<false>(net, z, out);
            }
            emit(out);
        }
    }

    /// One net of [`Self::evaluate_unfused`] input by input: the row's
    /// pre-activations, their activations and its output dot products
    /// follow each other while the row (N values) is in L1, where the k x N
    /// values of a wide net are not. Per value the operations are the same.
    #[inline(always)]
    fn evaluate_row_by_row(&self, isa: Isa, normals: &[f64], z: &mut [f64], out: &mut [f64]) {
        let (n, k) = (self.n, self.scale.len());
        let outs = &normals[(self.d + 1) * n..];
        for (a, &scale) in self.scale.iter().enumerate() {
            self.pre_activation_row(normals, a, z);
            activate_row(self.act, isa, z);
            for (o, row) in outs.chunks_exact(n + 1).enumerate() {
                out[o * k + a] = self.output::<true>(row, scale, z);
            }
        }
    }

    /// The pre-activations of all the nets whose normals lie back to back
    /// in `normals` into `zs` (k x N per net, input-major), in whole blocks
    /// of [`LANES`]: a row's last block runs past its end, reading the
    /// normals that follow and writing values that the next row (or net)
    /// then overwrites, so short rows pay no loop remainders. The last nets,
    /// whose blocks would run past the buffers, go through
    /// [`Self::pre_activations`], whose rows stop at their ends.
    /// Per value the operations are the same.
    #[inline(always)]
    fn pre_activations_short<const D: usize>(&self, normals: &[f64], zs: &mut [f64]) {
        let d = if D > 0 { D } else { self.d };
        let (n, per, kn) = (self.n, self.normals_per_net(), self.k() * self.n);
        let nets = zs.len() / kn;
        // the furthest a net's blocks read (its b0 row's last block) and
        // write (its last row's), from the net's start
        let reach = n.div_ceil(LANES) * LANES;
        let (read, write) = (d * n + reach, (self.k() - 1) * n + reach);
        let padded = (0..nets).take_while(|m| m * per + read <= normals.len() && m * kn + write <= zs.len()).count();
        for m in 0..padded {
            let net = &normals[m * per..];
            let z = &mut zs[m * kn..];
            for a in 0..self.k() {
                let cx = &self.cx[a * d..(a + 1) * d];
                let mean = self.pre_mean.as_ref().map(|p| p[a]);
                for i0 in (0..n).step_by(LANES) {
                    z[a * n + i0..][..LANES].copy_from_slice(&self.pre_block(net, &net[d * n..], cx, mean, i0));
                }
            }
        }
        for m in padded..nets {
            self.pre_activations(&normals[m * per..(m + 1) * per], &mut zs[m * kn..(m + 1) * kn]);
        }
    }

    /// `sb b0_i + sum_j cx_j W0_ji (+ m)` for the units `i0..i0 + LANES`,
    /// from the W0 rows at the start of `w0` and the b0 row at the start of
    /// `b0` (each slice may go on past its row: [`Self::pre_activations_short`]
    /// lets a block run past a row's end into the normals that follow).
    #[inline(always)]
    fn pre_block(&self, w0: &[f64], b0: &[f64], cx: &[f64], m: Option<f64>, i0: usize) -> [f64; LANES] {
        let n = self.n;
        let b: &[f64; LANES] = b0[i0..i0 + LANES].try_into().expect("LANES-sized block");
        let mut h = [0.0; LANES];
        for l in 0..LANES {
            h[l] = self.sb * b[l];
        }
        for (j, c) in cx.iter().enumerate() {
            let w: &[f64; LANES] = w0[j * n + i0..j * n + i0 + LANES].try_into().expect("LANES-sized block");
            for l in 0..LANES {
                h[l] = c.mul_add(w[l], h[l]);
            }
        }
        if let Some(m) = m {
            for v in h.iter_mut() {
                *v += m;
            }
        }
        h
    }

    /// The k x N pre-activations of one net, input-major.
    #[inline(always)]
    fn pre_activations(&self, normals: &[f64], z: &mut [f64]) {
        for (a, za) in z.chunks_exact_mut(self.n).enumerate() {
            self.pre_activation_row(normals, a, za);
        }
    }

    /// The N pre-activations of input `a` into `za`: for d_in up to 3 in
    /// one pass over the row ([`Self::pre_activation_row_fused`]), else a
    /// pass per coordinate; the same operations in the same order.
    #[inline(always)]
    fn pre_activation_row(&self, normals: &[f64], a: usize, za: &mut [f64]) {
        match self.d {
            1 => self.pre_activation_row_fused::<1>(normals, a, za),
            2 => self.pre_activation_row_fused::<2>(normals, a, za),
            3 => self.pre_activation_row_fused::<3>(normals, a, za),
            _ => self.pre_activation_row_passes(normals, a, za),
        }
    }

    /// [`Self::pre_activation_row`] for d_in = `D`, each value loaded,
    /// summed and stored once.
    #[inline(always)]
    fn pre_activation_row_fused<const D: usize>(&self, normals: &[f64], a: usize, za: &mut [f64]) {
        let n = self.n;
        let b0 = &normals[D * n..(D + 1) * n];
        let w: [&[f64]; D] = std::array::from_fn(|j| &normals[j * n..(j + 1) * n]);
        let cx: &[f64; D] = self.cx[a * D..(a + 1) * D].try_into().expect("D coordinates");
        let m = self.pre_mean.as_ref().map(|m| m[a]);
        for (i, (zi, bi)) in za[..n].iter_mut().zip(b0).enumerate() {
            let mut z = self.sb * bi;
            for j in 0..D {
                z = cx[j].mul_add(w[j][i], z);
            }
            if let Some(m) = m {
                z += m;
            }
            *zi = z;
        }
    }

    /// [`Self::pre_activation_row`] a pass per coordinate (any d_in).
    #[inline(always)]
    fn pre_activation_row_passes(&self, normals: &[f64], a: usize, za: &mut [f64]) {
        let (d, n) = (self.d, self.n);
        let (w0, rest) = normals.split_at(n * d);
        let b0 = &rest[..n];
        for (zi, bi) in za.iter_mut().zip(b0) {
            *zi = self.sb * bi;
        }
        for (j, c) in self.cx[a * d..(a + 1) * d].iter().enumerate() {
            for (zi, wi) in za.iter_mut().zip(&w0[j * n..(j + 1) * n]) {
                *zi = c.mul_add(*wi, *zi);
            }
        }
        if let Some(m) = &self.pre_mean {
            za.iter_mut().for_each(|zi| *zi += m[a]);
        }
    }

    /// One net's outputs from its normals and activations `z` (k x N);
    /// `BARRIER` for long rows ([`reduce_lanes`]).
    #[inline(always)]
    fn outputs<const BARRIER: bool>(&self, normals: &[f64], z: &[f64], out: &mut [f64]) {
        let n = self.n;
        let outs = &normals[(self.d + 1) * n..];
        let k = self.scale.len();
        for (o, row) in outs.chunks_exact(n + 1).enumerate() {
            for ((out, za), &scale) in out[o * k..(o + 1) * k].iter_mut().zip(z.chunks_exact(n)).zip(&self.scale) {
                *out = self.output::<BARRIER>(row, scale, za);
            }
        }
    }

    /// One output from its row of normals (`row`: N output weights, then
    /// the bias) and the activations `za` of an input whose scale is `scale`.
    #[inline(always)]
    fn output<const BARRIER: bool>(&self, row: &[f64], scale: f64, za: &[f64]) -> f64 {
        let (w1, b1) = row.split_at(self.n);
        let mut out = self.sb * b1[0] + self.sw_out * scale * dot::<BARRIER>(w1, za);
        if let Some((mw, mb)) = self.out_mean {
            out += mb + mw * scale * za.iter().sum::<f64>();
        }
        out
    }

    /// Draws `nets` networks from the normals of `rng`'s next four words
    /// ([`NormalStream::new`]); returns k D columns of `nets` f32 outputs
    /// (output-major, as [`NetSampler::sample_net`]).
    pub fn sample_part<R: Rng + ?Sized>(&mut self, rng: &mut R, nets: usize) -> Vec<Vec<f32>> {
        self.sample_part_with(Isa::detect(), rng, nets)
    }

    /// [`NetSampler::sample_part`] with the loops' instruction set forced
    /// (the bit-identity tests run every one the CPU has). Panics if the CPU
    /// lacks it ([`Isa::available`]).
    pub fn sample_part_with<R: Rng + ?Sized>(&mut self, isa: Isa, rng: &mut R, nets: usize) -> Vec<Vec<f32>> {
        self.sample_cols(isa, rng, nets)
    }

    /// [`NetSampler::sample_part_with`] before the outputs are rounded to
    /// f32: the arithmetic's own bits, which the bit-identity tests compare
    /// (one ulp of f64 rarely survives the rounding to f32).
    #[doc(hidden)]
    pub fn sample_part_f64_with<R: Rng + ?Sized>(&mut self, isa: Isa, rng: &mut R, nets: usize) -> Vec<Vec<f64>> {
        self.sample_cols(isa, rng, nets)
    }

    /// `nets` nets as `k D` columns of `T` ([`NetSampler::sample_into`]).
    fn sample_cols<R: Rng + ?Sized, T: Stored>(&mut self, isa: Isa, rng: &mut R, nets: usize) -> Vec<Vec<T>> {
        let mut cols: Vec<Vec<T>> = (0..self.outputs_per_net()).map(|_| Vec::with_capacity(nets)).collect();
        self.sample_into(isa, rng, nets, &mut cols);
        cols
    }
}

/// The activation over a row of pre-activations, value by value (the bits
/// of each value do not depend on the block it falls in), in blocks of
/// [`ACT_LANES`] for exp and tanh and [`ERF_LANES`] for erf: enough
/// independent lanes to keep the vector units busy (BENCHMARKS.md). With
/// `isa` AVX-512, erf's blocks of [`ERF_LANES_512`] pick their
/// coefficients from registers ([`fastmath::ErfAvx512`]); with AVX2, its
/// blocks of [`ERF_LANES`] load them in pairs ([`fastmath::ErfAvx2`]); the
/// generic path gathers them from the 1.5 KB table.
#[inline(always)]
pub(crate) fn activate_row(act: Activation, isa: Isa, z: &mut [f64]) {
    match act {
        Activation::Relu => z.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::Gauss if isa == Isa::Avx512 => map_blocks::<ACT_LANES_512>(z, fastmath::Exp),
        Activation::Tanh if isa == Isa::Avx512 => map_blocks::<ACT_LANES_512>(z, fastmath::Tanh),
        Activation::Gauss => map_blocks::<ACT_LANES>(z, fastmath::Exp),
        Activation::Tanh => map_blocks::<ACT_LANES>(z, fastmath::Tanh),
        Activation::Erf => {
            #[cfg(target_arch = "x86_64")]
            if isa == Isa::Avx512 {
                if let Some(e) = fastmath::ErfAvx512::new() {
                    return map_blocks::<ERF_LANES_512>(z, e);
                }
            }
            #[cfg(target_arch = "x86_64")]
            if isa == Isa::Avx2 {
                if let Some(e) = fastmath::ErfAvx2::new() {
                    return map_blocks::<ERF_LANES>(z, e);
                }
            }
            map_blocks::<ERF_LANES>(z, Erf::new())
        }
    }
}

/// The sampler's activation pass over `z` (its pre-activations), compiled
/// for `isa` as in the sampler (for benchmarks: `nnqft-bench` times it
/// alone). Panics if the CPU lacks `isa` ([`Isa::available`]).
///
/// ```
/// use nnqft_core::Activation;
/// use nnqft_core::sampler::{activate, Isa};
/// let mut z = [-1.0, 0.0, 0.5];
/// activate(Activation::Relu, Isa::detect(), &mut z);
/// assert_eq!(z, [0.0, 0.0, 0.5]);
/// ```
pub fn activate(act: Activation, isa: Isa, z: &mut [f64]) {
    assert!(isa.available(), "this CPU lacks {isa:?}");
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX-512F (asserted above).
        Isa::Avx512 => unsafe { activate_avx512(act, z) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX2 and FMA (asserted above).
        Isa::Avx2 => unsafe { activate_avx2(act, z) },
        _ => activate_row(act, Isa::Generic, z),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn activate_avx512(act: Activation, z: &mut [f64]) {
    activate_row(act, Isa::Avx512, z);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn activate_avx2(act: Activation, z: &mut [f64]) {
    activate_row(act, Isa::Avx2, z);
}

/// Appends one net's values to the f32 columns.
#[inline(always)]
fn push_net<T: Stored>(cols: &mut [Vec<T>], out: &[f64]) {
    for (c, v) in cols.iter_mut().zip(out) {
        c.push(T::from_output(*v));
    }
}

/// A column element: f32 as stored ([`stored`]), or f64 as computed.
pub(crate) trait Stored: Copy {
    fn from_output(v: f64) -> Self;
}

impl Stored for f32 {
    #[inline(always)]
    fn from_output(v: f64) -> Self {
        stored(v)
    }
}

impl Stored for f64 {
    #[inline(always)]
    fn from_output(v: f64) -> Self {
        v
    }
}

/// An output as stored: f32, with every NaN the one canonical NaN. A NaN's
/// sign and payload are not part of the arithmetic's contract (Rust leaves
/// them open, and a fused multiply-add in software and in hardware differ
/// there), so this keeps the stored bits identical on every path even for
/// nets that overflow (deep gauss nets of width 1 do).
#[inline(always)]
pub(crate) fn stored(v: f64) -> f32 {
    if v.is_nan() { f32::NAN } else { v as f32 }
}

/// `f` over `L`-wide blocks of `v`, the rest in blocks of [`LANES`] and
/// the last few values in one zero-padded block of [`LANES`] (each lane's
/// bits do not depend on its neighbours). Short rows (the deep sampler's
/// at width 8) thus pay for at most `LANES - 1` padding values.
#[inline(always)]
fn map_blocks<const L: usize>(v: &mut [f64], f: impl Block<L> + Block<LANES>) {
    let mut chunks = v.chunks_exact_mut(L);
    for c in &mut chunks {
        Block::<L>::eval_block(&f, c.try_into().expect("L-sized chunk"));
    }
    let mut chunks = chunks.into_remainder().chunks_exact_mut(LANES);
    for c in &mut chunks {
        Block::<LANES>::eval_block(&f, c.try_into().expect("LANES-sized chunk"));
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let mut block = [0.0; LANES];
        block[..tail.len()].copy_from_slice(tail);
        Block::<LANES>::eval_block(&f, &mut block);
        tail.copy_from_slice(&block[..tail.len()]);
    }
}

/// Inputs whose relu outputs are summed side by side ([`NetSampler::fused_relu_group`]).
const FUSED_GROUP: usize = 3;

/// Nets narrower than this compute their pre-activations in whole blocks
/// ([`NetSampler::pre_activations_short`]).
const SHORT: usize = 2 * LANES;

/// Nets at least this wide go through [`NetSampler::evaluate_row_by_row`].
const ROW_BY_ROW: usize = 256;

/// Rows at least this long take the vectorising barrier of [`reduce_lanes`].
const WIDE: usize = 4 * LANES;

/// `sum_i a_i b_i` in `LANES` fixed partial sums, combined pairwise, then
/// the tail; `BARRIER` for long rows ([`reduce_lanes`]).
#[inline(always)]
fn dot<const BARRIER: bool>(a: &[f64], b: &[f64]) -> f64 {
    let mut s = [0.0; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            s[l] = x[l].mul_add(y[l], s[l]);
        }
    }
    reduce_lanes::<BARRIER>(s) + ra.iter().zip(rb).fold(0.0, |s, (x, y)| x.mul_add(*y, s))
}

/// The `LANES` partial sums combined pairwise (lane l + w into lane l, w = 4, 2, 1).
///
/// With `BARRIER` the partial sums pass through `black_box` first: when
/// LLVM's SLP vectoriser sees this reduction it builds the loop that
/// accumulates them (the fused relu loop, [`dot`]) with 2-lane vectors
/// even on AVX2; behind the barrier it uses 4-lane ones. The operations
/// are the same, so the bits are too. The barrier costs a store and reload,
/// which on AVX2 only long rows ([`WIDE`] units or more) repay: in
/// isolation the relu loop takes 0.84 instead of 1.6 us per net at N =
/// 1000 (AMD). On AVX-512 the fused relu path takes it for short rows too
/// ([`NetSampler::evaluate_fused_relu`]).
#[inline(always)]
fn reduce_lanes<const BARRIER: bool>(s: [f64; LANES]) -> f64 {
    let mut s = if BARRIER { std::hint::black_box(s) } else { s };
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        for l in 0..w {
            s[l] += s[l + w];
        }
    }
    s[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::StreamKey;

    /// The fused relu path (inputs in groups of [`FUSED_GROUP`] on long
    /// rows, one by one on short ones) gives the bits of the unfused path
    /// it stands in for: every input count 1..=7 (whole groups and
    /// remainders), d_in 1 to 4 (the loops specialised for 1, 2, 3 and
    /// the general one), with and without hidden means, rows short and long.
    #[test]
    fn fused_relu_equals_the_unfused_path() {
        let mut checked = 0;
        for k in 1..=7usize {
            for d in 1..=4usize {
                for means in [false, true] {
                    let inputs: Vec<Vec<f64>> = (0..k).map(|a| (0..d).map(|j| 0.3 * a as f64 - 0.7 * j as f64 + 0.1).collect()).collect();
                    let mut arch = ArchSpec::single("relu", Activation::Relu, 1.2, 0.6, inputs);
                    arch.d_in = d;
                    if means {
                        (arch.mu_w, arch.mu_b) = (0.4, -0.3);
                    }
                    for width in [1usize, 7, 10, 33, 100] {
                        let s = NetSampler::new(&arch, width);
                        assert!(s.fused());
                        let mut rng = NormalStream::new(&mut StreamKey { seed: 3, arch: "relu", width, bag: 0, part: 0 }.stream());
                        let mut normals = vec![0.0; s.normals_per_net()];
                        for _ in 0..5 {
                            rng.fill(&mut normals);
                            let (mut fused, mut unfused) = (vec![0.0; k], vec![0.0; k]);
                            s.evaluate_fused_relu(Isa::Generic, &normals, &mut fused);
                            let mut with_barrier = vec![0.0; k];
                            s.evaluate_fused_relu(Isa::Avx512, &normals, &mut with_barrier);
                            assert!(fused.iter().zip(&with_barrier).all(|(a, b)| a.to_bits() == b.to_bits()), "the barrier changed bits");
                            let mut z = vec![0.0; k * width];
                            s.evaluate_unfused(Isa::Generic, &normals, &mut z, &mut unfused, |_| {});
                            for (a, (f, u)) in fused.iter().zip(&unfused).enumerate() {
                                assert_eq!(f.to_bits(), u.to_bits(), "k {k}, d_in {d}, means {means}, N = {width}, input {a}: {f} vs {u}");
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 7 * 4 * 2 * 5 * 5);
    }

    /// A single-layer architecture of `k` inputs in `d` dimensions (spread
    /// over both signs), with hidden means or without.
    fn arch_with(act: Activation, k: usize, d: usize, means: bool) -> ArchSpec {
        let inputs: Vec<Vec<f64>> = (0..k).map(|a| (0..d).map(|j| 0.45 * a as f64 - 0.35 * j as f64 - 0.8).collect()).collect();
        let mut arch = ArchSpec::single(act.name(), act, 1.3, 0.8, inputs);
        arch.d_in = d;
        if means {
            (arch.mu_w, arch.mu_b) = (0.45, -0.25);
        }
        arch
    }

    /// Short rows' pre-activations in whole blocks (reading past a row's
    /// end, overwriting the next row's start) give the bits of the row by
    /// row loop, in every net of a batch, the last ones included: widths 1
    /// to 17 (one block or two, with and without remainders), d_in 1 to 3,
    /// with and without hidden means, batches of 1 to 4 nets.
    #[test]
    fn short_rows_pre_activations_equal_the_row_loop() {
        let mut checked = 0;
        for d in 1..=3usize {
            for means in [false, true] {
                let arch = arch_with(Activation::Tanh, 6, d, means);
                for width in 1..=17usize {
                    let s = NetSampler::new(&arch, width);
                    let (per, kn) = (s.normals_per_net(), s.k() * width);
                    for nets in 1..=4usize {
                        let mut rng = NormalStream::new(&mut StreamKey { seed: 5, arch: "tanh", width, bag: 0, part: nets as u32 }.stream());
                        let mut normals = vec![0.0; nets * per];
                        rng.fill(&mut normals);
                        let mut rows = vec![f64::NAN; nets * kn];
                        for (net, z) in normals.chunks_exact(per).zip(rows.chunks_exact_mut(kn)) {
                            s.pre_activations(net, z);
                        }
                        // the loops for this d_in, and the general ones
                        for general in [false, true] {
                            let mut blocks = vec![f64::NAN; nets * kn];
                            match (general, d) {
                                (false, 1) => s.pre_activations_short::<1>(&normals, &mut blocks),
                                (false, 2) => s.pre_activations_short::<2>(&normals, &mut blocks),
                                (false, 3) => s.pre_activations_short::<3>(&normals, &mut blocks),
                                _ => s.pre_activations_short::<0>(&normals, &mut blocks),
                            }
                            for (i, (r, b)) in rows.iter().zip(&blocks).enumerate() {
                                assert_eq!(r.to_bits(), b.to_bits(), "d_in {d}, means {means}, N = {width}, {nets} nets, value {i}, general {general}: {r} vs {b}");
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 3 * 2 * 17 * 4 * 2);
    }

    /// The one-pass pre-activation rows (d_in 1 to 3) give the bits of a
    /// pass per coordinate, with and without hidden means, at widths
    /// around the vector lengths and wide ones.
    #[test]
    fn fused_pre_activation_rows_equal_a_pass_per_coordinate() {
        let mut checked = 0;
        for d in 1..=3usize {
            for means in [false, true] {
                let arch = arch_with(Activation::Erf, 4, d, means);
                for width in [1usize, 7, 8, 9, 31, 33, 257, 1000] {
                    let s = NetSampler::new(&arch, width);
                    let mut rng = NormalStream::new(&mut StreamKey { seed: 6, arch: "erf", width, bag: 0, part: d as u32 }.stream());
                    let mut normals = vec![0.0; s.normals_per_net()];
                    rng.fill(&mut normals);
                    for a in 0..s.k() {
                        let (mut fused, mut passes) = (vec![f64::NAN; width], vec![f64::NAN; width]);
                        s.pre_activation_row(&normals, a, &mut fused);
                        s.pre_activation_row_passes(&normals, a, &mut passes);
                        for (i, (f, p)) in fused.iter().zip(&passes).enumerate() {
                            assert_eq!(f.to_bits(), p.to_bits(), "d_in {d}, means {means}, N = {width}, input {a}, unit {i}: {f} vs {p}");
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 3 * 2 * 8 * 4);
    }

    /// Wide nets taken row by row give the bits of the batched pass: every
    /// activation, d_in 1 and 2, with and without means, one and two
    /// outputs, widths with and without remainders in the blocks.
    #[test]
    fn row_by_row_equals_the_batched_path() {
        let mut checked = 0;
        for act in Activation::ALL {
            for (d, means) in [(1usize, false), (2, true)] {
                let inputs: Vec<Vec<f64>> = (0..5).map(|a| (0..d).map(|j| 0.4 * a as f64 - 0.9 * j as f64 - 0.8).collect()).collect();
                let mut arch = ArchSpec::single(act.name(), act, 1.1, 0.7, inputs);
                arch.d_in = d;
                if means {
                    (arch.mu_w, arch.mu_b, arch.mu_w_out, arch.mu_b_out, arch.d_out) = (0.3, -0.2, 0.5, 0.1, 2);
                }
                for width in [ROW_BY_ROW, 300, 1001] {
                    let s = NetSampler::new(&arch, width);
                    let mut rng = NormalStream::new(&mut StreamKey { seed: 4, arch: act.name(), width, bag: 0, part: 0 }.stream());
                    let mut normals = vec![0.0; 2 * s.normals_per_net()];
                    rng.fill(&mut normals);
                    let (kd, kn) = (s.outputs_per_net(), s.k() * width);
                    for isa in [Isa::Generic, Isa::detect()] {
                        let (mut rows, mut batched) = (Vec::new(), Vec::new());
                        let mut z = vec![0.0; 2 * kn];
                        let mut out = vec![0.0; kd];
                        s.evaluate_unfused(isa, &normals, &mut z, &mut out, |o| rows.extend_from_slice(o));
                        s.evaluate_batched(isa, &normals, &mut z, &mut out, |o| batched.extend_from_slice(o));
                        assert_eq!(rows.len(), 2 * kd);
                        for (r, b) in rows.iter().zip(&batched) {
                            assert_eq!(r.to_bits(), b.to_bits(), "{act} d_in {d}, means {means}, N = {width}, {isa:?}: {r} vs {b}");
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 4 * 2 * 3 * 2);
    }
}
