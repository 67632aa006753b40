//! Pipeline files (SPEC.md "Pipelines"): parsing, validation and config hashes.
//!
//! Parsing is strict: unknown keys are errors (typos must not be ignored),
//! and every semantic error names the field, e.g.
//! `sample.arch[1].sigma_w: must be finite and >= 0 (got -1)`.

use crate::rng::sha256_hex;
use crate::sampler::SAMPLER_VERSION;
use crate::boxint::{check_integrable, Propagator};
use crate::tuples::tuples;
use crate::{Activation, ArchSpec};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// The default pipeline, embedded in the binaries (`pipelines/quick.toml`).
pub const DEFAULT_PIPELINE_TOML: &str = include_str!("../../../pipelines/quick.toml");

/// Largest number of input points per architecture (points are UInt16 in the tables).
pub const MAX_POINTS: usize = 1024;
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
}

/// The cutoffs of THEORY section 7.
pub const THEORY_CUTOFFS: [f64; 21] =
    [7.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 70.0, 100.0, 200.0, 500.0, 1e3, 2e3, 5e3, 7e3, 1e4, 2e4, 4e4, 6e4, 8e4, 1e5];

/// `[rg]`: the flows of the couplings with the cutoff and with sigma_W
/// (THEORY sections 6 and 7).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RgConfig {
    /// Cutoffs L of the box `[-L, L]^d` (default: THEORY section 7).
    #[serde(default = "default_cutoffs")]
    pub cutoffs: Vec<f64>,
    /// One `[[rg.cutoff]]` per architecture: lambda_bar(L).
    #[serde(default)]
    pub cutoff: Vec<CutoffFlow>,
    /// `[rg.sigma_w]`: u4, u6 against sigma_W over a family of architectures.
    #[serde(default)]
    pub sigma_w: Option<SigmaWFlow>,
}

fn default_cutoffs() -> Vec<f64> {
    THEORY_CUTOFFS.to_vec()
}

