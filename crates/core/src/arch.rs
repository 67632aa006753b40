//! Network architectures (docs/physics.md §1) and one hidden unit's function.

use crate::Activation;
use serde::{Deserialize, Serialize};

/// One network family of a pipeline: activation, input dimension, the
/// variances and the input points at which the networks are evaluated.
///
/// The width is not part of the spec: a pipeline scans it.
/// `hidden_layers` is the depth `L` (docs/physics.md §8); the single-hidden-layer
/// ensemble of section 1 is `hidden_layers = 1`, with `C_W = sigma_w^2` and
/// `C_b = sigma_b^2`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchSpec {
    /// Used in paths (`arch=NAME`) and tables.
    pub name: String,
    pub activation: Activation,
    pub d_in: usize,
    pub sigma_w: f64,
    pub sigma_b: f64,
    #[serde(default = "one")]
    pub hidden_layers: usize,
    /// Mean of the hidden layers' weights times their fan-in: a weight of a
    /// layer with fan-in n is N(mu_w / n, sigma_w^2 / n) (docs/physics.md §12).
    /// Default 0; not serialised when 0, so config hashes are unchanged.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mu_w: f64,
    /// Mean of the hidden layers' biases (default 0, not serialised when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mu_b: f64,
    /// `mu_w` of the output layer (default 0, not serialised when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mu_w_out: f64,
    /// `mu_b` of the output layer (default 0, not serialised when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mu_b_out: f64,
    /// Number of outputs D: independent output rows on the same hidden
    /// layer (default 1, not serialised when 1). Sample columns are `f{j}`
    /// for D = 1 and `f{j}_o{i}` (input j, output i) otherwise.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub d_out: usize,
    /// Deep nets: the width of hidden layer l is `max(1, round(r_l N))` for
    /// the scanned width N (default: every layer N). Not serialised when
    /// absent, so config hashes without it are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_width_ratios: Option<Vec<f64>>,
    /// Widths to sample for this family only (default: `sample.widths`).
    /// Not serialised when absent, so config hashes of pipelines without it
    /// are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widths: Option<Vec<usize>>,
    /// The k input points x_1..x_k, each of length `d_in`.
    pub inputs: Vec<Vec<f64>>,
}

fn one() -> usize {
    1
}

fn is_one(v: &usize) -> bool {
    *v == 1
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

impl ArchSpec {
    /// Number of input points k.
    pub fn k(&self) -> usize {
        self.inputs.len()
    }

    /// `S(x, y) = sb^2 + sw^2 x.y / d`: the covariance of the pre-activations
    /// `z(x)`, `z(y)` of one hidden unit.
    ///
    /// ```
    /// # use nnqft_core::{ArchSpec, Activation};
    /// let a = ArchSpec::single("t", Activation::Erf, 1.0, 1.0, vec![vec![-1.0], vec![1.0]]);
    /// assert_eq!(a.s(&[-1.0], &[1.0]), 0.0);
    /// ```
    pub fn s(&self, x: &[f64], y: &[f64]) -> f64 {
        let dot: f64 = x.iter().zip(y).map(|(a, b)| a * b).sum();
        self.sigma_b * self.sigma_b + self.sigma_w * self.sigma_w * dot / self.d_in as f64
    }

    /// A one-hidden-layer architecture with `d_in` taken from the inputs.
    pub fn single(
        name: &str,
        activation: Activation,
        sigma_w: f64,
        sigma_b: f64,
        inputs: Vec<Vec<f64>>,
    ) -> Self {
        let d_in = inputs.first().map_or(1, Vec::len);
        ArchSpec {
            name: name.to_string(),
            activation,
            d_in,
            sigma_w,
            sigma_b,
            hidden_layers: 1,
            mu_w: 0.0,
            mu_b: 0.0,
            mu_w_out: 0.0,
            mu_b_out: 0.0,
            d_out: 1,
            layer_width_ratios: None,
            widths: None,
            inputs,
        }
    }

    /// Whether any layer's weights or biases have a non-zero mean.
    pub fn has_means(&self) -> bool {
        self.mu_w != 0.0 || self.mu_b != 0.0 || self.mu_w_out != 0.0 || self.mu_b_out != 0.0
    }

    /// Whether the hidden layers' parameters have a non-zero mean.
    pub fn has_hidden_means(&self) -> bool {
        self.mu_w != 0.0 || self.mu_b != 0.0
    }

    /// `m(x) = mu_b + mu_w sum_j x_j / d`: the mean of a first-layer
    /// pre-activation at input `x` (its covariance is [`ArchSpec::s`]).
    ///
    /// ```
    /// # use nnqft_core::{ArchSpec, Activation};
    /// let mut a = ArchSpec::single("t", Activation::Relu, 1.0, 0.0, vec![vec![1.0, 3.0]]);
    /// assert_eq!(a.pre_mean(&[1.0, 3.0]), 0.0);
    /// a.mu_w = 0.5;
    /// a.mu_b = 0.25;
    /// assert_eq!(a.pre_mean(&[1.0, 3.0]), 0.25 + 0.5 * 4.0 / 2.0);
    /// ```
    pub fn pre_mean(&self, x: &[f64]) -> f64 {
        self.mu_b + self.mu_w * x.iter().sum::<f64>() / self.d_in as f64
    }

    /// `(C_W, C_b) = (sigma_w^2, sigma_b^2)`, the deep-net variances (docs/physics.md §8).
    pub fn variances(&self) -> (f64, f64) {
        (self.sigma_w * self.sigma_w, self.sigma_b * self.sigma_b)
    }

    /// The widths of the hidden layers 1..=L at scanned width `n`.
    ///
    /// ```
    /// # use nnqft_core::{ArchSpec, Activation};
    /// let mut a = ArchSpec::single("t", Activation::Relu, 1.0, 0.0, vec![vec![1.0]]);
    /// a.hidden_layers = 3;
    /// assert_eq!(a.layer_widths(32), [32, 32, 32]);
    /// a.layer_width_ratios = Some(vec![1.0, 2.0, 0.5]);
    /// assert_eq!(a.layer_widths(32), [32, 64, 16]);
    /// ```
    pub fn layer_widths(&self, n: usize) -> Vec<usize> {
        match &self.layer_width_ratios {
            Some(r) => r.iter().map(|x| ((x * n as f64).round() as usize).max(1)).collect(),
            None => vec![n; self.hidden_layers],
        }
    }

    /// The function of one hidden unit at each input point.
    pub fn unit(&self) -> Unit {
        let scale = self
            .inputs
            .iter()
            .map(|x| match self.activation {
                Activation::Gauss => (-self.s(x, x)).exp(),
                _ => 1.0,
            })
            .collect();
        Unit {
            activation: self.activation,
            scale,
        }
    }
}

/// One hidden unit evaluated at the pipeline's inputs: `h_a(z) = sigma(z)`,
/// times the Gauss-net normalisation `exp(-S(x_a, x_a))` for gauss.
#[derive(Clone, Debug)]
pub struct Unit {
    pub activation: Activation,
    /// Per-input factor applied after the activation (1 except for gauss).
    pub scale: Vec<f64>,
}

impl Unit {
    /// `h(x_a)` given the pre-activation `z = w.x_a + b`.
    #[inline(always)]
    pub fn h(&self, a: usize, z: f64) -> f64 {
        self.activation.raw(z) * self.scale[a]
    }
}
