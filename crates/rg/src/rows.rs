//! The rows of `flow.parquet` and `slopes.parquet`.


/// One row of `flow.parquet`: a coupling at one scale.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowRow {
    pub arch: String,
    pub d_in: usize,
    pub width: usize,
    /// "cutoff" or "sigma_w".
    pub kind: &'static str,
    pub propagator: &'static str,
    /// L or sigma_W.
    pub scale: f64,
    /// "lambda_bar", "u4", "u6".
    pub coupling: &'static str,
    pub value: f64,
    pub stderr: f64,
    pub exact: f64,
    /// Largest estimated relative quadrature error of the integrals.
    pub quad_rel_err: f64,
    /// Tuples behind this value whose bag errors the moments stage flagged
    /// unreliable (docs/physics.md §10); 0 for the deep layer flow.
    pub n_unreliable: usize,
}

/// One row of `slopes.parquet`.
#[derive(Clone, Debug, PartialEq)]
pub struct SlopeRow {
    /// The arch (cutoff flow) or the family's first arch (sigma_W flow).
    pub arch: String,
    pub d_in: usize,
    pub width: usize,
    pub kind: &'static str,
    pub propagator: &'static str,
    pub coupling: &'static str,
    /// "slope" (d log|coupling| / d log scale) or "amplitude" (N lambda_bar L^(d+4), relu).
    pub quantity: &'static str,
    /// "all" (every valid scale) or "tail" (the largest third of the scales).
    pub range: &'static str,
    pub slope: f64,
    pub stderr: f64,
    /// The same fit to the exact finite-N couplings (docs/physics.md §4).
    pub exact: f64,
    /// What THEORY says the slope tends to (NaN where it says nothing).
    pub asymptotic: f64,
    /// What the seed claims (NaN where it claims nothing).
    pub seed_claim: f64,
    pub n_points: usize,
    pub note: Option<String>,
}
