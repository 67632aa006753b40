//! Activation functions of the hidden units (docs/physics.md §1).

use serde::{Deserialize, Serialize};

/// The non-linearity of a hidden unit.
///
/// `Gauss` is the "Gauss-net": `exp(z)` divided by an input-dependent
/// normalisation `exp(S(x, x))` with `S(x, x) = sb^2 + sw^2 |x|^2 / d`. The
/// normalisation is not a function of `z`, so it is applied by the
/// [`crate::Unit`] that knows the input; [`Activation::raw`] returns `exp(z)`.
///
/// ```
/// use nnqft_core::Activation;
/// assert_eq!(Activation::Relu.raw(-1.0), 0.0);
/// assert!((Activation::Erf.raw(1.0) - 0.8427007929497149).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Erf,
    Relu,
    Gauss,
    Tanh,
}

impl Activation {
    /// All activations, in a fixed order.
    pub const ALL: [Activation; 4] = [Self::Erf, Self::Relu, Self::Gauss, Self::Tanh];

    /// The name used in pipeline files and output tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Erf => "erf",
            Self::Relu => "relu",
            Self::Gauss => "gauss",
            Self::Tanh => "tanh",
        }
    }

    /// sigma(z) before any input-dependent normalisation (only gauss has one).
    #[inline(always)]
    pub fn raw(self, z: f64) -> f64 {
        match self {
            Self::Erf => libm::erf(z),
            Self::Relu => z.max(0.0),
            Self::Gauss => z.exp(),
            Self::Tanh => z.tanh(),
        }
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
