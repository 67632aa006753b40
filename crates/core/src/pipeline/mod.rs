//! Pipeline files: the typed configuration and its accessors; parsing
//! (`parse.rs`), validation (`validate.rs`) and config hashes (`hash.rs`).
//!
//! Parsing is strict: unknown keys are errors (typos must not be ignored),
//! and every semantic error names the field, e.g.
//! `sample.arch[1].sigma_w: must be finite and >= 0 (got -1)`.

use crate::boxint::Propagator;
use crate::ArchSpec;
use serde::{Deserialize, Serialize};

mod hash;
mod parse;
mod validate;

pub use parse::ConfigError;
use parse::err;

/// The default pipeline, embedded in the binaries (`pipelines/quick.toml`).
pub const DEFAULT_PIPELINE_TOML: &str = include_str!("../../../../pipelines/quick.toml");

/// Largest number of input points per architecture (points are UInt16 in the tables).
pub const MAX_POINTS: usize = 1024;
/// Most outputs (`d_out`) an arch may have.
pub const MAX_OUTPUTS: usize = 64;
/// Most hidden layers a deep arch may have.
pub const MAX_LAYERS: usize = 64;
/// Largest number of f32 values one part file holds in memory (nets_per_part x k).
pub const MAX_PART_VALUES: u64 = 1 << 26;
/// Most bags per (arch, width).
pub const MAX_BAGS: u32 = 1_000_000;
/// Most part files a pipeline may produce (each is a file on disk).
pub const MAX_PARTS: u64 = 10_000_000;

/// One experiment: every number of the protocol lives here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    pub name: String,
    pub seed: u64,
    pub sample: SampleConfig,
    #[serde(default)]
    pub moments: MomentsConfig,
    #[serde(default)]
    pub slurm: SlurmConfig,
    #[serde(default)]
    pub fit: FitConfig,
    #[serde(default)]
    pub rg: RgConfig,
    /// `[[symmetry.test]]`: symmetry tests run by the moments stage
    /// (docs/physics.md §13). Not serialised when empty, so older hashes hold.
    #[serde(default, skip_serializing_if = "SymmetryConfig::is_empty")]
    pub symmetry: SymmetryConfig,
}

/// `[symmetry]`: the declared symmetry tests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SymmetryConfig {
    #[serde(default)]
    pub test: Vec<SymmetryTest>,
}

impl SymmetryConfig {
    /// No tests declared.
    pub fn is_empty(&self) -> bool {
        self.test.is_empty()
    }
}

/// What a symmetry test transforms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SymmetryKind {
    /// A seeded Haar rotation R of the outputs applied to every net: G(f) against G(R f).
    OutputRotation,
    /// The ensemble against its `image` arch, sampled at rotated inputs.
    InputRotation,
    /// The ensemble against its `image` arch, sampled at translated inputs.
    Translation,
}

impl SymmetryKind {
    /// The name used in pipelines and tables.
    pub fn name(self) -> &'static str {
        match self {
            SymmetryKind::OutputRotation => "output_rotation",
            SymmetryKind::InputRotation => "input_rotation",
            SymmetryKind::Translation => "translation",
        }
    }
}

/// `[[symmetry.test]]`: one symmetry test (docs/physics.md §13).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SymmetryTest {
    /// Names the test in tables, plots and the report.
    pub name: String,
    pub kind: SymmetryKind,
    /// The ensemble tested (a single-hidden-layer arch).
    pub arch: String,
    /// Input rotations and translations: the arch sampled at the transformed inputs.
    #[serde(default)]
    pub image: Option<String>,
    /// Output rotations: the seed of the rotation (default: the pipeline's seed).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Which inputs enter the tensors (default `[0]` for output rotations,
    /// every input otherwise).
    #[serde(default)]
    pub points: Option<Vec<usize>>,
    /// Orders of the correlators compared (1..6; default `[1, 2, 3, 4]` for
    /// output rotations, `[2, 4]` otherwise).
    #[serde(default)]
    pub orders: Option<Vec<usize>>,
    /// Widths (default: every width the arch, and its image, is sampled at).
    #[serde(default)]
    pub widths: Option<Vec<usize>>,
}

impl SymmetryTest {
    /// The orders compared.
    pub fn orders(&self) -> Vec<usize> {
        self.orders.clone().unwrap_or_else(|| if self.kind == SymmetryKind::OutputRotation { vec![1, 2, 3, 4] } else { vec![2, 4] })
    }

    /// The inputs the tensors run over (default: input 0 for output
    /// rotations, every input otherwise).
    pub fn points(&self, arch: &ArchSpec) -> Vec<usize> {
        self.points.clone().unwrap_or_else(|| if self.kind == SymmetryKind::OutputRotation { vec![0] } else { (0..arch.k()).collect() })
    }

    /// The seed of an output rotation.
    pub fn seed(&self, p: &Pipeline) -> u64 {
        self.seed.unwrap_or(p.seed)
    }

