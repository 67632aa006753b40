//! The work plan of the sample stage: one work unit per part file, in a
//! canonical order, sharded for job arrays, and what resume finds at each
//! unit's path. Shared by nnqft-sample (which does the units) and
//! nnqft-slurm (which asks which shards have work left).

use crate::samples::{PartMeta, part_path, read_part_meta};
use nnqft_core::Pipeline;
use rayon::prelude::*;
use std::path::Path;

/// One part file's worth of sampling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkUnit {
    /// Index into `pipeline.sample.arch`.
    pub arch: usize,
    pub width: usize,
    pub bag: u32,
    pub part: u32,
}

/// Every work unit of the pipeline, in canonical order.
pub fn plan(p: &Pipeline) -> Vec<WorkUnit> {
    let mut units = Vec::new();
    for (arch, width) in p.arch_widths() {
        for bag in 0..p.sample.bags {
            for part in 0..p.parts_per_bag() {
                units.push(WorkUnit { arch, width, bag, part });
            }
        }
    }
    units
}

/// The units of shard `i` of `n` (1-based): every n-th unit from i-1.
pub fn shard_units(units: &[WorkUnit], shard: Option<(u32, u32)>) -> Vec<WorkUnit> {
    match shard {
        None => units.to_vec(),
        Some((i, n)) => units.iter().skip(i as usize - 1).step_by(n as usize).copied().collect(),
    }
}

/// The footer a unit's part file must carry.
pub fn expected_meta(p: &Pipeline, u: &WorkUnit) -> PartMeta {
    let arch = &p.sample.arch[u.arch];
    PartMeta {
        pipeline: p.name.clone(),
        seed: p.seed,
        arch: arch.clone(),
        inputs: arch.inputs.clone(),
        width: u.width,
        bag: u.bag,
        part: u.part,
        nets: p.nets_in_part(u.part),
        config_hash: p.sample_hash(arch, u.width),
        version: nnqft_core::VERSION.to_string(),
        sampler_version: nnqft_core::sampler::SAMPLER_VERSION,
        data_crc32: None,
    }
}

/// Every field in which a part's footer differs from the footer this config
/// would write, as `path: old -> new` with the pipeline's names
/// (`sample.arch[NAME].sigma_w`, `seed`, `name`, ...).
///
/// ```
/// use nnqft_store::plan::{changed_fields, expected_meta, plan};
/// let p = nnqft_core::Pipeline::from_toml(nnqft_core::pipeline::DEFAULT_PIPELINE_TOML).unwrap();
/// let want = expected_meta(&p, &plan(&p)[0]);
/// let mut old = want.clone();
/// old.arch.sigma_w = 1.2;
/// old.seed = 7;
/// assert_eq!(changed_fields(&old, &want), vec!["seed: 7 -> 1".to_string(), "sample.arch[erf-d1].sigma_w: 1.2 -> 1.0".to_string()]);
/// ```
pub fn changed_fields(old: &PartMeta, want: &PartMeta) -> Vec<String> {
    fn walk(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<(String, String, String)>) {
        use serde_json::Value;
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let sub = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    walk(&sub, x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), out);
                }
            }
            _ if a != b => out.push((path.to_string(), a.to_string(), b.to_string())),
            _ => {}
        }
    }
    let (a, b) = (serde_json::to_value(old).unwrap_or_default(), serde_json::to_value(want).unwrap_or_default());
    let mut diffs = Vec::new();
    walk("", &a, &b, &mut diffs);
    let arch = format!("sample.arch[{}]", want.arch.name);
    let mut out: Vec<(u8, String)> = diffs
        .into_iter()
        .filter_map(|(path, a, b)| {
            let (rank, name) = match path.as_str() {
                "config_hash" | "version" | "data_crc32" | "inputs" | "bag" | "part" | "width" => return None,
                "pipeline" => (0, "name".to_string()),
                "seed" => (1, "seed".to_string()),
                "sampler_version" => (2, "sampler version (this nnqft's)".to_string()),
                "nets" => (4, "nets in this part (sample.nets_per_bag, sample.nets_per_part)".to_string()),
                p => (3, p.strip_prefix("arch").map_or(p.to_string(), |rest| format!("{arch}{rest}"))),
            };
            Some((rank, format!("{name}: {a} -> {b}")))
        })
        .collect();
    out.sort_by_key(|(rank, _)| *rank);
    out.into_iter().map(|(_, s)| s).collect()
}

/// Why a part is another config's: the fields that changed (or, when the
/// footer does not show it, the hashes and where the difference must be).
pub fn foreign_message(old: &PartMeta, want: &PartMeta) -> String {
    let changed = changed_fields(old, want);
    let hashes = format!("hash {}..., this config's {}...", &old.config_hash[..old.config_hash.len().min(12)], &want.config_hash[..want.config_hash.len().min(12)]);
    if changed.is_empty() {
        format!("written by a different config ({hashes}; the part's own fields agree, so a setting it does not record changed, e.g. sample.nets_per_bag)")
    } else {
        format!("written by a different config: {} ({hashes})", changed.join(", "))
    }
}

/// What resume finds at a part's path.
pub enum State {
    Done,
    Missing,
    Corrupt(String),
    Foreign(String),
}

/// The state of the part file at `path` against the footer it must carry;
/// `verify` also reads and checks its data (checksum, finiteness).
pub fn state(path: &Path, want: &PartMeta, verify: bool) -> State {
    if !path.exists() {
        return State::Missing;
    }
    let meta = if verify { crate::samples::read_part(path).map(|(m, _)| m) } else { read_part_meta(path) };
    match meta {
        Err(e) => State::Corrupt(format!("{e:#}")),
        Ok(m) if m.config_hash != want.config_hash => State::Foreign(format!("{}: {}", path.display(), foreign_message(&m, want))),
        Ok(m) if (m.bag, m.part, m.nets, m.width, &m.arch.name) != (want.bag, want.part, want.nets, want.width, &want.arch.name) => {
            State::Corrupt(format!("{}: footer describes another part (arch {}, width {}, bag {}, part {})", path.display(), m.arch.name, m.width, m.bag, m.part))
        }
        Ok(_) => State::Done,
    }
}

/// How many of a shard's part files are not yet done (missing, corrupt or
/// foreign): 0 means the shard has nothing left to do.
pub fn pending_units(p: &Pipeline, data: &Path, shard: Option<(u32, u32)>) -> usize {
    shard_units(&plan(p), shard)
        .par_iter()
        .filter(|u| {
            let want = expected_meta(p, u);
            !matches!(state(&part_path(data, &want.arch.name, u.width, u.bag, u.part), &want, false), State::Done)
        })
        .count()
}
