//! # nnqft-deviations
//!
//! What the coupling analyses (fit, rg) read: the measured deviations
//! `G^b(t) - G_GP(t)` of every bag and tuple, and the exact finite-N ones,
//! from `moments_bags.parquet` and `moments.parquet`, refused when those
//! tables are stale; and the estimates built directly on them (the seed-001
//! couplings u4, u6). Errors come from the bags.

use anyhow::{bail, Context, Result};
use arrow::array::{Array, Float64Array, ListArray, StringArray, UInt16Array, UInt32Array, UInt8Array};
use nnqft_core::boxint::Templates;
use nnqft_core::tuples::{pair_quad_splits, tuple_index, tuples, wick};
use nnqft_core::{ArchSpec, Pipeline};
use nnqft_stats::stderr;
use nnqft_store::tables::{column, read_table, require_current};
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
    /// order -> exact finite-N `G - G_GP` per tuple (THEORY section 4).
    pub exact: BTreeMap<usize, Vec<f64>>,
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
        for &o in &p.moments.orders {
            let n = tuples(arch.k(), o).len();
            per_bag.insert(o, vec![vec![f64::NAN; n]; p.sample.bags as usize]);
            exact.insert(o, vec![f64::NAN; n]);
        }
        out.insert((a.clone(), *w), Deviations { per_bag, exact });
    }
    // Per-bag values, then the exact deviations.
    walk_rows(p, &bpath, &mut out, |dev, arch, o, t, batch, r| {
        let Some(slot) = dev.per_bag.get_mut(&o) else { return Ok(()) };
        let b = column::<UInt32Array>(&bpath, batch, "bag")?.value(r) as usize;
        if b >= slot.len() {
            bail!("{}: row {r}: bag {b} but the pipeline has {} bags; rerun nnqft-moments", bpath.display(), slot.len());
        }
        let gp = wick(t, |i, j| arch.kernel(&arch.inputs[i], &arch.inputs[j]));
        slot[b][tuple_index(arch.k(), t)] = column::<Float64Array>(&bpath, batch, "value")?.value(r) - gp;
        Ok(())
    })?;
    walk_rows(p, &mpath, &mut out, |dev, arch, o, t, batch, r| {
        if let Some(slot) = dev.exact.get_mut(&o) {
            slot[tuple_index(arch.k(), t)] = column::<Float64Array>(&mpath, batch, "exact_delta")?.value(r);
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

/// Calls `f(deviations, arch, order, tuple, batch, row)` for every row of
/// the long table at `path` whose (arch, width) is in `out`.
fn walk_rows(
    p: &Pipeline,
    path: &Path,
    out: &mut BTreeMap<(String, usize), Deviations>,
    mut f: impl FnMut(&mut Deviations, &ArchSpec, usize, &[usize], &arrow::record_batch::RecordBatch, usize) -> Result<()>,
) -> Result<()> {
    for batch in read_table(path)? {
        let arch_c = column::<StringArray>(path, &batch, "arch")?;
        let width_c = column::<UInt32Array>(path, &batch, "width")?;
        let order_c = column::<UInt8Array>(path, &batch, "order")?;
        let tuple_c = column::<ListArray>(path, &batch, "tuple")?;
        for r in 0..batch.num_rows() {
            let key = (arch_c.value(r).to_string(), width_c.value(r) as usize);
            let Some(dev) = out.get_mut(&key) else { continue };
            let arch = p.arch(&key.0).expect("validated");
            let t = list_tuple(tuple_c, r, arch.k()).with_context(|| format!("{}: row {r}", path.display()))?;
            f(dev, arch, order_c.value(r) as usize, &t, &batch, r)?;
        }
    }
    Ok(())
}

fn list_tuple(c: &ListArray, r: usize, k: usize) -> Result<Vec<usize>> {
    let v = c.value(r);
    let v = v.as_any().downcast_ref::<UInt16Array>().context("tuple is not a List<UInt16>")?;
    let t: Vec<usize> = v.values().iter().map(|&x| x as usize).collect();
    if t.iter().any(|&a| a >= k) || t.windows(2).any(|w| w[0] > w[1]) {
        bail!("tuple {t:?} is not a sorted tuple of {k} inputs");
    }
    Ok(t)
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
/// seed-001 conventions (THEORY section 6), with N_K and the 6-point
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

