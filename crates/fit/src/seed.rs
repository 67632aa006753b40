//! The published coupling table (seed 003, "Verification of EFT
//! Predictions"; seed 000 prints the Gauss and ReLU rows with slightly
//! different digits), shown beside our fits. THEORY.md section 5 lists the
//! defects of the code that produced it; we print it, never tune toward it.

use nnqft_core::Activation;

/// One row: (lambda0, lambda2, lambda_nl), test (MAPE, MSE) as published.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeedRow {
    pub model: &'static str,
    pub couplings: (f64, f64, f64),
    pub mape: f64,
    pub mse: f64,
}

const fn row(model: &'static str, couplings: (f64, f64, f64), mape: f64, mse: f64) -> SeedRow {
    SeedRow { model, couplings, mape, mse }
}

/// The seed rows for an activation (erf, gauss, relu), M0-M3.
pub fn seed_rows(act: Activation) -> &'static [SeedRow] {
    const GAUSS: [SeedRow; 4] = [
        row("M0", (0.0, 0.0, 0.0), 100.0, 0.019),
        row("M1", (0.0046, 0.0, 0.0), 0.0145, 6.8e-10),
        row("M2", (0.0043, 0.0011, 0.0), 0.0144, 6.7e-10),
        row("M3", (0.00062, 0.00016, 0.0015), 0.0156, 7.5e-10),
    ];
    const RELU: [SeedRow; 4] = [
        row("M0", (0.0, 0.0, 0.0), 100.0, 0.003),
        row("M1", (6.2e-11, 0.0, 0.0), 0.0035, 7.6e-12),
        row("M2", (1.2e-18, 8.7e-15, 0.0), 0.0013, 1.5e-12),
        row("M3", (1.2e-18, 8.7e-15, 6.8e-17), 0.0012, 1.2e-12),
    ];
    const ERF: [SeedRow; 4] = [
        row("M0", (0.0, 0.0, 0.0), 100.0, 0.006),
        row("M1", (0.039, 0.0, 0.0), 0.030, 8.3e-10),
        row("M2", (0.040, -0.00043, 0.0), 0.0042, 1.9e-11),
        row("M3", (0.0019, -0.0054, 0.0063), 0.037, 1.1e-9),
    ];
    match act {
        Activation::Gauss => &GAUSS,
        Activation::Relu => &RELU,
        Activation::Erf => &ERF,
        Activation::Tanh => &[],
    }
}

/// The seed's protocol for an activation (THEORY section 9): (width, cutoff).
pub fn seed_protocol(act: Activation) -> Option<(usize, f64)> {
    match act {
        Activation::Erf => Some((5, 100.0)),
        Activation::Gauss => Some((1000, f64::INFINITY)),
        Activation::Relu => Some((20, 100.0)),
        Activation::Tanh => None,
    }
}
