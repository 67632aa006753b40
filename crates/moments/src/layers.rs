//! Deep nets (docs/physics.md §8): per layer and input, the kernel `K^(l)`,
//! the connected 4-point function and the excess kurtosis of unit 0's
//! pre-activation, with bag errors, beside the layer recursion and (relu,
//! `C_b = 0`) the exact finite-width kurtosis. Writes `layers.parquet`.

pub use nnqft_stats::{jackknife, kurtosis, pooled};
use crate::reduce::{bag_sums, load_cached, store_cached};
use anyhow::Result;
use nnqft_core::deep::layer_theory;
use nnqft_core::{ArchSpec, Pipeline};
use nnqft_store::tables::Table;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Per-bag moments of one deep (arch, width): `bags[b][c] = (mean z^2,
/// mean z^4)` of column `c` in file order (outputs, then layers 1..L).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerReduced {
    pub key: String,
    pub arch: String,
    pub width: usize,
    pub bags: Vec<Vec<(f64, f64)>>,
}

/// `DATA/cache/layers/arch=A/width=N.json`.
pub fn cache_path(data: &Path, arch: &str, width: usize) -> PathBuf {
    data.join("cache").join("layers").join(format!("arch={arch}")).join(format!("width={width}.json"))
}

pub(crate) fn key(p: &Pipeline, arch: &ArchSpec, width: usize) -> String {
    nnqft_store::keys::layers_key(p, arch, width)
}

/// (layer, point) of column `c` of a part with `k` inputs and `layers` hidden layers.
fn column_layer(c: usize, k: usize, layers: usize) -> (usize, usize) {
    if c < k { (layers + 1, c) } else { ((c - k) / k + 1, (c - k) % k) }
}

/// Reduces every deep (arch, width): cached results whose key matches are
/// loaded, the rest are read part by part (in parallel; per-bag sums are
/// added in part order, so results do not depend on the thread count).
pub fn reduce_layers(p: &Pipeline, data: &Path, force: bool) -> Result<Vec<LayerReduced>> {
    let pairs: Vec<(usize, usize)> = p.arch_widths().into_iter().filter(|&(a, _)| p.sample.arch[a].hidden_layers > 1).collect();
    let mut done: Vec<Option<LayerReduced>> = pairs
        .iter()
        .map(|&(a, w)| {
            let arch = &p.sample.arch[a];
            load_cached(&cache_path(data, &arch.name, w), force, |r: &LayerReduced| r.key == key(p, arch, w))
        })
        .collect();
    let todo: Vec<usize> = (0..pairs.len()).filter(|&i| done[i].is_none()).collect();
    let todo_pairs: Vec<(usize, usize)> = todo.iter().map(|&i| pairs[i]).collect();
    let sums = bag_sums(
        p,
        data,
        &todo_pairs,
        "layers",
        |_, cols| -> Vec<(f64, f64)> {
            cols.iter()
                .map(|c| {
                    c.iter().fold((0.0, 0.0), |(s2, s4), &x| {
                        let x2 = (x as f64) * (x as f64);
                        (s2 + x2, s4 + x2 * x2)
                    })
                })
                .collect()
        },
        |acc, s| {
            acc.resize(s.len(), (0.0, 0.0));
            acc.iter_mut().zip(s).for_each(|(t, (s2, s4))| {
                t.0 += s2;
                t.1 += s4;
            });
        },
    )?;
    let n = p.sample.nets_per_bag as f64;
    for (&i, bags) in todo.iter().zip(sums) {
        let (a, w) = pairs[i];
        let arch = &p.sample.arch[a];
        let bags = bags.into_iter().map(|acc| acc.into_iter().map(|(s2, s4)| (s2 / n, s4 / n)).collect()).collect();
        let r = LayerReduced { key: key(p, arch, w), arch: arch.name.clone(), width: w, bags };
        store_cached(&cache_path(data, &arch.name, w), &r)?;
        done[i] = Some(r);
    }
    Ok(done.into_iter().map(|r| r.expect("every pair reduced")).collect())
}