impl Default for RgConfig {
    fn default() -> Self {
        RgConfig { cutoffs: default_cutoffs(), cutoff: Vec::new(), sigma_w: None }
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

/// `[fit]`: which (arch, width) data to fit the couplings of (THEORY section 5).
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

/// A pipeline that could not be used: where, and why. Displays as one line.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError {
    /// `line L, column C` for syntax and type errors, a field path otherwise.
    pub location: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn err(location: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError { location: location.into(), message: message.into() }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

impl Pipeline {
    /// Parses and validates a pipeline file's text.
    ///
    /// ```
    /// use nnqft_core::Pipeline;
    /// let p = Pipeline::from_toml(nnqft_core::pipeline::DEFAULT_PIPELINE_TOML).unwrap();
    /// assert_eq!(p.name, "quick");
    /// let e = Pipeline::from_toml("name = \"x\"\nseed = 1\nsedd = 2\n").unwrap_err();
    /// assert!(e.to_string().starts_with("line 3, column 1: unknown field `sedd`"), "{e}");
    /// ```
    pub fn from_toml(text: &str) -> Result<Pipeline, ConfigError> {
        let (p, analysis) = Pipeline::parse(text)?;
        match analysis {
            Some(e) => Err(e),
            None => Ok(p),
        }
    }

    /// Like [`Pipeline::from_toml`], but an error in the analysis tables
    /// (`[fit]`, `[rg]`) is returned beside the pipeline instead of failing:
    /// sampling and moments do not depend on them, so a mistake there must
    /// not stop a long run (the fit and rg stages refuse it).
    ///
    /// ```
    /// use nnqft_core::Pipeline;
    /// let text = nnqft_core::pipeline::DEFAULT_PIPELINE_TOML.replace("cutoff = 100.0", "cutoff = -1.0");
    /// assert!(Pipeline::from_toml(&text).is_err());
    /// let (p, analysis) = Pipeline::parse(&text).unwrap();
    /// assert_eq!(p.name, "quick");
    /// assert!(analysis.unwrap().to_string().starts_with("fit.run[0].cutoff"));
    /// ```
    pub fn parse(text: &str) -> Result<(Pipeline, Option<ConfigError>), ConfigError> {
        let p: Pipeline = toml::from_str(text).map_err(|e| {
            let location = match e.span() {
                Some(span) => {
                    let (l, c) = line_col(text, span.start);
                    format!("line {l}, column {c}")
                }
                None => "pipeline".to_string(),
            };
            err(location, e.message().trim().replace('\n', "; "))
        })?;
        p.validate_sampling()?;
        let analysis = p.validate_analysis().err();
        Ok((p, analysis))
    }

    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_sampling()?;
        self.validate_analysis()
    }

    /// Checks the analysis tables (`[fit]`, `[rg]`).
    pub fn validate_analysis(&self) -> Result<(), ConfigError> {
        self.validate_fit()?;
        self.validate_rg()
    }

    /// Checks what sampling and the moments reduction use (`name`, `seed`,
    /// `[sample]`, `[slurm]`, `[moments]`).
    pub fn validate_sampling(&self) -> Result<(), ConfigError> {
        check_name("name", &self.name)?;
        let s = &self.sample;
        if s.bags < 2 {
            return Err(err("sample.bags", format!("must be >= 2 (got {}): every error bar is the spread over bags", s.bags)));
        }
        if s.bags > MAX_BAGS {
            return Err(err("sample.bags", format!("{} bags is absurd (max {MAX_BAGS})", s.bags)));
        }
        if s.nets_per_bag == 0 {
            return Err(err("sample.nets_per_bag", "must be >= 1"));
        }
        if s.nets_per_part == 0 {
            return Err(err("sample.nets_per_part", "must be >= 1"));
        }
        if s.widths.is_empty() {
            return Err(err("sample.widths", "must list at least one width"));
        }
        check_widths("sample.widths", &s.widths)?;
        if s.arch.is_empty() {
            return Err(err("sample.arch", "must define at least one [[sample.arch]]"));
        }
        let mut names = HashSet::new();
        for (i, a) in s.arch.iter().enumerate() {
            let at = |field: &str| format!("sample.arch[{i}].{field}");
            check_name(&at("name"), &a.name)?;
            if !names.insert(a.name.as_str()) {
                return Err(err(at("name"), format!("duplicate arch name {:?}", a.name)));
            }
            if let Some(w) = &a.widths {
                if w.is_empty() {
                    return Err(err(at("widths"), "must list at least one width (or be left out to use sample.widths)"));
                }
                check_widths(&at("widths"), w)?;
            }
            if a.d_in == 0 {
                return Err(err(at("d_in"), "must be >= 1"));
            }
            for (field, v) in [("sigma_w", a.sigma_w), ("sigma_b", a.sigma_b)] {
                if !v.is_finite() || v < 0.0 {
                    return Err(err(at(field), format!("must be finite and >= 0 (got {v})")));
                }
            }
            if !(1..=MAX_LAYERS).contains(&a.hidden_layers) {
                return Err(err(at("hidden_layers"), format!("must be 1..{MAX_LAYERS} (got {})", a.hidden_layers)));
            }
            if let Some(r) = &a.layer_width_ratios {
                if a.hidden_layers < 2 {
                    return Err(err(at("layer_width_ratios"), "only for deep nets (hidden_layers >= 2)"));
                }
                if r.len() != a.hidden_layers {
                    return Err(err(at("layer_width_ratios"), format!("has {} entries for {} hidden layers", r.len(), a.hidden_layers)));
                }
                if let Some(v) = r.iter().find(|v| !(v.is_finite() && **v > 0.0 && **v <= 1e3)) {
                    return Err(err(at("layer_width_ratios"), format!("ratios must be finite, > 0 and <= 1000 (got {v})")));
                }
            }
            if a.hidden_layers > 1 && a.activation == Activation::Gauss {
                return Err(err(
                    at("activation"),
                    "gauss-net has an input-dependent normalisation that is only defined for one hidden layer; deep nets take relu, tanh or erf",
                ));
            }
            if a.inputs.is_empty() {
                return Err(err(at("inputs"), "must list at least one input point"));
            }
            if a.inputs.len() > MAX_POINTS {
                return Err(err(at("inputs"), format!("{} points; at most {MAX_POINTS}", a.inputs.len())));
            }
            for (j, x) in a.inputs.iter().enumerate() {
                if x.len() != a.d_in {
                    return Err(err(
                        format!("sample.arch[{i}].inputs[{j}]"),
                        format!("has {} coordinates but d_in = {}", x.len(), a.d_in),
                    ));
                }
                if let Some(v) = x.iter().find(|v| !v.is_finite()) {
                    return Err(err(format!("sample.arch[{i}].inputs[{j}]"), format!("non-finite coordinate {v}")));
                }
            }
            if let Some((j, why)) = overflow(a) {
                return Err(err(format!("sample.arch[{i}].inputs[{j}]"), why));
            }
            if s.nets_per_part.saturating_mul(a.k() as u64) > MAX_PART_VALUES {
                return Err(err(
                    "sample.nets_per_part",
                    format!(
                        "{} nets x {} inputs per part exceeds {MAX_PART_VALUES} values; lower nets_per_part",
                        s.nets_per_part,
                        a.k()
                    ),
                ));
            }
        }
        let parts = (s.arch.iter().map(|a| self.widths_of(a).len() as u64).sum::<u64>())
            .saturating_mul(s.bags as u64)
            .saturating_mul(s.nets_per_bag.div_ceil(s.nets_per_part));
        if parts > MAX_PARTS {
            return Err(err(
                "sample.nets_per_bag",
                format!("the pipeline would write {parts} part files (max {MAX_PARTS}); fewer nets or a larger nets_per_part"),
            ));
        }
        let sl = &self.slurm;
        if !(1..=100_000).contains(&sl.shards) {
            return Err(err("slurm.shards", format!("must be 1..100000 (got {})", sl.shards)));
        }
        if !(1..=4096).contains(&sl.cpus_per_task) {
            return Err(err("slurm.cpus_per_task", format!("must be 1..4096 (got {})", sl.cpus_per_task)));
        }
        let digits_then = |v: &str, suffixes: &str| {
            let d = v.trim_end_matches(|c: char| suffixes.contains(c));
            !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()) && v.len() - d.len() <= 1
        };
        if !digits_then(&sl.mem, "KMGT") {
            return Err(err("slurm.mem", format!("{:?} is not a Slurm memory size like 4G or 500M", sl.mem)));
        }
        let time_ok = {
            let (days, hms) = sl.time.split_once('-').unwrap_or(("0", &sl.time));
            days.chars().all(|c| c.is_ascii_digit())
                && !days.is_empty()
                && (1..=3).contains(&hms.split(':').count())
                && hms.split(':').all(|x| !x.is_empty() && x.len() <= 3 && x.chars().all(|c| c.is_ascii_digit()))
        };
        if !time_ok {
            return Err(err("slurm.time", format!("{:?} is not a Slurm time like 02:00:00 or 1-00:00:00", sl.time)));
        }
        if let Some(part) = &sl.partition {
            check_name("slurm.partition", part)?;
        }
        for (i, &o) in self.moments.orders.iter().enumerate() {
            if !matches!(o, 2 | 4 | 6) {
                return Err(err(format!("moments.orders[{i}]"), format!("order must be 2, 4 or 6 (got {o})")));
            }
        }
        Ok(())
    }

    fn validate_rg(&self) -> Result<(), ConfigError> {
        let rg = &self.rg;
        if !rg.cutoff.is_empty() || rg.sigma_w.is_some() {
            if !self.moments.orders.contains(&4) {
                return Err(err("moments.orders", "the rg stage needs order 4 (add 4 to moments.orders)"));
            }
        }
        if rg.cutoffs.len() < 2 {
            return Err(err("rg.cutoffs", "need at least 2 cutoffs for a slope"));
        }
        for (i, &l) in rg.cutoffs.iter().enumerate() {
            if !(l.is_finite() && l > 0.0) {
                return Err(err(format!("rg.cutoffs[{i}]"), format!("must be finite and > 0 (got {l})")));
            }
            if i > 0 && l <= rg.cutoffs[i - 1] {
                return Err(err(format!("rg.cutoffs[{i}]"), "cutoffs must increase"));
            }
        }
        for (i, c) in rg.cutoff.iter().enumerate() {
            let at = |f: &str| format!("rg.cutoff[{i}].{f}");
            let arch = self.single_layer_arch(&c.arch, &at("arch"))?;
            if let Some(ws) = &c.widths {
                check_widths(&at("widths"), ws)?;
                if let Some(w) = ws.iter().find(|w| !self.widths_of(arch).contains(w)) {
                    return Err(err(at("widths"), format!("width {w} is not sampled for {}", arch.name)));
                }
            }
            if c.propagators.is_empty() {
                return Err(err(at("propagators"), "list at least one of \"K\", \"K_W\""));
            }
            for &pr in &c.propagators {
                check_integrable(arch, rg.cutoffs[0], pr).map_err(|m| err(at("arch"), m))?;
            }
        }
        if let Some(sw) = &rg.sigma_w {
            if sw.archs.len() < 2 {
                return Err(err("rg.sigma_w.archs", "need at least 2 architectures (sigma_W values) for a slope"));
            }
            let mut first: Option<&ArchSpec> = None;
            for (j, name) in sw.archs.iter().enumerate() {
                let at = format!("rg.sigma_w.archs[{j}]");
                let a = self.single_layer_arch(name, &at)?;
                check_integrable(a, f64::INFINITY, Propagator::Weight).map_err(|m| err(at.clone(), m))?;
                if let Some(f) = first {
                    if a.activation != f.activation || a.d_in != f.d_in || a.inputs != f.inputs || a.sigma_b != f.sigma_b {
                        return Err(err(at, format!("{name} differs from {} in more than sigma_w", f.name)));
                    }
                } else {
                    first = Some(a);
                }
            }
            if let Some(ws) = &sw.widths {
                check_widths("rg.sigma_w.widths", ws)?;
                for name in &sw.archs {
                    let a = self.arch(name).expect("checked");
                    if let Some(w) = ws.iter().find(|w| !self.widths_of(a).contains(w)) {
                        return Err(err("rg.sigma_w.widths", format!("width {w} is not sampled for {name}")));
                    }
                }
            }
        }
        Ok(())
    }

    fn validate_fit(&self) -> Result<(), ConfigError> {
        let f = &self.fit;
        if !(f.max_condition > 1.0) {
            return Err(err("fit.max_condition", format!("must be > 1 (got {})", f.max_condition)));
        }
        if !f.run.is_empty() && !self.moments.orders.contains(&4) {
            return Err(err("moments.orders", "the fit needs order 4 (add 4 to moments.orders)"));
        }
        for (i, r) in f.run.iter().enumerate() {
            let at = |field: &str| format!("fit.run[{i}].{field}");
            let arch = self.single_layer_arch(&r.arch, &at("arch"))?;
            if let Some(ws) = &r.widths {
                check_widths(&at("widths"), ws)?;
                if let Some(w) = ws.iter().find(|w| !self.widths_of(arch).contains(w)) {
                    return Err(err(at("widths"), format!("width {w} is not sampled for {}", arch.name)));
                }
            }
            check_integrable(arch, r.cutoff, r.propagator).map_err(|m| err(at("cutoff"), m))?;
            let [lo, hi] = r.interior;
            if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                return Err(err(at("interior"), format!("must be [lo, hi] with finite lo <= hi (got [{lo}, {hi}])")));
            }
            let ts = tuples(arch.k(), 4);
            let train = ts.iter().filter(|t| r.is_train(arch, t)).count();
            if train < 3 {
                return Err(err(at("interior"), format!("only {train} train 4-point tuples lie in [{lo}, {hi}]; M3 needs at least 3")));
            }
            if train == ts.len() {
                return Err(err(at("interior"), format!("every input of {} is interior: no test tuples", arch.name)));
            }
        }
        Ok(())
    }

