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
        Ok(m) if m.config_hash != want.config_hash => State::Foreign(format!(
            "{}: written by a different config (pipeline {:?}, hash {}..., this config's is {}...)",
            path.display(),
            m.pipeline,
            &m.config_hash[..m.config_hash.len().min(12)],
            &want.config_hash[..12]
        )),
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