/// Delete-one-bag jackknife of an estimate computed from a set of bags:
/// returns the bias-corrected estimate `B t(all) - (B - 1) mean_b t(-b)` and
/// its standard error `sqrt((B - 1) / B sum_b (t(-b) - mean)^2)`.
///
/// Ratios of moments (the kurtosis `m4 / m2^2 - 3`) computed per bag carry
/// an O(1 / nets) bias that grows with the tails (deep layers at small n);
/// pooling all bags and correcting by the jackknife removes it to O(1 / nets^2).
///
/// One row of `layers.parquet`.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerRow {
    pub arch: String,
    pub activation: String,
    pub c_w: f64,
    pub c_b: f64,
    pub width: usize,
    /// 1..=L + 1 (L + 1 is the output).
    pub layer: usize,
    pub point: usize,
    /// `K^(l)` = mean of z^2, with its bag error.
    pub k: f64,
    pub k_stderr: f64,
    /// Connected 4-point function `E z^4 - 3 (E z^2)^2`: all bags pooled,
    /// bias-corrected and with errors by the delete-one-bag [`jackknife`].
    pub g4c: f64,
    pub g4c_stderr: f64,
    /// Excess kurtosis `E z^4 / (E z^2)^2 - 3`, as `g4c`.
    pub kurtosis: f64,
    pub kurtosis_stderr: f64,
    /// The recursion's infinite-width `K^(l)`.
    pub k_theory: f64,
    /// The recursion's leading-order kurtosis `3 V / (n K^2)`.
    pub kurtosis_theory: f64,
    /// Exact finite-n kurtosis (relu, `C_b = 0`); NaN where none is known.
    pub kurtosis_exact: f64,
    /// (kurtosis - best prediction) / stderr; best = exact where known, else the recursion.
    pub z: f64,
    /// Heavy tails seen in the data (no exact variance for deep nets): one bag
    /// dominates the spread of the bags' E z^2 or E z^4 (Grubbs' test at
    /// [`crate::FLAG_ALPHA`]); None when no bag does.
    pub unreliable: Option<String>,
}

/// The rows of one reduced deep (arch, width).
pub fn layer_rows(arch: &ArchSpec, r: &LayerReduced) -> Vec<LayerRow> {
    let (k, layers) = (arch.k(), arch.hidden_layers);
    let (c_w, c_b) = arch.variances();
    let theory: Vec<_> = arch.inputs.iter().map(|x| layer_theory(arch, x, r.width)).collect();
    let nb = r.bags.len();
    let mut rows: Vec<LayerRow> = (0..k * (layers + 1))
        .map(|c| {
            let (layer, point) = column_layer(c, k, layers);
            let col: Vec<(f64, f64)> = r.bags.iter().map(|bag| bag[c]).collect();
            let stat = |f: &dyn Fn((f64, f64)) -> f64| jackknife(nb, |keep| f(pooled(&col, keep)));
            let (kk, k_se) = stat(&|(m2, _)| m2);
            let (g4c, g4c_se) = stat(&|(m2, m4)| m4 - 3.0 * m2 * m2);
            let (kurt, kurt_se) = stat(&kurtosis);
            let th = theory[point][layer - 1];
            let exact = th.exact;
            let best = if exact.is_finite() { exact } else { th.kurtosis };
            let unreliable = [("E z^2", 0usize), ("E z^4", 1)].into_iter().find_map(|(name, i)| {
                let v: Vec<f64> = col.iter().map(|&(m2, m4)| if i == 0 { m2 } else { m4 }).collect();
                let (g, crit) = nnqft_stats::grubbs(&v, crate::FLAG_ALPHA);
                (g > crit).then(|| format!("one bag dominates {name} (Grubbs {g:.2} > {crit:.2})"))
            });
            LayerRow {
                arch: arch.name.clone(),
                activation: arch.activation.name().to_string(),
                c_w,
                c_b,
                width: r.width,
                layer,
                point,
                k: kk,
                k_stderr: k_se,
                g4c,
                g4c_stderr: g4c_se,
                kurtosis: kurt,
                kurtosis_stderr: kurt_se,
                k_theory: th.k,
                kurtosis_theory: th.kurtosis,
                kurtosis_exact: exact,
                z: (kurt - best) / kurt_se,
                unreliable,
            }
        })
        .collect();
    rows.sort_by_key(|r| (r.point, r.layer));
    rows
}