    /// The single-hidden-layer arch called `name`, for the fit and the
    /// cutoff / sigma_W flows (their theory is that of one hidden layer).
    fn single_layer_arch(&self, name: &str, at: &str) -> Result<&ArchSpec, ConfigError> {
        let Some(arch) = self.arch(name) else {
            let names: Vec<&str> = self.sample.arch.iter().map(|a| a.name.as_str()).collect();
            return Err(err(at, format!("no [[sample.arch]] named {name:?} (have: {})", names.join(", "))));
        };
        if arch.hidden_layers > 1 {
            return Err(err(
                at,
                format!("{name} has {} hidden layers; couplings are fitted for single-hidden-layer nets (deep archs get the layer flow)", arch.hidden_layers),
            ));
        }
        Ok(arch)
    }

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

    /// The config hash recorded in every sample part of (arch, width): it
    /// covers everything that determines the part's contents. A part whose
    /// recorded hash differs was made by another config.
    pub fn sample_hash(&self, arch: &ArchSpec, width: usize) -> String {
        let mut key = serde_json::json!({
            "sampler_version": SAMPLER_VERSION,
            "pipeline": self.name,
            "seed": self.seed,
            "arch": arch,
            "width": width,
            "nets_per_bag": self.sample.nets_per_bag,
            "nets_per_part": self.sample.nets_per_part,
        });
        if arch.hidden_layers > 1 {
            // deep archs have their own sampler; single-layer hashes are unchanged
            key["deep_sampler_version"] = crate::deep::DEEP_SAMPLER_VERSION.into();
        }
        sha256_hex(key.to_string().as_bytes())
    }
}

