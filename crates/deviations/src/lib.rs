//! # nnqft-deviations
//!
//! What the coupling analyses (fit, rg) read: the measured deviations
//! `G^b(t) - G_GP(t)` of every bag and tuple, and the exact finite-N ones,
//! from `moments_bags.parquet` and `moments.parquet`, refused when those
//! tables are stale; and the estimates built directly on them (the seed-001
//! couplings u4, u6). Errors come from the bags.

use anyhow::{bail, Result};
use nnqft_core::boxint::Templates;
use nnqft_core::tuples::{pair_quad_splits, tuple_index, tuples, wick};
use nnqft_core::{ArchSpec, Pipeline};
use nnqft_stats::stderr;
use nnqft_frames::{DataFrame, col};
use nnqft_store::tables::require_current;
use std::collections::BTreeMap;
use std::path::Path;

/// Refuses `moments.parquet` or `moments_bags.parquet` if missing or not
/// written from `p` as configured now (a removed width, other bags, orders
/// or samples): the stale-data rule of every stage.
pub fn require_inputs(p: &Pipeline, data: &Path) -> Result<()> {
    let want = nnqft_store::keys::tables_hash(p, false);
    for f in ["moments.parquet", "moments_bags.parquet"] {
        require_current(&data.join(f), &want, &p.name, "nnqft-moments")?;
    }
    Ok(())
}

/// The measured deviations of one (arch, width).
#[derive(Clone, Debug, PartialEq)]
pub struct Deviations {
    /// order -> [bag][tuple]: `G^b(t) - G_GP(t)`, tuples in [`tuples`] order.
    pub per_bag: BTreeMap<usize, Vec<Vec<f64>>>,
    /// order -> exact finite-N `G - G_GP` per tuple (docs/physics.md §4).
    pub exact: BTreeMap<usize, Vec<f64>>,
    /// order -> whether the tuple's bag errors were flagged unreliable (docs/physics.md §10).
    pub unreliable: BTreeMap<usize, Vec<bool>>,
}

impl Deviations {
    pub fn bags(&self) -> usize {
        self.per_bag.values().next().map_or(0, Vec::len)
    }

    /// Mean over bags, per tuple.
    pub fn mean(&self, order: usize) -> Vec<f64> {
        let b = &self.per_bag[&order];
        (0..b[0].len()).map(|i| b.iter().map(|v| v[i]).sum::<f64>() / b.len() as f64).collect()
    }

    /// How many tuples of `order` have unreliable bag errors (0 for an order not loaded).
    pub fn n_unreliable(&self, order: usize) -> usize {
        self.unreliable.get(&order).map_or(0, |v| v.iter().filter(|&&f| f).count())
    }

    /// Standard error of the mean over bags, per tuple.
    pub fn stderr(&self, order: usize) -> Vec<f64> {
        let b = &self.per_bag[&order];
        (0..b[0].len()).map(|i| stderr(&b.iter().map(|v| v[i]).collect::<Vec<_>>())).collect()
    }
}

/// Reads the deviations of the (arch, width) pairs the fit runs need from
/// `moments_bags.parquet` and `moments.parquet`, checking that they were
/// computed from this pipeline's samples.
pub fn load_deviations(p: &Pipeline, data: &Path, want: &[(String, usize)]) -> Result<BTreeMap<(String, usize), Deviations>> {
    let mpath = data.join("moments.parquet");
    let bpath = data.join("moments_bags.parquet");
    require_inputs(p, data)?;
    let mut out: BTreeMap<(String, usize), Deviations> = BTreeMap::new();
    for (a, w) in want {
        let arch = p.arch(a).expect("validated");
        let mut per_bag = BTreeMap::new();
        let mut exact = BTreeMap::new();
        let mut unreliable = BTreeMap::new();
        for &o in &p.moments.orders {
            let n = tuples(arch.k(), o).len();
            per_bag.insert(o, vec![vec![f64::NAN; n]; p.sample.bags as usize]);
            exact.insert(o, vec![f64::NAN; n]);
            unreliable.insert(o, vec![false; n]);
        }
        out.insert((a.clone(), *w), Deviations { per_bag, exact, unreliable });
    }
    // Per-bag values, then the exact deviations: lazy scans that keep only
    // the (arch, width) groups and orders wanted.
    let keep = nnqft_frames::any_pair(want);
    let bags = nnqft_frames::collect(&bpath, nnqft_frames::scan(&bpath)?.filter(keep.clone()).select([col("arch"), col("width"), col("order"), col("tuple"), col("bag"), col("value")]))?;
    fill(p, &bpath, &bags, &mut out, |dev, arch, o, t, r, cols| {
        let Some(slot) = dev.per_bag.get_mut(&o) else { return Ok(()) };
        let b = cols.bag[r] as usize;
        if b >= slot.len() {
            bail!("{}: row {r}: bag {b} but the pipeline has {} bags; rerun nnqft-moments", bpath.display(), slot.len());
        }
        let gp = wick(t, |i, j| arch.kernel(&arch.inputs[i], &arch.inputs[j]));
        slot[b][tuple_index(arch.k(), t)] = cols.value[r] - gp;
        Ok(())
    })?;
    let exact = nnqft_frames::collect(&mpath, nnqft_frames::scan(&mpath)?.filter(keep).select([col("arch"), col("width"), col("order"), col("tuple"), col("exact_delta").alias("value"), col("unreliable")]))?;
    fill(p, &mpath, &exact, &mut out, |dev, arch, o, t, r, cols| {
        let i = tuple_index(arch.k(), t);
        if let Some(slot) = dev.exact.get_mut(&o) {
            slot[i] = cols.value[r];
        }
        if let Some(slot) = dev.unreliable.get_mut(&o) {
            slot[i] = cols.flag[r] != 0;
        }
        Ok(())
    })?;
    for ((a, w), dev) in &out {
        for (o, bags) in &dev.per_bag {
            if bags.iter().any(|b| b.iter().any(|v| v.is_nan())) {
                bail!("{}: arch {a} width {w} order {o}: some tuples or bags are missing; rerun nnqft-moments", bpath.display());
            }
        }
    }
    Ok(out)
}

