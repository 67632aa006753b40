//! Streaming reduction of sample parts to per-bag n-point functions, with a
//! resumable per-(arch, width) cache.

use anyhow::{Context, Result, bail};
use nnqft_cli::Progress;
use nnqft_core::tuples::ProductTree;
use nnqft_core::{ArchSpec, Pipeline};
use nnqft_store::atomic::write_atomic;
pub use nnqft_store::keys::{reduce_key, tables_hash, MOMENTS_VERSION};
use nnqft_store::samples::{part_path, read_part};
use rayon::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};


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

/// `DATA/cache/moments/arch=A/width=N.json`.
pub fn cache_path(data: &Path, arch: &str, width: usize) -> PathBuf {
    data.join("cache").join("moments").join(format!("arch={arch}")).join(format!("width={width}.json"))
}

/// A cached reduction at `path`, unless `force` or it fails `valid` (a stale key).
pub(crate) fn load_cached<T: DeserializeOwned>(path: &Path, force: bool, valid: impl Fn(&T) -> bool) -> Option<T> {
    if force {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok().filter(|r| valid(r))
}

/// Writes a reduction to its cache file atomically.
pub(crate) fn store_cached<T: Serialize>(path: &Path, r: &T) -> Result<()> {
    let json = serde_json::to_vec(r)?;
    write_atomic(path, |f| {
        use std::io::Write;
        f.write_all(&json).context("write cache")
    })
}

/// Per-bag sums over the part files of each (arch index, width) in `pairs`:
/// `part_sums(arch, columns)` reduces one checked part, `add` accumulates
/// into a bag's total. Parts are reduced in parallel and added in part order,
/// so the result does not depend on the thread count. Returns `[pair][bag]`.
pub(crate) fn bag_sums<S: Default + Send>(
    p: &Pipeline,
    data: &Path,
    pairs: &[(usize, usize)],
    label: &str,
    part_sums: impl Fn(usize, Vec<Vec<f32>>) -> S + Sync,
    add: impl Fn(&mut S, S),
) -> Result<Vec<Vec<S>>> {
    let parts = p.parts_per_bag();
    let units: Vec<(usize, u32, u32)> =
        (0..pairs.len()).flat_map(|i| (0..p.sample.bags).flat_map(move |b| (0..parts).map(move |q| (i, b, q)))).collect();
    let total: u64 = units.iter().map(|&(_, _, q)| p.nets_in_part(q)).sum();
    let progress = Progress::new(&format!("{label} {}", p.name), total, "nets");
    let sums: Vec<S> = units
        .par_iter()
        .map(|&(i, bag, part)| {
            let (a, w) = pairs[i];
            let cols = load_part(p, data, &p.sample.arch[a], w, bag, part)?;
            let sums = part_sums(a, cols);
            // Counted when summed, not when read: the bar ends with the work.
            progress.inc(p.nets_in_part(part));
            Ok(sums)
        })
        .collect::<Result<_>>()?;
    progress.finish();
    let mut it = sums.into_iter();
    Ok(pairs
        .iter()
        .map(|_| {
            (0..p.sample.bags)
                .map(|_| {
                    let mut acc = S::default();
                    for _ in 0..parts {
                        add(&mut acc, it.next().expect("one sum per unit"));
                    }
                    acc
                })
                .collect()
        })
        .collect())
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
        let index = p.sample.arch.iter().position(|a| a.name == arch.name).expect("arch of this pipeline");
        let expected = nnqft_store::plan::expected_meta(p, &nnqft_store::plan::WorkUnit { arch: index, width, bag, part });
        bail!(
            "{}: {}; rerun nnqft-sample (with --force) for this pipeline",
            path.display(),
            nnqft_store::plan::foreign_message(&meta, &expected)
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
            load_cached(&cache_path(data, &arch.name, w), force, |r: &Reduced| r.key == reduce_key(p, arch, w))
        })
        .collect();
    let todo: Vec<usize> = (0..pairs.len()).filter(|&i| done[i].is_none()).collect();
    let cached = pairs.len() - todo.len();
    let total = pairs.len();
    nnqft_cli::interrupt::set_status(move || format!("{cached} of {total} (arch, width) reductions cached"));
    let trees: Vec<ProductTree> = p.sample.arch.iter().map(|a| ProductTree::new(a.k(), &p.moments.orders)).collect();
    let todo_pairs: Vec<(usize, usize)> = todo.iter().map(|&i| pairs[i]).collect();
    let sums = bag_sums(
        p,
        data,
        &todo_pairs,
        "moments",
        |a, cols| {
            // output 0 (the first k columns): every output has the same law
            let refs: Vec<&[f32]> = cols[..p.sample.arch[a].k()].iter().map(|c| c.as_slice()).collect();
            trees[a].sums(&refs, None)
        },
        |acc, s| nnqft_core::tuples::add_sums(acc, s),
    )?;
    let n = p.sample.nets_per_bag as f64;
    for (&i, mut bags) in todo.iter().zip(sums) {
        let (a, w) = pairs[i];
        let arch = &p.sample.arch[a];
        for acc in &mut bags {
            acc.values_mut().for_each(|v| v.iter_mut().for_each(|x| *x /= n));
        }
        let r = Reduced { key: reduce_key(p, arch, w), arch: arch.name.clone(), width: w, nets_per_bag: p.sample.nets_per_bag, bags };
        store_cached(&cache_path(data, &arch.name, w), &r)?;
        done[i] = Some(r);
    }
    Ok((done.into_iter().map(|r| r.expect("every pair reduced")).collect(), cached))
}
