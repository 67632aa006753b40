//! Deep networks (docs/physics.md §8, seed 002): the layer-by-layer flow of
//! the kernel and of the 4-point vertex, and a sampler for deep ensembles.
//!
//! Conventions: `L` hidden layers of equal width `n`, then one output unit;
//! layer `l` weights `N(0, C_W / n_{l-1})` (`n_0 = d`), biases `N(0, C_b)`,
//! with `C_W = sigma_w^2`, `C_b = sigma_b^2` of the [`ArchSpec`]. Layer
//! `l = 1..L` is hidden, `l = L + 1` is the output `f`.

use crate::normal::NormalStream;
use crate::sampler::Isa;
use crate::quad::NormalRule;
use crate::{Activation, ArchSpec};
use rand::Rng;

/// Version of the deep sampling algorithm; enters the config hash of deep
/// archs (`hidden_layers > 1`) only.
/// 1: libm activations; 2: the activations of [`crate::fastmath`]; 3: the
/// normals of [`crate::normal`], erf(0) = 0 exactly (with SAMPLER_VERSION 3);
/// 4: the fused activations of SAMPLER_VERSION 4, and NaN outputs (deep
/// nets that overflow) stored as the one canonical NaN; 5: the 2048-layer
/// normals of SAMPLER_VERSION 5.
pub const DEEP_SAMPLER_VERSION: u32 = 5;

/// The layer recursion at one layer (single input, leading order in 1/n).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerPoint {
    /// Layer index, 1-based (`L + 1` is the output).
    pub layer: usize,
    /// `K^(l)`, the infinite-width kernel.
    pub k: f64,
    /// `chi_par` evaluated at `K^(l)` (drives `V^(l+1)`).
    pub chi_par: f64,
    /// `V^(l)`: the connected 4-point function is `V / n` at leading order.
    pub v: f64,
}

impl LayerPoint {
    /// Excess kurtosis of `z^(l)` at width `n`, leading order: `3 V / (n K^2)`.
    pub fn kurtosis(&self, n: usize) -> f64 {
        3.0 * self.v / (n as f64 * self.k * self.k)
    }
}

/// A rule for `E[g(z)]`, `z ~ N(0, 1)`: composite Gauss-Legendre on 40 panels
/// of `[-10, 10]` with a panel edge at 0, so the relu kink costs nothing
/// (piecewise polynomials are integrated exactly) and tanh/erf converge to
/// rounding.
fn rule() -> NormalRule {
    NormalRule::panels(10.0, 40, 16)
}

/// `K^(l)`, `chi_par`, `V^(l)` for `l = 1..=layers + 1` (docs/physics.md §8):
///
/// ```text
/// K^(l+1) = C_b + C_W <sigma^2>_K,   V^(l+1) = C_W^2 [<sigma^4> - <sigma^2>^2]_K + chi_par^2 V^(l)
/// chi_par = C_W / (2 K^2) <sigma^2 (z^2 - K)>_K,   V^(1) = 0
/// ```
///
/// with `K^(1) = C_b + C_W |x|^2 / d` (pass it as `k1`). Gaussian expectations
/// are computed by quadrature, so any activation works.
///
/// ```
/// use nnqft_core::{Activation, deep::recursion};
/// // relu at criticality: K is conserved, V grows by 5 K^2 per layer.
/// let r = recursion(Activation::Relu, 2.0, 0.0, 1.0, 3);
/// assert!((r[3].k - 1.0).abs() < 1e-12);
/// assert!((r[1].kurtosis(32) - 15.0 / 32.0).abs() < 1e-12);
/// ```
pub fn recursion(act: Activation, c_w: f64, c_b: f64, k1: f64, layers: usize) -> Vec<LayerPoint> {
    let q = rule();
    let sigma = |z: f64| act.raw(z);
    let mut out = Vec::with_capacity(layers + 1);
    let (mut k, mut v) = (k1, 0.0);
    for l in 1..=layers + 1 {
        let s = k.max(0.0).sqrt();
        let (mut m2, mut m4, mut mc) = (0.0, 0.0, 0.0);
        for (&u, &w) in q.nodes.iter().zip(&q.weights) {
            let z = s * u;
            let h2 = sigma(z).powi(2);
            m2 += w * h2;
            m4 += w * h2 * h2;
            mc += w * h2 * (z * z - k);
        }
        let chi_par = if k > 0.0 { c_w / (2.0 * k * k) * mc } else { f64::NAN };
        out.push(LayerPoint { layer: l, k, chi_par, v });
        let next_k = c_b + c_w * m2;
        v = c_w * c_w * (m4 - m2 * m2) + chi_par * chi_par * v;
        k = next_k;
    }
    out
}