/// The columns of one collected frame that [`fill`] hands on per row.
struct Cols {
    bag: Vec<u32>,
    value: Vec<f64>,
    flag: Vec<u8>,
}

/// Calls `f(deviations, arch, order, tuple, row, columns)` for every row of
/// `df` (read from `path`) whose (arch, width) is in `out`.
fn fill(
    p: &Pipeline,
    path: &Path,
    df: &DataFrame,
    out: &mut BTreeMap<(String, usize), Deviations>,
    mut f: impl FnMut(&mut Deviations, &ArchSpec, usize, &[usize], usize, &Cols) -> Result<()>,
) -> Result<()> {
    let arch_c = nnqft_frames::strs(path, df, "arch")?;
    let width_c = nnqft_frames::u32s(path, df, "width")?;
    let order_c = nnqft_frames::u8s(path, df, "order")?;
    let k = p.sample.arch.iter().map(ArchSpec::k).max().unwrap_or(0);
    let tuple_c = nnqft_frames::tuples(path, df, "tuple", k)?;
    let cols = Cols {
        bag: if df.column("bag").is_ok() { nnqft_frames::u32s(path, df, "bag")? } else { Vec::new() },
        value: nnqft_frames::f64s(path, df, "value")?,
        flag: if df.column("unreliable").is_ok() { nnqft_frames::u8s(path, df, "unreliable")? } else { Vec::new() },
    };
    for r in 0..df.height() {
        let key = (arch_c[r].clone(), width_c[r] as usize);
        let Some(dev) = out.get_mut(&key) else { continue };
        let arch = p.arch(&key.0).expect("validated");
        if tuple_c[r].iter().any(|&a| a >= arch.k()) {
            bail!("{}: row {r}: tuple {:?} is not a sorted tuple of {} inputs", path.display(), tuple_c[r], arch.k());
        }
        f(dev, arch, order_c[r] as usize, &tuple_c[r], r, &cols)?;
    }
    Ok(())
}

/// A coupling from the mean data, from each bag, and from the exact deviations.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub mean: f64,
    pub bags: Vec<f64>,
    pub exact: f64,
}

impl Estimate {
    /// Applies `f` to the mean, each bag's and the exact deviations.
    pub fn of(dev: &Deviations, orders: &[usize], f: impl Fn(&[&[f64]]) -> f64) -> Estimate {
        let means: Vec<Vec<f64>> = orders.iter().map(|&o| dev.mean(o)).collect();
        let mean = f(&means.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let bags = (0..dev.bags()).map(|b| f(&orders.iter().map(|o| dev.per_bag[o][b].as_slice()).collect::<Vec<_>>())).collect();
        let exact = f(&orders.iter().map(|o| dev.exact[o].as_slice()).collect::<Vec<_>>());
        Estimate { mean, bags, exact }
    }

    pub fn stderr(&self) -> f64 {
        stderr(&self.bags)
    }
}

/// u4 (and u6 when the 6-point data and templates are there) in the
/// seed-001 conventions (docs/physics.md §6), with N_K and the 6-point
/// integrals over R^d with K_W (`w`); means over all tuples.
pub fn seed001_estimates(arch: &ArchSpec, dev: &Deviations, w: &Templates) -> (Estimate, Option<Estimate>) {
    let k = arch.k();
    let ts4 = tuples(k, 4);
    let u4 = |d4: &[f64]| ts4.iter().zip(d4).map(|(t, v)| -v / w.prod(t)).sum::<f64>() / ts4.len() as f64;
    let e4 = Estimate::of(dev, &[4], |d| u4(d[0]));
    if !(dev.per_bag.contains_key(&6) && !w.two_vertex.is_empty()) {
        return (e4, None);
    }
    let ts6 = tuples(k, 6);
    let kmat = arch.kernel_matrix();
    let u6 = |d4: &[f64], d6: &[f64]| {
        let u4v = u4(d4);
        ts6.iter()
            .zip(d6)
            .map(|(t, v)| {
                let disc: f64 = pair_quad_splits()
                    .iter()
                    .map(|&((a, b), q)| {
                        let mut quad = [t[q[0]], t[q[1]], t[q[2]], t[q[3]]];
                        quad.sort_unstable();
                        kmat[t[a]][t[b]] * d4[tuple_index(k, &quad)]
                    })
                    .sum();
                let kappa6 = v - disc;
                (u4v * u4v * w.two_vertex(t) - kappa6) / w.prod(t)
            })
            .sum::<f64>()
            / ts6.len() as f64
    };
    let e6 = Estimate::of(dev, &[4, 6], |d| u6(d[0], d[1]));
    (e4, Some(e6))
}

