//! Helpers shared by the end-to-end tests of the stage binaries: the
//! repository root, running a stage, test pipelines built from their tables
//! ([`Pipe`]) and running every stage on one ([`run_stages`]).

mod pipe;

pub use pipe::{run_stages, Pipe};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (pipelines are resolved from there).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// Runs `bin args` in the repository root.
pub fn run(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin).args(args).current_dir(repo()).output().unwrap_or_else(|e| panic!("{}: {e}", bin.display()))
}

/// Runs `bin args`, asserts success and returns stdout.
pub fn ok(bin: &Path, args: &[&str]) -> String {
    let out = run(bin, args);
    assert!(out.status.success(), "{} {args:?}: {}", bin.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `E F^p` for `F = sum_{i<=N} v_i relu(w_i) / sqrt(N)`, v, w iid N(0, 1):
/// the N-fold convolution of one term's moments (binomial recursion over the
/// terms), independent of the cumulant recursion of `nnqft_core::variance`.
///
/// ```
/// let m = nnqft_testkit::relu_sum_moments(4, 4);
/// assert!((m[2] - 0.5).abs() < 1e-15 && (m[4] - (0.75 + 15.0 / 16.0)).abs() < 1e-15);
/// ```
pub fn relu_sum_moments(n: usize, max_p: usize) -> Vec<f64> {
    let dfact = |r: usize| -> f64 { (1..r).step_by(2).map(|x| x as f64).product() };
    // E Y^p, Y = v relu(w) / sqrt(N): 0 for odd p, (p-1)!! * (p-1)!!/2 / N^(p/2) for even p >= 2.
    let y: Vec<f64> = (0..=max_p)
        .map(|p| match p {
            0 => 1.0,
            p if p % 2 == 1 => 0.0,
            p => dfact(p) * dfact(p) / 2.0 / (n as f64).powi(p as i32 / 2),
        })
        .collect();
    let binom = |p: usize, j: usize| -> f64 { (0..j).fold(1.0, |acc, i| acc * (p - i) as f64 / (i + 1) as f64) };
    let mut s = y.clone();
    for _ in 1..n {
        s = (0..=max_p).map(|p| (0..=p).map(|j| binom(p, j) * s[p - j] * y[j]).sum()).collect();
    }
    s
}