/// The exact excess kurtosis of a relu net's pre-activation at layer `l`,
/// width `n`, `C_b = 0` (any `C_W`): `3 [(1 + 5/n)^(l-1) - 1]`.
///
/// Derivation: given layer `l`, `z^(l+1)` is normal with variance
/// `G = C_W |h|^2 / n`, and `E|h|^4 = n (n + 5) G_l^2 / 4` for iid relu
/// units, so `E z^4 / (E z^2)^2` grows by exactly `1 + 5/n` per layer.
///
/// ```
/// assert_eq!(nnqft_core::deep::relu_exact_kurtosis(32, 2), 0.46875);
/// ```
pub fn relu_exact_kurtosis(n: usize, l: usize) -> f64 {
    relu_exact_kurtosis_widths(&vec![n; l - 1], l)
}

/// The exact relu kurtosis with hidden widths `n_1..n_L` (`widths`):
/// `3 [prod_{m < l} (1 + 5 / n_m) - 1]` at layer `l`.
pub fn relu_exact_kurtosis_widths(widths: &[usize], l: usize) -> f64 {
    3.0 * (widths[..l - 1].iter().map(|&n| 1.0 + 5.0 / n as f64).product::<f64>() - 1.0)
}

/// What theory says about one layer of a deep arch at one input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerTheory {
    pub layer: usize,
    /// The infinite-width kernel `K^(l)`.
    pub k: f64,
    /// `K^(l)` with its first finite-width correction: `K + k1` with
    /// `k1^(l+1) = chi_par k1^(l) + (C_W / 2) F''(K^(l)) Var G^(l-1)`
    /// (docs/physics.md §11); exact to `O(1/n^2)`.
    pub k_nlo: f64,
    /// Leading-order excess kurtosis `3 v^(l) / K^2`, with the per-layer
    /// vertex `v^(l+1) = C_W^2 [<s^4> - <s^2>^2] / n_l + chi_par^2 v^(l)`
    /// (`= 3 V / (n K^2)` for equal widths).
    pub kurtosis: f64,
    /// Leading-order (`1/n^2`) `c6 = kappa_6 / K^3` from the third-cumulant recursion.
    pub c6: f64,
    /// Leading-order (`1/n^3`) `c8 = kappa_8 / K^4` from the fourth-cumulant recursion.
    pub c8: f64,
    /// The exact finite-width kurtosis where known (relu, `C_b = 0`), else NaN.
    pub exact: f64,
}

/// `d^j/dK^j <sigma^(2m)>_K` for `m = 1..=4`, `j = 0..=3`, by Gaussian
/// integration by parts: `E[sigma(sqrt(K) u)^(2m) He_2j(u)] / (2K)^j`.
fn moment_derivatives(act: Activation, k: f64, q: &NormalRule) -> [[f64; 4]; 4] {
    let mut d = [[0.0; 4]; 4];
    let s = k.max(0.0).sqrt();
    for (&u, &w) in q.nodes.iter().zip(&q.weights) {
        let u2 = u * u;
        let he = [1.0, u2 - 1.0, u2 * u2 - 6.0 * u2 + 3.0, u2 * u2 * u2 - 15.0 * u2 * u2 + 45.0 * u2 - 15.0];
        let h2 = act.raw(s * u).powi(2);
        let mut p = 1.0;
        for row in d.iter_mut() {
            p *= h2;
            for (j, e) in row.iter_mut().enumerate() {
                *e += w * p * he[j];
            }
        }
    }
    for row in d.iter_mut() {
        for (j, e) in row.iter_mut().enumerate() {
            *e /= (2.0 * k).powi(j as i32);
        }
    }
    d
}

/// The leading-order cumulants of `G^(l-1)` (the conditional variance of
/// layer `l`'s pre-activation) and their step to the next layer.
#[derive(Clone, Copy, Debug, Default)]
struct LoCumulants {
    /// `E G - K` at order `1/n`.
    k1: f64,
    /// `Var G` at `1/n`, `kappa_3` at `1/n^2`, `kappa_4` at `1/n^3`.
    v: f64,
    k3: f64,
    k4: f64,
}