    /// The widths tested.
    pub fn widths(&self, p: &Pipeline) -> Vec<usize> {
        if let Some(w) = &self.widths {
            return w.clone();
        }
        let of = |name: &str| p.arch(name).map(|a| p.widths_of(a).to_vec()).unwrap_or_default();
        let mut ws = of(&self.arch);
        if let Some(image) = &self.image {
            let other = of(image);
            ws.retain(|w| other.contains(w));
        }
        ws
    }

    /// Number of variables the tensors run over: d_out x points for output
    /// rotations, the points otherwise.
    pub fn variables(&self, arch: &ArchSpec) -> usize {
        match self.kind {
            SymmetryKind::OutputRotation => arch.d_out * self.points(arch).len(),
            _ => self.points(arch).len(),
        }
    }
}

/// The cutoffs of docs/physics.md §7.
pub const THEORY_CUTOFFS: [f64; 21] =
    [7.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 70.0, 100.0, 200.0, 500.0, 1e3, 2e3, 5e3, 7e3, 1e4, 2e4, 4e4, 6e4, 8e4, 1e5];

/// `[rg]`: the flows of the couplings with the cutoff and with sigma_W
/// (docs/physics.md §6 and 7).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RgConfig {
    /// Cutoffs L of the box `[-L, L]^d` (default: docs/physics.md §7).
    #[serde(default = "default_cutoffs")]
    pub cutoffs: Vec<f64>,
    /// One `[[rg.cutoff]]` per architecture: lambda_bar(L).
    #[serde(default)]
    pub cutoff: Vec<CutoffFlow>,
    /// `[rg.sigma_w]`: u4, u6 against sigma_W over a family of architectures.
    #[serde(default)]
    pub sigma_w: Option<SigmaWFlow>,
    /// `[rg.input_scale]`: the passive flow, u4 and u6 against an input scale s.
    /// Not serialised when absent, so older rg hashes hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_scale: Option<InputScaleFlow>,
}

/// `[rg.input_scale]`: archs identical but for their inputs, which are
/// `s x` for the first arch's inputs `x` (docs/physics.md §14): the passive
/// flow of u4, u6 (K_W over R^d) with s at a fixed ensemble.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputScaleFlow {
    pub archs: Vec<String>,
    /// Widths (default: the widths every listed arch has).
    #[serde(default)]
    pub widths: Option<Vec<usize>>,
}

/// The factor s with `y = s x` for every coordinate (relative tolerance
/// 1e-9), if there is one and it is positive.
///
/// ```
/// use nnqft_core::pipeline::input_scale;
/// assert_eq!(input_scale(&[vec![0.5], vec![-1.0]], &[vec![1.0], vec![-2.0]]), Some(2.0));
/// assert_eq!(input_scale(&[vec![0.5], vec![-1.0]], &[vec![1.0], vec![2.0]]), None);
/// ```
pub fn input_scale(x: &[Vec<f64>], y: &[Vec<f64>]) -> Option<f64> {
    if x.len() != y.len() {
        return None;
    }
    let pairs: Vec<(f64, f64)> = x.iter().zip(y).flat_map(|(a, b)| a.iter().copied().zip(b.iter().copied())).collect();
    let (u, v) = pairs.iter().copied().max_by(|a, b| a.0.abs().total_cmp(&b.0.abs()))?;
    if u == 0.0 {
        return None;
    }
    let s = v / u;
    let ok = s > 0.0 && pairs.iter().all(|&(a, b)| (b - s * a).abs() <= 1e-9 * (1.0 + b.abs().max((s * a).abs())));
    ok.then_some(s)
}

fn default_cutoffs() -> Vec<f64> {
    THEORY_CUTOFFS.to_vec()
}

impl Default for RgConfig {
    fn default() -> Self {
        RgConfig { cutoffs: default_cutoffs(), cutoff: Vec::new(), sigma_w: None, input_scale: None }
    }
}

/// `[[rg.cutoff]]`: lambda_bar(L) of one architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CutoffFlow {
    pub arch: String,
    /// Widths (default: every sampled width of the arch).
    #[serde(default)]
    pub widths: Option<Vec<usize>>,
    /// Propagators to integrate with (default `["K"]`).
    #[serde(default = "default_propagators")]
    pub propagators: Vec<Propagator>,
}

fn default_propagators() -> Vec<Propagator> {
    vec![Propagator::Full]
}

/// `[rg.sigma_w]`: architectures that differ only in sigma_W (gauss-nets,
/// seed 001); u4 and u6 with K_W over R^d.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigmaWFlow {
    pub archs: Vec<String>,
    /// Widths (default: the widths every listed arch has).
    #[serde(default)]
    pub widths: Option<Vec<usize>>,
}

/// `[fit]`: which (arch, width) data to fit the couplings of (docs/physics.md §5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitConfig {
    /// A fit is reported non-identifiable above this condition number of the
    /// (weighted, column-equilibrated) design matrix.
    #[serde(default = "default_max_condition")]
    pub max_condition: f64,
    /// One `[[fit.run]]` per (arch, cutoff, propagator).
    #[serde(default)]
    pub run: Vec<FitRun>,
}

