//! Semantic checks of a parsed pipeline; every error names its field.

use super::*;
use crate::boxint::{check_integrable, Propagator};
use crate::tuples::tuples;
use crate::{Activation, ArchSpec};
use std::collections::HashSet;

impl Pipeline {
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
            for (field, v) in [("mu_w", a.mu_w), ("mu_b", a.mu_b), ("mu_w_out", a.mu_w_out), ("mu_b_out", a.mu_b_out)] {
                if !v.is_finite() {
                    return Err(err(at(field), format!("must be finite (got {v})")));
                }
            }
            if !(1..=MAX_OUTPUTS).contains(&a.d_out) {
                return Err(err(at("d_out"), format!("must be 1..{MAX_OUTPUTS} (got {})", a.d_out)));
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
            let columns = a.k() * (a.d_out + if a.hidden_layers > 1 { a.hidden_layers } else { 0 });
            if s.nets_per_part.saturating_mul(columns as u64) > MAX_PART_VALUES {
                return Err(err(
                    "sample.nets_per_part",
                    format!(
                        "{} nets x {columns} columns ({} inputs) per part exceeds {MAX_PART_VALUES} values; lower nets_per_part",
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
        self.validate_symmetry()
    }

    /// `[[symmetry.test]]` (run by the moments stage).
    fn validate_symmetry(&self) -> Result<(), ConfigError> {
        let mut names = HashSet::new();
        for (i, t) in self.symmetry.test.iter().enumerate() {
            let at = |f: &str| format!("symmetry.test[{i}].{f}");
            check_name(&at("name"), &t.name)?;
            if !names.insert(t.name.as_str()) {
                return Err(err(at("name"), format!("duplicate test name {:?}", t.name)));
            }
            let arch = self.single_layer_arch(&t.arch, &at("arch"))?;
            let kind = t.kind.name();
            for (field, given) in [("image", t.image.is_some()), ("seed", t.seed.is_some())] {
                let belongs = (field == "image") != (t.kind == SymmetryKind::OutputRotation);
                if given && !belongs {
                    return Err(err(at(field), format!("not used by a test of kind {kind}")));
                }
            }
            match t.kind {
                SymmetryKind::OutputRotation => {
                    if arch.d_out < 2 {
                        return Err(err(at("arch"), format!("an output rotation needs d_out >= 2 ({} has d_out = {})", arch.name, arch.d_out)));
                    }
                }
                SymmetryKind::InputRotation | SymmetryKind::Translation => {
                    let Some(name) = &t.image else {
                        return Err(err(at("image"), format!("a test of kind {kind} needs the arch sampled at the transformed inputs")));
                    };
                    let image = self.single_layer_arch(name, &at("image"))?;
                    if image.name == arch.name {
                        return Err(err(at("image"), "must be another arch than the one tested"));
                    }
                    let mut same = image.clone();
                    (same.name, same.inputs, same.widths) = (arch.name.clone(), arch.inputs.clone(), arch.widths.clone());
                    if &same != arch {
                        return Err(err(at("image"), format!("{} must equal {} in everything but its inputs and widths", image.name, arch.name)));
                    }
                    if image.inputs.len() != arch.inputs.len() {
                        return Err(err(at("image"), format!("{} has {} inputs, {} has {}", image.name, image.k(), arch.name, arch.k())));
                    }
                    let why = if t.kind == SymmetryKind::InputRotation {
                        if arch.d_in < 2 {
                            return Err(err(at("kind"), format!("an input rotation needs d_in >= 2 ({} has d_in = 1: the only rotation of a line is the identity)", arch.name)));
                        }
                        rotation_mismatch(&arch.inputs, &image.inputs)
                    } else {
                        translation_mismatch(&arch.inputs, &image.inputs)
                    };
                    if let Some(why) = why {
                        return Err(err(at("image"), format!("the inputs of {} are not an image of those of {} under {kind}: {why}", image.name, arch.name)));
                    }
                }
            }
            let points = t.points(arch);
            if points.is_empty() {
                return Err(err(at("points"), "list at least one input index"));
            }
            for (j, &a) in points.iter().enumerate() {
                if a >= arch.k() {
                    return Err(err(format!("{}[{j}]", at("points")), format!("input {a} does not exist ({} has {} inputs)", arch.name, arch.k())));
                }
                if points[..j].contains(&a) {
                    return Err(err(format!("{}[{j}]", at("points")), format!("duplicate input {a}")));
                }
            }
            let widths = t.widths(self);
            if let Some(ws) = &t.widths {
                check_widths(&at("widths"), ws)?;
            }
            for w in &widths {
                for a in std::iter::once(&t.arch).chain(&t.image) {
                    if !self.arch(a).is_some_and(|a| self.widths_of(a).contains(w)) {
                        return Err(err(at("widths"), format!("width {w} is not sampled for {a}")));
                    }
                }
            }
            if widths.is_empty() {
                return Err(err(at("widths"), format!("{} and its image share no sampled width", arch.name)));
            }
            let orders = t.orders();
            if orders.is_empty() {
                return Err(err(at("orders"), "list at least one order"));
            }
            let v = t.variables(arch);
            for (j, &o) in orders.iter().enumerate() {
                if !(1..=6).contains(&o) || orders[..j].contains(&o) {
                    return Err(err(format!("{}[{j}]", at("orders")), format!("orders must be distinct and 1..6 (got {o})")));
                }
                let p = tuples(v, o).len();
                if p as u64 >= self.sample.bags as u64 {
                    return Err(err(
                        format!("{}[{j}]", at("orders")),
                        format!(
                            "order {o} has {p} tuples over {v} variables; the test's covariance over bags needs more bags than tuples (sample.bags = {})",
                            self.sample.bags
                        ),
                    ));
                }
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
        if let Some(f) = &rg.input_scale {
            if !self.moments.orders.contains(&4) {
                return Err(err("moments.orders", "the rg stage needs order 4 (add 4 to moments.orders)"));
            }
            if f.archs.len() < 2 {
                return Err(err("rg.input_scale.archs", "need at least 2 architectures (input scales) for a slope"));
            }
            let base = self.single_layer_arch(&f.archs[0], "rg.input_scale.archs[0]")?;
            let mut scales: Vec<f64> = Vec::new();
            for (j, name) in f.archs.iter().enumerate() {
                let at = format!("rg.input_scale.archs[{j}]");
                let a = self.single_layer_arch(name, &at)?;
                check_integrable(a, f64::INFINITY, Propagator::Weight).map_err(|m| err(at.clone(), m))?;
                let mut same = a.clone();
                (same.name, same.inputs, same.widths) = (base.name.clone(), base.inputs.clone(), base.widths.clone());
                if &same != base {
                    return Err(err(at, format!("{name} differs from {} in more than its inputs (and widths)", base.name)));
                }
                let Some(s) = super::input_scale(&base.inputs, &a.inputs) else {
                    return Err(err(at, format!("the inputs of {name} are not s times those of {} for one s > 0", base.name)));
                };
                if scales.iter().any(|&t| (t - s).abs() <= 1e-9 * s) {
                    return Err(err(at, format!("{name} repeats the input scale {s}")));
                }
                scales.push(s);
            }
            if let Some(ws) = &f.widths {
                check_widths("rg.input_scale.widths", ws)?;
                for name in &f.archs {
                    let a = self.arch(name).expect("checked");
                    if let Some(w) = ws.iter().find(|w| !self.widths_of(a).contains(w)) {
                        return Err(err("rg.input_scale.widths", format!("width {w} is not sampled for {name}")));
                    }
                }
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
        let s = a.s(x, x) + a.pre_mean(x).abs();
        // Deep relu nets: K^(l+1) = C_b + (C_W / 2) K^(l) grows geometrically above criticality.
        let deep = if a.activation == Activation::Relu { (1..a.hidden_layers).fold(s, |k, _| cb + 0.5 * cw * k) } else { s };
        let limit = if a.activation == Activation::Gauss { MAX_GAUSS_VAR } else { MAX_PREACT_VAR };
        (!(s.is_finite() && s <= limit && deep.is_finite() && deep <= MAX_PREACT_VAR)).then(|| {
            (j, format!(
                "the pre-activation variance sigma_b^2 + sigma_w^2 |x|^2 / d_in (+ |mean|) is {s:.3e}{} (at most {limit:.0e} for {}): the outputs would not be finite; scale the inputs or sigmas down",
                if deep != s { format!(" and {deep:.3e} at the last hidden layer") } else { String::new() },
                a.activation.name()
            ))
        })
    })
}

/// Relative tolerance of the input checks of rotations and translations.
const INPUT_TOL: f64 = 1e-9;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= INPUT_TOL * (1.0 + a.abs().max(b.abs()))
}

/// Why `y` is not a rotation of `x` (their Gram matrices differ), if it is not.
fn rotation_mismatch(x: &[Vec<f64>], y: &[Vec<f64>]) -> Option<String> {
    let dot = |u: &[f64], v: &[f64]| u.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
    for a in 0..x.len() {
        for b in a..x.len() {
            let (gx, gy) = (dot(&x[a], &x[b]), dot(&y[a], &y[b]));
            if !close(gx, gy) {
                return Some(format!("x_{a}.x_{b} = {gx} but the image's is {gy}"));
            }
        }
    }
    None
}

/// Why `y` is not `x + c` for one shift `c != 0`, if it is not.
fn translation_mismatch(x: &[Vec<f64>], y: &[Vec<f64>]) -> Option<String> {
    let c: Vec<f64> = y[0].iter().zip(&x[0]).map(|(a, b)| a - b).collect();
    for (a, (xa, ya)) in x.iter().zip(y).enumerate() {
        for (j, (u, v)) in xa.iter().zip(ya).enumerate() {
            if !close(v - u, c[j]) {
                return Some(format!("input {a} is shifted by {} in coordinate {j}, input 0 by {}", v - u, c[j]));
            }
        }
    }
    c.iter().all(|&v| v == 0.0).then(|| "the inputs are the same (shift 0)".to_string())
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