impl LoCumulants {
    /// One step through a layer of width `n` at kernel `k`, by the law of total
    /// cumulance with `G' = A(G) + noise`, `A = C_b + C_W F`, and the noise's
    /// conditional cumulants `s/n, t/n^2, q/n^3` (docs/physics.md §11).
    fn step(&self, d: &[[f64; 4]; 4], c_w: f64, n: f64) -> Self {
        let [e1, e2, e3, e4] = *d;
        let chi = c_w * e1[1];
        let a2 = c_w * e1[2] / 2.0;
        let a3 = c_w * e1[3] / 6.0;
        let cw2 = c_w * c_w;
        // s = C_W^2 (E2 - E1^2), t = C_W^3 (E3 - 3 E2 E1 + 2 E1^3), q = C_W^4 kappa_4(sigma^2)
        let s = cw2 * (e2[0] - e1[0] * e1[0]);
        let s1 = cw2 * (e2[1] - 2.0 * e1[0] * e1[1]);
        let s2 = cw2 * (e2[2] - 2.0 * e1[1] * e1[1] - 2.0 * e1[0] * e1[2]);
        let t = cw2 * c_w * (e3[0] - 3.0 * e2[0] * e1[0] + 2.0 * e1[0].powi(3));
        let t1 = cw2 * c_w * (e3[1] - 3.0 * e2[1] * e1[0] - 3.0 * e2[0] * e1[1] + 6.0 * e1[0] * e1[0] * e1[1]);
        let q = cw2 * cw2 * (e4[0] - 4.0 * e3[0] * e1[0] - 3.0 * e2[0] * e2[0] + 12.0 * e2[0] * e1[0] * e1[0] - 6.0 * e1[0].powi(4));
        let LoCumulants { k1, v, k3, k4 } = *self;
        LoCumulants {
            k1: chi * k1 + a2 * v,
            v: chi * chi * v + s / n,
            k3: chi.powi(3) * k3 + 6.0 * chi * chi * a2 * v * v + 3.0 * chi * s1 * v / n + t / (n * n),
            k4: chi.powi(4) * k4
                + 24.0 * chi.powi(3) * a2 * v * k3
                + 48.0 * chi * chi * a2 * a2 * v.powi(3)
                + 24.0 * chi.powi(3) * a3 * v.powi(3)
                + 6.0 / n * (chi * chi * s1 * k3 + 4.0 * chi * a2 * s1 * v * v + chi * chi * s2 * v * v)
                + 4.0 * chi * t1 * v / (n * n)
                + 3.0 * s1 * s1 * v / (n * n)
                + q / n.powi(3),
        }
    }
}

/// [`LayerTheory`] for layers `1..=L + 1` of `arch` at input `x` and scanned width `n`
/// (hidden widths from [`ArchSpec::layer_widths`]).
///
/// ```
/// use nnqft_core::{ArchSpec, Activation, deep::layer_theory};
/// let mut a = ArchSpec::single("r", Activation::Relu, 2f64.sqrt(), 0.0, vec![vec![1.0]]);
/// a.hidden_layers = 2;
/// a.layer_width_ratios = Some(vec![1.0, 0.5]);
/// let t = layer_theory(&a, &[1.0], 32);
/// assert!((t[2].exact - 3.0 * ((1.0 + 5.0 / 32.0) * (1.0 + 5.0 / 16.0) - 1.0)).abs() < 1e-12);
/// assert!((t[2].kurtosis - (15.0 / 32.0 + 15.0 / 16.0)).abs() < 1e-12);
/// // c6 at leading order: 660 / n^2 one layer after the Gaussian one
/// assert!((t[1].c6 - 660.0 / 32f64.powi(2)).abs() < 1e-12);
/// ```
pub fn layer_theory(arch: &ArchSpec, x: &[f64], n: usize) -> Vec<LayerTheory> {
    let (c_w, c_b) = arch.variances();
    let widths = arch.layer_widths(n);
    let rec = recursion(arch.activation, c_w, c_b, k1(arch, x), arch.hidden_layers);
    let relu_exact = arch.activation == Activation::Relu && c_b == 0.0;
    let q = rule();
    let mut cum = LoCumulants::default();
    rec.iter()
        .enumerate()
        .map(|(i, p)| {
            let l = i + 1;
            if l > 1 {
                let prev = &rec[i - 1];
                cum = cum.step(&moment_derivatives(arch.activation, prev.k, &q), c_w, widths[l - 2] as f64);
            }
            LayerTheory {
                layer: l,
                k: p.k,
                k_nlo: p.k + cum.k1,
                kurtosis: 3.0 * cum.v / (p.k * p.k),
                c6: 15.0 * cum.k3 / p.k.powi(3),
                c8: 105.0 * cum.k4 / p.k.powi(4),
                exact: if relu_exact { relu_exact_kurtosis_widths(&widths, l) } else { f64::NAN },
            }
        })
        .collect()
}