/// The largest pre-activation variance whose outputs are representable:
/// relu outputs grow like its square root and must fit in f32 (3.4e38).
const MAX_PREACT_VAR: f64 = 1e30;
/// The gauss-net evaluates exp(z) with z ~ N(0, S): beyond S = 200 its
/// 8-sigma draws overflow and its normalisation exp(-S) underflows f32.
const MAX_GAUSS_VAR: f64 = 200.0;

/// An input point whose outputs cannot be finite, and why.
fn overflow(a: &ArchSpec) -> Option<(usize, String)> {
    let (cw, cb) = a.variances();
    a.inputs.iter().enumerate().find_map(|(j, x)| {
        let s = a.s(x, x);
        // Deep relu nets: K^(l+1) = C_b + (C_W / 2) K^(l) grows geometrically above criticality.
        let deep = if a.activation == Activation::Relu { (1..a.hidden_layers).fold(s, |k, _| cb + 0.5 * cw * k) } else { s };
        let limit = if a.activation == Activation::Gauss { MAX_GAUSS_VAR } else { MAX_PREACT_VAR };
        (!(s.is_finite() && s <= limit && deep.is_finite() && deep <= MAX_PREACT_VAR)).then(|| {
            (j, format!(
                "the pre-activation variance sigma_b^2 + sigma_w^2 |x|^2 / d_in is {s:.3e}{} (at most {limit:.0e} for {}): the outputs would not be finite; scale the inputs or sigmas down",
                if deep != s { format!(" and {deep:.3e} at the last hidden layer") } else { String::new() },
                a.activation.name()
            ))
        })
    })
}

fn check_widths(field: &str, widths: &[usize]) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for (i, &w) in widths.iter().enumerate() {
        if w == 0 {
            return Err(err(format!("{field}[{i}]"), "width must be >= 1 (got 0)"));
        }
        if w > 1 << 24 {
            return Err(err(format!("{field}[{i}]"), format!("width {w} is absurd (max 16777216)")));
        }
        if !seen.insert(w) {
            return Err(err(format!("{field}[{i}]"), format!("duplicate width {w}")));
        }
    }
    Ok(())
}

/// Names end up in paths: keep them to a safe alphabet.
fn check_name(field: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(err(field, format!("{name:?} must be 1-64 characters of [A-Za-z0-9._-], not starting with '.'")))
    }
}
