//! The published coupling table (seed 003, "Verification of EFT
//! Predictions"; seed 000 prints the Gauss and ReLU rows with slightly
//! different digits), shown beside our fits. docs/physics.md §5 lists the
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

/// The seed's coupling-fit protocol for one activation (docs/physics.md §1,
/// 5 and 9): a single hidden layer in d_in = 1 at the seed's sigmas, on the
/// seed's inputs, at one width and cutoff.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedProtocol {
    pub sigma_w: f64,
    pub sigma_b: f64,
    pub inputs: Vec<f64>,
    pub width: usize,
    pub cutoff: f64,
}

/// The protocol behind [`seed_rows`] (none for tanh: the seed has no table).
pub fn seed_protocol(act: Activation) -> Option<SeedProtocol> {
    let erf = vec![-1.0, -0.6, -0.2, 0.2, 0.6, 1.0];
    let proto = |sigma_b: f64, inputs: Vec<f64>, width: usize, cutoff: f64| SeedProtocol { sigma_w: 1.0, sigma_b, inputs, width, cutoff };
    match act {
        Activation::Erf => Some(proto(1.0, erf, 5, 100.0)),
        Activation::Gauss => Some(proto(1.0, erf.iter().map(|x| 0.01 * x).collect(), 1000, f64::INFINITY)),
        Activation::Relu => Some(proto(0.0, vec![0.2, 0.4, 0.6, 0.8, 1.0, 1.2], 20, 100.0)),
        Activation::Tanh => None,
    }
}

/// Whether a fit of `arch` at `width` and `cutoff` is the seed's protocol:
/// `Ok` with it when activation, depth, d_in, sigmas, inputs, N and L all
/// match, else `Err` with the first difference (what the table prints
/// instead of the seed's numbers).
///
/// ```
/// # use nnqft_core::{ArchSpec, Activation};
/// # use nnqft_fit::seed::seed_match;
/// let x: Vec<Vec<f64>> = [-1.0, -0.6, -0.2, 0.2, 0.6, 1.0].iter().map(|&v| vec![v]).collect();
/// let erf = ArchSpec::single("e", Activation::Erf, 1.0, 1.0, x);
/// assert!(seed_match(&erf, 5, 100.0).is_ok());
/// assert!(seed_match(&erf, 5, 10.0).unwrap_err().contains("L = 10"));
/// ```
pub fn seed_match(arch: &nnqft_core::ArchSpec, width: usize, cutoff: f64) -> Result<SeedProtocol, String> {
    let Some(sp) = seed_protocol(arch.activation) else {
        return Err(format!("the seed has no {:?} coupling table", arch.activation).to_lowercase());
    };
    let same = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1e-3);
    let inputs_match = arch.inputs.len() == sp.inputs.len() && arch.inputs.iter().zip(&sp.inputs).all(|(x, &y)| x.len() == 1 && same(x[0], y));
    let why = if arch.hidden_layers != 1 {
        Some(format!("{} hidden layers (the seed's nets have one)", arch.hidden_layers))
    } else if arch.d_in != 1 {
        Some(format!("d_in = {} (the seed's table is d_in = 1)", arch.d_in))
    } else if !same(arch.sigma_w, sp.sigma_w) || !same(arch.sigma_b, sp.sigma_b) {
        Some(format!("sigma_w = {}, sigma_b = {} (the seed's are {}, {})", arch.sigma_w, arch.sigma_b, sp.sigma_w, sp.sigma_b))
    } else if !inputs_match {
        Some(format!("other inputs (the seed's are {:?})", sp.inputs))
    } else if width != sp.width || !(cutoff == sp.cutoff || same(cutoff, sp.cutoff)) {
        Some(format!("N = {width}, L = {cutoff} (the seed's are N = {}, L = {})", sp.width, sp.cutoff))
    } else {
        None
    };
    match why {
        None => Ok(sp),
        Some(w) => Err(w),
    }
}