/// `K^(1)` of one input: `C_b + C_W |x|^2 / d`.
pub fn k1(arch: &ArchSpec, x: &[f64]) -> f64 {
    arch.s(x, x)
}

/// Lower Cholesky factor of a positive semi-definite `k x k` matrix
/// (row-major), written into `c`. Pivots below `1e-12` of the diagonal entry
/// (collinear inputs, e.g. relu with `C_b = 0` at `x` and `2 x`) give a zero
/// column, so the factor stays exact for rank-deficient Gram matrices.
pub(crate) fn cholesky_psd(g: &[f64], k: usize, c: &mut [f64]) {
    c.fill(0.0);
    for j in 0..k {
        let mut d = g[j * k + j];
        for m in 0..j {
            d -= c[j * k + m] * c[j * k + m];
        }
        if d <= 1e-12 * g[j * k + j].abs() || d <= 0.0 {
            continue;
        }
        let djj = d.sqrt();
        c[j * k + j] = djj;
        for i in j + 1..k {
            let mut s = g[i * k + j];
            for m in 0..j {
                s -= c[i * k + m] * c[j * k + m];
            }
            c[i * k + j] = s / djj;
        }
    }
}

/// Draws deep networks (`hidden_layers = L`, widths `n_1..n_L`) and records, for
/// every input, the pre-activation of unit 0 at every layer `1..=L + 1`.
///
/// Rather than drawing the `n x n` weight matrices, each layer is drawn from
/// its exact conditional law: given the previous layer's activations
/// `h(x_a)`, the rows `i` of `z^(l)_i(x_a) = sum_j W_ij h_j(x_a) + b_i` are
/// independent, each a centred normal vector over the inputs with
/// covariance `G_ab = C_b + C_W / n_{l-1} h(x_a).h(x_b)`. So `z_i = C xi_i`
/// with `C` the Cholesky factor of `G` and `xi_i` standard normal: the same
/// joint distribution of every pre-activation of every layer at every
/// input as the explicit-weight network, for `(n_1 + .. + n_L + 1) k` normals
/// per net instead of `~L n^2` ([`NormalStream`], drawn layer by layer, unit by unit, input by input).
/// Activations are those of [`crate::fastmath`] (within 1.0e-15 of libm).
///
/// ```
/// use nnqft_core::{ArchSpec, Activation, deep::DeepSampler, rng::StreamKey};
/// let mut a = ArchSpec::single("deep", Activation::Relu, 2f64.sqrt(), 0.0, vec![vec![1.0]]);
/// a.hidden_layers = 3;
/// let mut s = DeepSampler::new(&a, 16);
/// let mut rng = StreamKey { seed: 1, arch: "deep", width: 16, bag: 0, part: 0 }.stream();
/// let cols = s.sample_part(&mut rng, 10);
/// assert_eq!(cols.len(), 4); // f0, then layers 1..3 of input 0
/// ```
pub struct DeepSampler {
    act: Activation,
    k: usize,
    /// Hidden widths n_1..n_L.
    widths: Vec<usize>,
    /// Stride of `h` (the largest hidden width).
    stride: usize,
    layers: usize,
    c_w: f64,
    c_b: f64,
    /// Cholesky factor of layer 1's covariance (fixed by the inputs).
    chol1: Vec<f64>,
    /// Layer 1's pre-activation means `m(x_a)` (fixed by the inputs).
    mean1: Vec<f64>,
    /// `(mu_w, mu_b)` of the hidden layers and of the output layer.
    hidden_means: (f64, f64),
    out_means: (f64, f64),
    d_out: usize,
    /// The current layer's pre-activation means per input.
    mean: Vec<f64>,
    gram: Vec<f64>,
    chol: Vec<f64>,
    /// Activations of the current layer, `h[a * n + i]`.
    h: Vec<f64>,
    /// The normals of one layer: k per unit.
    xi: Vec<f64>,
    /// The same, input-major: `xt[m * units + i] = xi[i * k + m]`.
    xt: Vec<f64>,
    /// One input's outputs over the output units (hidden layers go into `h`).
    z: Vec<f64>,
}

