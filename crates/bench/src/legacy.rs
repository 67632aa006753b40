//! The sampler as it was at SAMPLER_VERSION 1 (unit-major W0, libm
//! activations, one accumulator per input), kept here as the in-process
//! baseline the benchmark reports speed-ups against.

use nnqft_core::{Activation, ArchSpec, Unit};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

pub struct LegacySampler {
    unit: Unit,
    d: usize,
    n: usize,
    xs: Vec<f64>,
    sw_in: f64,
    sw_out: f64,
    sb: f64,
    normals: Vec<f64>,
    acc: Vec<f64>,
}

impl LegacySampler {
    pub fn new(arch: &ArchSpec, width: usize) -> Self {
        let d = arch.d_in;
        LegacySampler {
            unit: arch.unit(),
            d,
            n: width,
            xs: arch.inputs.iter().flatten().copied().collect(),
            sw_in: arch.sigma_w / (d as f64).sqrt(),
            sw_out: arch.sigma_w / (width as f64).sqrt(),
            sb: arch.sigma_b,
            normals: vec![0.0; (d + 2) * width + 1],
            acc: vec![0.0; arch.k()],
        }
    }

    fn sample_net<R: Rng + ?Sized>(&mut self, rng: &mut R, out: &mut [f64]) {
        for v in self.normals.iter_mut() {
            *v = StandardNormal.sample(rng);
        }
        match self.unit.activation {
            Activation::Erf => self.accumulate(libm::erf),
            Activation::Relu => self.accumulate(|z| z.max(0.0)),
            Activation::Gauss => self.accumulate(f64::exp),
            Activation::Tanh => self.accumulate(f64::tanh),
        }
        let b1 = self.sb * self.normals[self.normals.len() - 1];
        for ((o, acc), scale) in out.iter_mut().zip(&self.acc).zip(&self.unit.scale) {
            *o = b1 + scale * acc;
        }
    }

    #[inline(always)]
    fn accumulate(&mut self, sigma: impl Fn(f64) -> f64) {
        let (d, n) = (self.d, self.n);
        let (w0, rest) = self.normals.split_at(n * d);
        let (b0, rest) = rest.split_at(n);
        let w1 = &rest[..n];
        self.acc.fill(0.0);
        for i in 0..n {
            let wi = &w0[i * d..(i + 1) * d];
            let bi = self.sb * b0[i];
            let vi = self.sw_out * w1[i];
            for (acc, x) in self.acc.iter_mut().zip(self.xs.chunks_exact(d)) {
                let dot: f64 = wi.iter().zip(x).map(|(w, x)| w * x).sum();
                *acc += vi * sigma(self.sw_in * dot + bi);
            }
        }
    }

    pub fn sample_part<R: Rng + ?Sized>(&mut self, rng: &mut R, nets: usize) -> Vec<Vec<f32>> {
        let k = self.acc.len();
        let mut cols: Vec<Vec<f32>> = (0..k).map(|_| Vec::with_capacity(nets)).collect();
        let mut out = vec![0.0; k];
        for _ in 0..nets {
            self.sample_net(rng, &mut out);
            for (c, v) in cols.iter_mut().zip(&out) {
                c.push(*v as f32);
            }
        }
        cols
    }
}
