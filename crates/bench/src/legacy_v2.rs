//! The sampler as it was at SAMPLER_VERSION 2 (rand_distr's scalar
//! ziggurat on one Xoshiro256++ stream; erf's first interval expanded about
//! its midpoint), kept as the in-process baseline the benchmark reports
//! versions 3 and 4 against. Its erf is kept here ([`Erf`]): the table of
//! 384 degree-5 Taylor polynomials that versions 2 and 3 used (3 only moved
//! the first interval's expansion point to 0), in the portable block form;
//! its exp and tanh are [`nnqft_core::fastmath::exp`] and `tanh`, which
//! still are version 2's (version 4's activations are their fused forms).

#![allow(dead_code)]

use nnqft_core::fastmath;
use std::sync::OnceLock;
use nnqft_core::sampler::Isa;
use nnqft_core::{Activation, ArchSpec};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

pub struct V2Sampler {
    act: Activation,
    erf: Erf,
    scale: Vec<f64>,
    d: usize,
    n: usize,
    cx: Vec<f64>,
    sw_out: f64,
    sb: f64,
    pre_mean: Option<Vec<f64>>,
    out_mean: Option<(f64, f64)>,
    d_out: usize,
    normals: Vec<f64>,
    z: Vec<f64>,
    acc: Vec<f64>,
}

const LANES: usize = 8;

impl V2Sampler {
    pub fn new(arch: &ArchSpec, width: usize) -> Self {
        assert!(width >= 1, "width must be >= 1");
        assert_eq!(arch.hidden_layers, 1, "NetSampler is single-hidden-layer; deep nets use deep::DeepSampler");
        let d = arch.d_in;
        let sw_in = arch.sigma_w / (d as f64).sqrt();
        V2Sampler {
            act: arch.activation,
            erf: Erf::new(),
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

    pub fn k(&self) -> usize {
        self.acc.len() / self.d_out
    }

    pub fn outputs_per_net(&self) -> usize {
        self.acc.len()
    }

    pub fn normals_per_net(&self) -> usize {
        self.normals.len()
    }

    pub fn sample_net<R: Rng + ?Sized>(&mut self, rng: &mut R, out: &mut [f64]) {
        self.draw(rng);
        self.evaluate_generic(out);
    }

    #[inline(always)]
    fn draw<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        for v in self.normals.iter_mut() {
            *v = StandardNormal.sample(rng);
        }
    }

    fn sample_into<R: Rng + ?Sized>(&mut self, isa: Isa, rng: &mut R, nets: usize, cols: &mut [Vec<f32>]) {
        assert!(isa.available(), "{isa:?} is not available on this CPU");
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU supports AVX-512F (asserted just above).
            Isa::Avx512 => unsafe { self.sample_into_avx512(rng, nets, cols) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU supports AVX2 (asserted just above).
            Isa::Avx2 => unsafe { self.sample_into_avx2(rng, nets, cols) },
            _ => self.sample_into_generic(rng, nets, cols),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn sample_into_avx512<R: Rng + ?Sized>(&mut self, rng: &mut R, nets: usize, cols: &mut [Vec<f32>]) {
        self.sample_into_generic(rng, nets, cols);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn sample_into_avx2<R: Rng + ?Sized>(&mut self, rng: &mut R, nets: usize, cols: &mut [Vec<f32>]) {
        self.sample_into_generic(rng, nets, cols);
    }

    #[inline(always)]
    fn sample_into_generic<R: Rng + ?Sized>(&mut self, rng: &mut R, nets: usize, cols: &mut [Vec<f32>]) {
        let mut out = vec![0.0; self.outputs_per_net()];
        for _ in 0..nets {
            self.draw(rng);
            self.evaluate_generic(&mut out);
            for (c, v) in cols.iter_mut().zip(&out) {
                c.push(*v as f32);
            }
        }
    }

    #[inline(always)]
    fn evaluate_generic(&mut self, out: &mut [f64]) {
        let (d, n) = (self.d, self.n);
        let (w0, rest) = self.normals.split_at(n * d);
        let (b0, outs) = rest.split_at(n);
        // all k x N pre-activations, input-major, then one activation pass
        let z = &mut self.z[..];
        for (a, za) in z.chunks_exact_mut(n).enumerate() {
            for (zi, bi) in za.iter_mut().zip(b0) {
                *zi = self.sb * bi;
            }
            for (j, c) in self.cx[a * d..(a + 1) * d].iter().enumerate() {
                for (zi, wi) in za.iter_mut().zip(&w0[j * n..(j + 1) * n]) {
                    *zi += c * wi;
                }
            }
            if let Some(m) = &self.pre_mean {
                za.iter_mut().for_each(|zi| *zi += m[a]);
            }
        }
        match self.act {
            Activation::Relu => z.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Gauss => map_blocks(z, fastmath::exp),
            Activation::Tanh => map_blocks(z, fastmath::tanh),
            Activation::Erf => {
                let e = self.erf;
                let mut chunks = z.chunks_exact_mut(LANES);
                for c in &mut chunks {
                    let block: &mut [f64; LANES] = c.try_into().expect("LANES-sized chunk");
                    e.eval_block(block);
                }
                chunks.into_remainder().iter_mut().for_each(|v| *v = e.eval(*v));
            }
        }
        let k = self.scale.len();
        for (o, row) in outs.chunks_exact(n + 1).enumerate() {
            let (w1, b1) = row.split_at(n);
            let b1 = self.sb * b1[0];
            for ((out, za), scale) in out[o * k..(o + 1) * k].iter_mut().zip(z.chunks_exact(n)).zip(&self.scale) {
                *out = b1 + self.sw_out * scale * dot(w1, za);
                if let Some((mw, mb)) = self.out_mean {
                    *out += mb + mw * scale * za.iter().sum::<f64>();
                }
            }
        }
    }

    pub fn sample_part<R: Rng + ?Sized>(&mut self, rng: &mut R, nets: usize) -> Vec<Vec<f32>> {
        self.sample_part_with(Isa::detect(), rng, nets)
    }

    pub fn sample_part_with<R: Rng + ?Sized>(&mut self, isa: Isa, rng: &mut R, nets: usize) -> Vec<Vec<f32>> {
        let mut cols: Vec<Vec<f32>> = (0..self.outputs_per_net()).map(|_| Vec::with_capacity(nets)).collect();
        self.sample_into(isa, rng, nets, &mut cols);
        cols
    }
}

#[inline(always)]
fn map_blocks(v: &mut [f64], f: impl Fn(f64) -> f64) {
    let mut chunks = v.chunks_exact_mut(LANES);
    for c in &mut chunks {
        let mut lanes = [0.0; LANES];
        lanes.copy_from_slice(c);
        for x in lanes.iter_mut() {
            *x = f(*x);
        }
        c.copy_from_slice(&lanes);
    }
    for x in chunks.into_remainder() {
        *x = f(*x);
    }
}

#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut s = [0.0; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            s[l] += x[l] * y[l];
        }
    }
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        for l in 0..w {
            s[l] += s[l + w];
        }
    }
    s[0] + ra.iter().zip(rb).map(|(x, y)| x * y).sum::<f64>()
}