impl DeepSampler {
    /// A sampler for `arch` (any `hidden_layers >= 1`) at width `n >= 1`
    /// (hidden widths [`ArchSpec::layer_widths`]`(n)`).
    pub fn new(arch: &ArchSpec, n: usize) -> Self {
        assert!(n >= 1, "width must be >= 1");
        let k = arch.k();
        let widths = arch.layer_widths(n);
        let stride = widths.iter().copied().max().unwrap_or(1);
        let mut gram = vec![0.0; k * k];
        for a in 0..k {
            for b in 0..k {
                gram[a * k + b] = arch.s(&arch.inputs[a], &arch.inputs[b]);
            }
        }
        let mut chol1 = vec![0.0; k * k];
        cholesky_psd(&gram, k, &mut chol1);
        let (c_w, c_b) = arch.variances();
        DeepSampler {
            act: arch.activation,
            k,
            widths,
            stride,
            layers: arch.hidden_layers,
            c_w,
            c_b,
            chol1,
            mean1: arch.inputs.iter().map(|x| arch.pre_mean(x)).collect(),
            hidden_means: (arch.mu_w, arch.mu_b),
            out_means: (arch.mu_w_out, arch.mu_b_out),
            d_out: arch.d_out,
            mean: vec![0.0; k],
            gram,
            chol: vec![0.0; k * k],
            h: vec![0.0; k * stride],
            xi: vec![0.0; k * stride.max(arch.d_out)],
            xt: vec![0.0; k * stride.max(arch.d_out)],
            z: vec![0.0; arch.d_out],
        }
    }

    /// Values recorded per net: `k (L + D)`.
    pub fn outputs_per_net(&self) -> usize {
        self.k * (self.layers + self.d_out)
    }

    /// Standard normals drawn per net: `(n_1 + .. + n_L + D) k`.
    pub fn normals_per_net(&self) -> usize {
        (self.widths.iter().sum::<usize>() + self.d_out) * self.k
    }

    /// Draws one net; `out[l * k + a]` = unit 0's pre-activation at layer
    /// `l + 1` and input `a` for `l < L`, and `out[(L + o) k + a]` = output
    /// `o` at input `a`. With means, each unit's pre-activation gets the
    /// mean `mu_b + (mu_w / n_{l-1}) sum_j h_j(x_a)` of its conditional law
    /// (layer 1: [`ArchSpec::pre_mean`]; the output layer: `mu_w_out`, `mu_b_out`).
    pub fn sample_net(&mut self, normals: &mut NormalStream, out: &mut [f64]) {
        self.sample_net_inline(Isa::Generic, normals, out);
    }

    /// [`Self::sample_net`], inlined into the instruction-set paths of
    /// [`Self::sample_part_with`] (`isa` names the path, for the activation's blocks).
    #[inline(always)]
    fn sample_net_inline(&mut self, isa: Isa, normals: &mut NormalStream, out: &mut [f64]) {
        let (k, stride) = (self.k, self.stride);
        for l in 0..=self.layers {
            let units = if l == self.layers { self.d_out } else { self.widths[l] };
            let means = if l == 0 {
                self.mean.copy_from_slice(&self.mean1);
                self.mean1.iter().any(|&m| m != 0.0)
            } else {
                self.gram_of_h(self.widths[l - 1]);
                cholesky_psd(&self.gram, k, &mut self.chol);
                let (mu_w, mu_b) = if l == self.layers { self.out_means } else { self.hidden_means };
                let n = self.widths[l - 1];
                for a in 0..k {
                    self.mean[a] = mu_b + mu_w * self.h[a * stride..a * stride + n].iter().sum::<f64>() / n as f64;
                }
                mu_w != 0.0 || mu_b != 0.0
            };
            let chol = if l == 0 { &self.chol1 } else { &self.chol };
            // the layer's k normals per unit in one call (the same sequence
            // as a call per unit: fill does not depend on how calls split it)
            let xis = &mut self.xi[..units * k];
            normals.fill(xis);
            // z_a of unit i = sum_{m <= a} chol_am xi_im, added in m order
            // from -0.0 (where `.sum()` starts: the bits of the per-unit
            // sums this replaced), for all the units at once: with xi
            // input-major, each m is one vector pass over the units
            let xt = &mut self.xt[..units * k];
            for (i, xi) in xis.chunks_exact(k).enumerate() {
                for (m, &x) in xi.iter().enumerate() {
                    xt[m * units + i] = x;
                }
            }
            for a in 0..k {
                // hidden layers straight into h: h of the previous layer is
                // no longer needed once its gram (and so chol) is built
                let z = if l == self.layers { &mut self.z[..units] } else { &mut self.h[a * stride..a * stride + units] };
                z.fill(-0.0);
                for (m, &c) in chol[a * k..a * k + a + 1].iter().enumerate() {
                    for (zi, x) in z.iter_mut().zip(&xt[m * units..(m + 1) * units]) {
                        *zi += c * x;
                    }
                }
                if means {
                    z.iter_mut().for_each(|zi| *zi += self.mean[a]);
                }
                if l == self.layers {
                    for (i, &zi) in z.iter().enumerate() {
                        out[(l + i) * k + a] = zi;
                    }
                } else {
                    out[l * k + a] = z[0];
                }
            }
            if l < self.layers {
                // the activation over each input's row of units at once
                // (the same bits as value by value, in vectorising blocks)
                for a in 0..k {
                    crate::sampler::activate_row(self.act, isa, &mut self.h[a * stride..a * stride + units]);
                }
            }
        }
    }