fn default_max_condition() -> f64 {
    1e8
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig { max_condition: default_max_condition(), run: Vec::new() }
    }
}

/// `[[fit.run]]`: fit the models M0-M3 (and kappa, and u4/u6 for gauss) to
/// one architecture's data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitRun {
    /// An architecture of `[[sample.arch]]`.
    pub arch: String,
    /// Widths to fit (default: every width sampled for the arch).
    #[serde(default)]
    pub widths: Option<Vec<usize>>,
    /// Half-side L of the box `[-L, L]^d`; `inf` for all of R^d (decaying kernels only).
    pub cutoff: f64,
    /// `"K"` (full kernel, default) or `"K_W"` (the reference code's choice).
    #[serde(default = "default_propagator")]
    pub propagator: Propagator,
    /// A point is interior if every coordinate lies in `[lo, hi]`; train on
    /// the tuples whose points are all interior, test on the rest.
    pub interior: [f64; 2],
}

fn default_propagator() -> Propagator {
    Propagator::Full
}

impl FitRun {
    /// Whether input point `x` is interior.
    pub fn is_interior(&self, x: &[f64]) -> bool {
        x.iter().all(|&c| c >= self.interior[0] && c <= self.interior[1])
    }

    /// Whether every point of tuple `t` of `arch` is interior (a train tuple).
    pub fn is_train(&self, arch: &ArchSpec, t: &[usize]) -> bool {
        t.iter().all(|&a| self.is_interior(&arch.inputs[a]))
    }
}

/// `[slurm]`: resources of the job array that `nnqft-slurm` writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmConfig {
    /// Partition (`--partition`); the cluster's default when absent.
    #[serde(default)]
    pub partition: Option<String>,
    /// Array size: the sampling work is split into this many shards.
    #[serde(default = "default_shards")]
    pub shards: u32,
    /// `--cpus-per-task` (also the `--threads` of each stage).
    #[serde(default = "default_cpus")]
    pub cpus_per_task: u32,
    /// `--mem`, e.g. "4G".
    #[serde(default = "default_mem")]
    pub mem: String,
    /// `--time`, e.g. "02:00:00" or "1-00:00:00".
    #[serde(default = "default_time")]
    pub time: String,
}

fn default_shards() -> u32 {
    8
}
fn default_cpus() -> u32 {
    2
}
fn default_mem() -> String {
    "4G".into()
}
fn default_time() -> String {
    "04:00:00".into()
}

impl Default for SlurmConfig {
    fn default() -> Self {
        SlurmConfig { partition: None, shards: default_shards(), cpus_per_task: default_cpus(), mem: default_mem(), time: default_time() }
    }
}

/// `[sample]`: what networks to draw and how many.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleConfig {
    pub bags: u32,
    pub nets_per_bag: u64,
    pub widths: Vec<usize>,
    /// Nets per part file: bounds the memory of the sampler and the reducer.
    #[serde(default = "default_nets_per_part")]
    pub nets_per_part: u64,
    pub arch: Vec<ArchSpec>,
}

fn default_nets_per_part() -> u64 {
    1 << 16
}

/// `[moments]`: which n-point functions to reduce.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MomentsConfig {
    #[serde(default = "default_orders")]
    pub orders: Vec<usize>,
}

fn default_orders() -> Vec<usize> {
    vec![2, 4, 6]
}

impl Default for MomentsConfig {
    fn default() -> Self {
        MomentsConfig { orders: default_orders() }
    }
}

impl Pipeline {
    /// The deep archs (`hidden_layers > 1`), whose moments are per layer.
    pub fn deep_archs(&self) -> impl Iterator<Item = &ArchSpec> {
        self.sample.arch.iter().filter(|a| a.hidden_layers > 1)
    }

    /// The architecture called `name`.
    pub fn arch(&self, name: &str) -> Option<&ArchSpec> {
        self.sample.arch.iter().find(|a| a.name == name)
    }

    /// The widths sampled for `arch`: its own `widths`, else `sample.widths`.
    pub fn widths_of<'a>(&'a self, arch: &'a ArchSpec) -> &'a [usize] {
        arch.widths.as_deref().unwrap_or(&self.sample.widths)
    }

    /// Every sampled (arch index, width) pair, in pipeline order.
    pub fn arch_widths(&self) -> Vec<(usize, usize)> {
        self.sample.arch.iter().enumerate().flat_map(|(i, a)| self.widths_of(a).iter().map(move |&w| (i, w))).collect()
    }

    /// Number of part files per bag.
    pub fn parts_per_bag(&self) -> u32 {
        self.sample.nets_per_bag.div_ceil(self.sample.nets_per_part) as u32
    }

    /// Nets in part `part` of a bag (the last part may be short).
    pub fn nets_in_part(&self, part: u32) -> u64 {
        let s = &self.sample;
        (s.nets_per_bag - part as u64 * s.nets_per_part).min(s.nets_per_part)
    }
}