/// Intervals of erf's table per unit of `|x|`, its end, Taylor degree + 1.
const ERF_PER_UNIT: f64 = 64.0;
const ERF_END: f64 = 6.0;
const ERF_TERMS: usize = 6;
const ERF_INTERVALS: usize = 384;

/// Version 2's erf: per interval `[i / 64, (i + 1) / 64)` of `|x|`, the
/// Taylor coefficients `erf^(m)(c) / m!` about its midpoint `c`, from
/// Hermite polynomials; `+-1` from 6 on. Within 1.2e-14 of libm.
#[derive(Clone, Copy)]
pub struct Erf {
    table: &'static [f64],
}

impl Erf {
    pub fn new() -> Self {
        static T: OnceLock<Vec<f64>> = OnceLock::new();
        let table = T.get_or_init(|| {
            let mut t = vec![0.0; ERF_INTERVALS * ERF_TERMS];
            for (i, row) in t.chunks_exact_mut(ERF_TERMS).enumerate() {
                let c = (i as f64 + 0.5) / ERF_PER_UNIT;
                row[0] = libm::erf(c);
                let g = 2.0 / std::f64::consts::PI.sqrt() * (-c * c).exp();
                let (mut h0, mut h1) = (1.0, 2.0 * c);
                let mut fact = 1.0;
                for m in 1..ERF_TERMS {
                    fact *= m as f64;
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
            t
        });
        Erf { table }
    }

    /// `erf` of every lane (the term loop outside the lane loop: gathers).
    #[inline(always)]
    pub fn eval_block<const L: usize>(&self, x: &mut [f64; L]) {
        let mut idx = [0usize; L];
        let mut dx = [0.0; L];
        let mut p = [0.0; L];
        for l in 0..L {
            let a = x[l].abs().min(ERF_END);
            let i = ((a * ERF_PER_UNIT) as usize).min(ERF_INTERVALS - 1);
            idx[l] = i * ERF_TERMS;
            dx[l] = a - (i as f64 + 0.5) / ERF_PER_UNIT;
        }
        let t = self.table;
        assert!(t.len() == ERF_INTERVALS * ERF_TERMS);
        for l in 0..L {
            // SAFETY: idx[l] <= (ERF_INTERVALS - 1) ERF_TERMS, so + ERF_TERMS - 1 is in bounds (asserted length).
            p[l] = unsafe { *t.get_unchecked(idx[l] + ERF_TERMS - 1) };
        }
        for j in (0..ERF_TERMS - 1).rev() {
            for l in 0..L {
                // SAFETY: as above, j < ERF_TERMS.
                p[l] = p[l] * dx[l] + unsafe { *t.get_unchecked(idx[l] + j) };
            }
        }
        for l in 0..L {
            let y = if x[l].abs() < ERF_END { p[l] } else { 1.0 };
            x[l] = y.copysign(x[l]);
        }
    }

    #[inline(always)]
    pub fn eval(&self, x: f64) -> f64 {
        let mut b = [x];
        self.eval_block(&mut b);
        b[0]
    }
}