    /// `G_ab = C_b + C_W / n h(x_a).h(x_b)` of the current activations (width `n`).
    fn gram_of_h(&mut self, n: usize) {
        let (k, s) = (self.k, self.stride);
        for a in 0..k {
            for b in 0..=a {
                let dot: f64 = self.h[a * s..a * s + n].iter().zip(&self.h[b * s..b * s + n]).map(|(x, y)| x * y).sum();
                let g = self.c_b + self.c_w * dot / n as f64;
                self.gram[a * k + b] = g;
                self.gram[b * k + a] = g;
            }
        }
    }

    /// Draws `nets` networks from the normals of `rng`'s next four words
    /// ([`NormalStream::new`]); returns the part's columns in file order:
    /// the `k D` output columns (output-major), then for `l = 1..=L` the
    /// `k` columns of layer `l` (`l{l}_f{a}`), as f32.
    pub fn sample_part<R: Rng + ?Sized>(&mut self, rng: &mut R, nets: usize) -> Vec<Vec<f32>> {
        self.sample_part_with(Isa::detect(), rng, nets)
    }

    /// [`DeepSampler::sample_part`] with the loops' instruction set forced:
    /// the same bits on each (the same operations, fused multiply-adds
    /// included, which are correctly rounded everywhere, in the same operation
    /// order; `tests/deep.rs`). Panics if the CPU lacks it ([`Isa::available`]).
    pub fn sample_part_with<R: Rng + ?Sized>(&mut self, isa: Isa, rng: &mut R, nets: usize) -> Vec<Vec<f32>> {
        // AVX-512 CPUs run the AVX2 loops here, and with them the AVX2
        // generator: the AVX-512 one between AVX2 loops measured no faster
        // on whole deep nets (0.88-1.04x at width 100); the same bits either way
        let mut normals = NormalStream::with_isa(rng, if isa == Isa::Avx512 { Isa::Avx2 } else { isa });
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU supports AVX2 (with_isa asserted it; every AVX-512F CPU has AVX2).
            Isa::Avx2 | Isa::Avx512 => unsafe { self.sample_part_avx2(isa, &mut normals, nets) },
            _ => self.sample_part_generic(Isa::Generic, &mut normals, nets),
        }
    }

    #[cfg(target_arch = "x86_64")]
    /// The AVX2 loops; `isa` (AVX2 or AVX-512) picks the activation's
    /// blocks ([`crate::sampler::activate_row`]: erf's AVX-512 block, which
    /// keeps its coefficients in registers, is called from here too).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sample_part_avx2(&mut self, isa: Isa, normals: &mut NormalStream, nets: usize) -> Vec<Vec<f32>> {
        self.sample_part_generic(isa, normals, nets)
    }

    #[inline(always)]
    fn sample_part_generic(&mut self, isa: Isa, normals: &mut NormalStream, nets: usize) -> Vec<Vec<f32>> {
        let (k, per) = (self.k, self.outputs_per_net());
        let mut cols: Vec<Vec<f32>> = (0..per).map(|_| Vec::with_capacity(nets)).collect();
        let mut out = vec![0.0; per];
        let order: Vec<usize> = (self.layers * k..per).chain(0..self.layers * k).collect();
        for _ in 0..nets {
            self.sample_net_inline(isa, normals, &mut out);
            for (c, &src) in cols.iter_mut().zip(&order) {
                c.push(crate::sampler::stored(out[src]));
            }
        }
        cols
    }
}
