//! Streaming reduction of sample parts to per-bag n-point functions, with a
//! resumable per-(arch, width) cache.

use anyhow::{Context, Result, bail};
use nnqft_cli::Progress;
use nnqft_core::rng::sha256_hex;
use nnqft_core::tuples::ProductTree;
use nnqft_core::{ArchSpec, Pipeline};
use nnqft_store::atomic::write_atomic;
use nnqft_store::samples::{part_path, read_part};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Version of the reduction; enters the cache key.
pub const MOMENTS_VERSION: u32 = 1;

/// Per-bag n-point functions of one (arch, width):
/// `bags[b][order][i]` = mean over the bag's nets of prod f(x_a), tuple i of
/// `tuples(k, order)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reduced {
    pub key: String,
    pub arch: String,
    pub width: usize,
    pub nets_per_bag: u64,
    pub bags: Vec<BTreeMap<usize, Vec<f64>>>,
}

/// The cache key: the samples' config hash, the orders and the reducer version.
pub fn reduce_key(p: &Pipeline, arch: &ArchSpec, width: usize) -> String {
    let key = serde_json::json!({
        "moments_version": MOMENTS_VERSION,
        "sample_hash": p.sample_hash(arch, width),
        "bags": p.sample.bags,
        "orders": p.moments.orders,
    });
    sha256_hex(key.to_string().as_bytes())
}

/// `DATA/cache/moments/arch=A/width=N.json`.
pub fn cache_path(data: &Path, arch: &str, width: usize) -> PathBuf {
    data.join("cache").join("moments").join(format!("arch={arch}")).join(format!("width={width}.json"))
}

fn load_cache(path: &Path, key: &str) -> Option<Reduced> {
    let text = std::fs::read_to_string(path).ok()?;
    let r: Reduced = serde_json::from_str(&text).ok()?;
    (r.key == key).then_some(r)
}

/// Sums of one part file, checked against what the pipeline expects of it.
fn reduce_part(p: &Pipeline, data: &Path, arch: &ArchSpec, width: usize, bag: u32, part: u32, tree: &ProductTree) -> Result<BTreeMap<usize, Vec<f64>>> {
    let cols = load_part(p, data, arch, width, bag, part)?;
    let refs: Vec<&[f32]> = cols.iter().map(|c| c.as_slice()).collect();
    Ok(tree.sums(&refs, None))
}

/// The columns of one part file (outputs first, then any hidden layers),
/// after checking it is the part the pipeline expects: present, written by
/// this config, the right bag, part and number of nets.
pub fn load_part(p: &Pipeline, data: &Path, arch: &ArchSpec, width: usize, bag: u32, part: u32) -> Result<Vec<Vec<f32>>> {
    let path = part_path(data, &arch.name, width, bag, part);
    if !path.exists() {
        bail!("{}: missing sample part; run nnqft-sample for this pipeline first", path.display());
    }
    let (meta, cols) = read_part(&path)?;
    let want = p.sample_hash(arch, width);
    if meta.config_hash != want {
        bail!(
            "{}: written by a different config (pipeline {:?}, hash {}...); rerun nnqft-sample (with --force) for this pipeline",
            path.display(),
            meta.pipeline,
            &meta.config_hash[..meta.config_hash.len().min(12)]
        );
    }
    if (meta.bag, meta.part, meta.nets) != (bag, part, p.nets_in_part(part)) {
        bail!("{}: footer says bag {} part {} with {} nets; expected bag {bag} part {part}", path.display(), meta.bag, meta.part, meta.nets);
    }
    Ok(cols)
}

/// Reduces every (arch, width) of the pipeline: cached results whose key
/// matches are loaded, the rest are computed from the sample parts (in
/// parallel over parts; per-bag sums are added in part order, so the result
/// does not depend on the thread count) and cached atomically.
pub fn reduce_all(p: &Pipeline, data: &Path, force: bool) -> Result<(Vec<Reduced>, usize)> {
    let pairs: Vec<(usize, usize)> = p.arch_widths();
    let mut done: Vec<Option<Reduced>> = pairs
        .iter()
        .map(|&(a, w)| {
            let arch = &p.sample.arch[a];
            if force { None } else { load_cache(&cache_path(data, &arch.name, w), &reduce_key(p, arch, w)) }
        })
        .collect();
    let todo: Vec<usize> = (0..pairs.len()).filter(|&i| done[i].is_none()).collect();
    let cached = pairs.len() - todo.len();
    let parts = p.parts_per_bag();
    let units: Vec<(usize, u32, u32)> =
        todo.iter().flat_map(|&i| (0..p.sample.bags).flat_map(move |b| (0..parts).map(move |q| (i, b, q)))).collect();
    let total: u64 = units.iter().map(|&(_, _, q)| p.nets_in_part(q)).sum();
    let progress = Progress::new(&format!("moments {}", p.name), total, "nets");
    let trees: Vec<ProductTree> = p.sample.arch.iter().map(|a| ProductTree::new(a.k(), &p.moments.orders)).collect();
    let sums: Vec<BTreeMap<usize, Vec<f64>>> = units
        .par_iter()
        .map(|&(i, bag, part)| {
            let (a, w) = pairs[i];
            let s = reduce_part(p, data, &p.sample.arch[a], w, bag, part, &trees[a])?;
            progress.inc(p.nets_in_part(part));
            Ok(s)
        })
        .collect::<Result<_>>()?;
    progress.finish();
    let mut it = sums.into_iter();
    for &i in &todo {
        let (a, w) = pairs[i];
        let arch = &p.sample.arch[a];
        let mut bags = Vec::with_capacity(p.sample.bags as usize);
        for _ in 0..p.sample.bags {
            let mut acc: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
            for _ in 0..parts {
                nnqft_core::tuples::add_sums(&mut acc, it.next().expect("one sum per unit"));
            }
            let n = p.sample.nets_per_bag as f64;
            acc.values_mut().for_each(|v| v.iter_mut().for_each(|x| *x /= n));
            bags.push(acc);
        }
        let r = Reduced { key: reduce_key(p, arch, w), arch: arch.name.clone(), width: w, nets_per_bag: p.sample.nets_per_bag, bags };
        let path = cache_path(data, &arch.name, w);
        let json = serde_json::to_vec(&r)?;
        write_atomic(&path, |f| {
            use std::io::Write;
            f.write_all(&json).context("write cache")
        })?;
        done[i] = Some(r);
    }
    Ok((done.into_iter().map(|r| r.expect("every pair reduced")).collect(), cached))
}
