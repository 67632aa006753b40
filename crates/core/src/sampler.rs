//! Drawing networks from the ensemble and evaluating them at the inputs.

use crate::{Activation, ArchSpec, Unit};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// Version of the sampling algorithm (draw order, arithmetic). It enters
/// every config hash: a change that alters the samples must bump it, so old
/// data are never mixed with new.
pub const SAMPLER_VERSION: u32 = 1;

/// Draws single-hidden-layer networks of one width (THEORY section 1) and
/// evaluates them at the architecture's inputs.
///
/// Per net, `(d + 2) N + 1` standard normals are drawn in this order: `W0`
/// (row-major, unit by unit), `b0`, `W1`, `b1`; they are then scaled by
/// `sw / sqrt(d)`, `sb`, `sw / sqrt(N)`, `sb`. The output is computed in f64.
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
    unit: Unit,
    d: usize,
    n: usize,
    /// Inputs, k x d row-major.
    xs: Vec<f64>,
    sw_in: f64,
    sw_out: f64,
    sb: f64,
    normals: Vec<f64>,
    acc: Vec<f64>,
}

impl NetSampler {
    /// A sampler for `arch` at hidden width `width` (>= 1).
    pub fn new(arch: &ArchSpec, width: usize) -> Self {
        assert!(width >= 1, "width must be >= 1");
        assert_eq!(arch.hidden_layers, 1, "only single-hidden-layer ensembles are sampled");
        let d = arch.d_in;
        NetSampler {
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

    /// Number of input points k (outputs per net).
    pub fn k(&self) -> usize {
        self.acc.len()
    }

    /// Standard normals drawn per net: `(d + 2) N + 1`.
    pub fn normals_per_net(&self) -> usize {
        self.normals.len()
    }

    /// Draws one net and writes `f(x_1..x_k)` into `out` (length k).
    pub fn sample_net<R: Rng + ?Sized>(&mut self, rng: &mut R, out: &mut [f64]) {
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

    /// `acc[a] = sum_i W1_i sigma(z_i(x_a))` for the normals already drawn.
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

    /// Draws `nets` networks; returns k columns of `nets` f32 outputs.
    pub fn sample_part<R: Rng + ?Sized>(&mut self, rng: &mut R, nets: usize) -> Vec<Vec<f32>> {
        let k = self.k();
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