/// Writes `layers.parquet`.
pub fn write_layers(path: &Path, rows: &[LayerRow], footer: &serde_json::Value) -> Result<()> {
    let mut t = Table::default();
    t.utf8("arch", rows.iter().map(|r| r.arch.clone()).collect())
        .utf8("activation", rows.iter().map(|r| r.activation.clone()).collect())
        .f64("c_w", rows.iter().map(|r| r.c_w).collect())
        .f64("c_b", rows.iter().map(|r| r.c_b).collect())
        .u32("width", rows.iter().map(|r| r.width as u32).collect())
        .u32("layer", rows.iter().map(|r| r.layer as u32).collect())
        .u32("point", rows.iter().map(|r| r.point as u32).collect());
    let cols: [(&str, fn(&LayerRow) -> f64); 10] = [
        ("K", |r| r.k),
        ("K_stderr", |r| r.k_stderr),
        ("g4c", |r| r.g4c),
        ("g4c_stderr", |r| r.g4c_stderr),
        ("kurtosis", |r| r.kurtosis),
        ("kurtosis_stderr", |r| r.kurtosis_stderr),
        ("K_theory", |r| r.k_theory),
        ("kurtosis_theory", |r| r.kurtosis_theory),
        ("kurtosis_exact", |r| r.kurtosis_exact),
        ("z", |r| r.z),
    ];
    for (name, f) in cols {
        t.f64(name, rows.iter().map(f).collect());
    }
    t.u8("unreliable", rows.iter().map(|r| r.unreliable.is_some() as u8).collect())
        .opt_utf8("unreliable_reason", rows.iter().map(|r| r.unreliable.clone()).collect());
    t.write(path, footer)
}

/// Writes `layers_bags.parquet`: per bag, layer and point the bag means of
/// z^2 (`m2`) and z^4 (`m4`), for fits with per-bag errors (the rg stage).
pub fn write_layer_bags(path: &Path, p: &Pipeline, reduced: &[LayerReduced], footer: &serde_json::Value) -> Result<()> {
    let (mut arch, mut width, mut layer, mut point, mut bag, mut m2, mut m4) = (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for r in reduced {
        let a = p.arch(&r.arch).expect("arch");
        for (b, cols) in r.bags.iter().enumerate() {
            for (c, &(x2, x4)) in cols.iter().enumerate() {
                let (l, pt) = column_layer(c, a.k(), a.hidden_layers);
                arch.push(r.arch.clone());
                width.push(r.width as u32);
                layer.push(l as u32);
                point.push(pt as u32);
                bag.push(b as u32);
                m2.push(x2);
                m4.push(x4);
            }
        }
    }
    let mut t = Table::default();
    t.utf8("arch", arch).u32("width", width).u32("layer", layer).u32("point", point).u32("bag", bag).f64("m2", m2).f64("m4", m4);
    t.write(path, footer)
}

/// The layer table as text (printed by the binary).
pub fn format_layers(rows: &[LayerRow]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<14} {:>5} {:>5} {:>5} {:>11} {:>11} {:>20} {:>11} {:>11} {:>6}",
        "arch", "width", "point", "layer", "K", "K theory", "kurtosis", "recursion", "exact", "z"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:<14} {:>5} {:>5} {:>5} {:>11.4e} {:>11.4e} {:>9.4} +- {:<7.4} {:>11.4} {:>11.4} {:>6.2}",
            r.arch, r.width, r.point, r.layer, r.k, r.k_theory, r.kurtosis, r.kurtosis_stderr, r.kurtosis_theory, r.kurtosis_exact, r.z
        );
    }
    s
}
