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
            layer_width_ratios: None,
            widths: None,
            inputs,
        }
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
