//! Deep nets (docs/physics.md §8, §11): per layer and input, the kernel
//! `K^(l)`, the connected 4-point function, the excess kurtosis and the
//! normalised 6- and 8-point cumulants c6, c8 of unit 0's pre-activation, with
//! bag errors, beside the leading-order recursions and the exact single-input
//! chain (`layers.parquet`); per layer every sorted tuple of the inputs of
//! orders 2, 4, 6 with its connected function beside the multi-input
//! leading-order theory (`layer_moments.parquet`).

pub use nnqft_stats::{jackknife, kurtosis, pooled};
use crate::reduce::{bag_sums, load_cached, store_cached};
use anyhow::Result;
use nnqft_core::chain::{ChainLayer, default_atoms, exact_chain};
use nnqft_core::deep::layer_theory;
use nnqft_core::tuples::{ProductTree, tuple_index, tuples, wick};
use nnqft_core::vertex::multi_input_theory;
use nnqft_core::{ArchSpec, Pipeline};
use std::collections::BTreeMap;
use nnqft_store::tables::Table;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The orders reduced per layer: 2, 4, 6 for `layer_moments.parquet`, 8 for c8.
pub const LAYER_ORDERS: [usize; 4] = [2, 4, 6, 8];

/// Per-bag moments of one deep (arch, width): `bags[b][l - 1][order][i]` =
/// the bag mean of `prod_j z^(l)(x_{t_j})` for tuple `i` of `tuples(k, order)`,
/// layer `l = 1..=L + 1`, orders [`LAYER_ORDERS`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerReduced {
    pub key: String,
    pub arch: String,
    pub width: usize,
    pub bags: Vec<Vec<BTreeMap<usize, Vec<f64>>>>,
}

impl LayerReduced {
    /// `(E z^2, E z^4, E z^6, E z^8)` of bag `b`, layer `l`, input `a`.
    fn powers(&self, k: usize, b: usize, l: usize, a: usize) -> [f64; 4] {
        LAYER_ORDERS.map(|o| self.bags[b][l - 1][&o][tuple_index(k, &vec![a; o])])
    }
}

/// `DATA/cache/layers/arch=A/width=N.json`.
pub fn cache_path(data: &Path, arch: &str, width: usize) -> PathBuf {
    data.join("cache").join("layers").join(format!("arch={arch}")).join(format!("width={width}.json"))
}

pub(crate) fn key(p: &Pipeline, arch: &ArchSpec, width: usize) -> String {
    nnqft_store::keys::layers_key(p, arch, width)
}

/// The columns of layer `l` (1..=L + 1) in a part with `k` inputs, `d_out`
/// outputs and `layers` hidden layers: the outputs first (output 0 is layer
/// L + 1; every output has its law), then layers 1..L.
fn layer_columns(l: usize, k: usize, d_out: usize, layers: usize) -> std::ops::Range<usize> {
    if l == layers + 1 { 0..k } else { k * (d_out + l - 1)..k * (d_out + l) }
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
        |a, cols| -> Vec<BTreeMap<usize, Vec<f64>>> {
            let arch = &p.sample.arch[a];
            let tree = ProductTree::new(arch.k(), &LAYER_ORDERS);
            (1..=arch.hidden_layers + 1)
                .map(|l| {
                    let refs: Vec<&[f32]> = cols[layer_columns(l, arch.k(), arch.d_out, arch.hidden_layers)].iter().map(|c| c.as_slice()).collect();
                    tree.sums(&refs, None)
                })
                .collect()
        },
        |acc, s| {
            if acc.is_empty() {
                *acc = s;
                return;
            }
            for (t, layer) in acc.iter_mut().zip(s) {
                nnqft_core::tuples::add_sums(t, layer);
            }
        },
    )?;
    let n = p.sample.nets_per_bag as f64;
    for (&i, bags) in todo.iter().zip(sums) {
        let (a, w) = pairs[i];
        let arch = &p.sample.arch[a];
        let bags = bags
            .into_iter()
            .map(|layers| layers.into_iter().map(|m| m.into_iter().map(|(o, v)| (o, v.into_iter().map(|x| x / n).collect())).collect()).collect())
            .collect();
        let r = LayerReduced { key: key(p, arch, w), arch: arch.name.clone(), width: w, bags };
        store_cached(&cache_path(data, &arch.name, w), &r)?;
        done[i] = Some(r);
    }
    Ok(done.into_iter().map(|r| r.expect("every pair reduced")).collect())
}

/// One row of `layers.parquet`. Ratios of moments (the kurtosis, c6, c8)
/// computed per bag carry an O(1 / nets) bias that grows with the tails (deep
/// layers at small n); they are computed from all bags pooled and corrected
/// by the delete-one-bag [`jackknife`], which also gives their errors.
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
    /// Connected 4-point function `E z^4 - 3 (E z^2)^2`.
    pub g4c: f64,
    pub g4c_stderr: f64,
    /// Excess kurtosis `E z^4 / (E z^2)^2 - 3`.
    pub kurtosis: f64,
    pub kurtosis_stderr: f64,
    /// `c6 = (mu6 - 15 mu4 mu2 + 30 mu2^3) / mu2^3`.
    pub c6: f64,
    pub c6_stderr: f64,
    /// `c8 = (mu8 - 28 mu6 mu2 - 35 mu4^2 + 420 mu4 mu2^2 - 630 mu2^4) / mu2^4`.
    pub c8: f64,
    pub c8_stderr: f64,
    /// The recursion's infinite-width `K^(l)`.
    pub k_theory: f64,
    /// `K^(l)` with its 1/n correction.
    pub k_nlo: f64,
    /// Leading-order kurtosis (`1/n`), c6 (`1/n^2`) and c8 (`1/n^3`).
    pub kurtosis_theory: f64,
    pub c6_theory: f64,
    pub c8_theory: f64,
    /// The exact single-input chain: `E z^2`, kurtosis, c6, c8 (NaN only where it does not apply).
    pub k_exact: f64,
    pub kurtosis_exact: f64,
    pub c6_exact: f64,
    pub c8_exact: f64,
    /// (kurtosis - best prediction) / stderr; best = exact where known, else the recursion.
    pub z: f64,
    /// The smallest, over `E z^2 .. E z^8`, of the bags' spread over its exact
    /// value from the chain (about 1 when the bag errors are honest).
    pub spread_ratio: f64,
    /// Heavy tails: for one of `E z^2 .. E z^8`, the bags spread far less than
    /// the chain says they should ([`crate::LOW_SPREAD`], chi-square p below
    /// [`crate::FLAG_ALPHA`]: the tail events that carry its variance were not
    /// sampled) or one bag dominates (Grubbs' test); None otherwise.
    pub unreliable: Option<String>,
}

pub use nnqft_stats::normalised_cumulants;

/// The exact chain of every input of `arch` at width `n` (NaN rows where it
/// does not apply): computed once per (arch, width) and passed to
/// [`layer_rows`] and [`layer_moment_rows`].
pub fn chains(arch: &ArchSpec, n: usize) -> Vec<Vec<ChainLayer>> {
    arch.inputs.iter().map(|x| exact_chain(arch, x, n, default_atoms(arch.activation))).collect()
}

/// The rows of one reduced deep (arch, width).
pub fn layer_rows(arch: &ArchSpec, r: &LayerReduced, exact: &[Vec<ChainLayer>], nets_per_bag: u64) -> Vec<LayerRow> {
    let (k, layers) = (arch.k(), arch.hidden_layers);
    let (c_w, c_b) = arch.variances();
    let theory: Vec<_> = arch.inputs.iter().map(|x| layer_theory(arch, x, r.width)).collect();
    let nb = r.bags.len();
    let mut rows = Vec::new();
    for point in 0..k {
        for layer in 1..=layers + 1 {
            let col: Vec<[f64; 4]> = (0..nb).map(|b| r.powers(k, b, layer, point)).collect();
            let pooled4 = |keep: &[usize]| -> [f64; 4] {
                let mut m = [0.0; 4];
                for &b in keep {
                    for i in 0..4 {
                        m[i] += col[b][i] / keep.len() as f64;
                    }
                }
                m
            };
            let stat = |f: &dyn Fn([f64; 4]) -> f64| jackknife(nb, |keep| f(pooled4(keep)));
            let (kk, k_se) = stat(&|m| m[0]);
            let (g4c, g4c_se) = stat(&|m| m[1] - 3.0 * m[0] * m[0]);
            let (kurt, kurt_se) = stat(&|m| normalised_cumulants(m)[1]);
            let (c6, c6_se) = stat(&|m| normalised_cumulants(m)[2]);
            let (c8, c8_se) = stat(&|m| normalised_cumulants(m)[3]);
            let th = theory[point][layer - 1];
            let ex = exact[point][layer - 1];
            let best = if ex.kurtosis.is_finite() { ex.kurtosis } else { th.kurtosis };
            // Per moment E z^2j: the bags' spread against the exact one from
            // the chain (Var z^2j = E z^4j - (E z^2j)^2), and Grubbs' test.
            let spreads: Vec<f64> = (0..4)
                .map(|i| {
                    let p2 = 2 * (i + 1);
                    let exact_sd = ((ex.z_moment(2 * p2) - ex.z_moment(p2).powi(2)) / nets_per_bag as f64).sqrt();
                    nnqft_stats::mean_std(&col.iter().map(|m| m[i]).collect::<Vec<_>>()).1 / exact_sd
                })
                .collect();
            let unreliable = (0..4).find_map(|i| {
                let v: Vec<f64> = col.iter().map(|m| m[i]).collect();
                let ratio = if spreads[i].is_finite() { spreads[i] } else { 1.0 };
                crate::unreliable_reason(ratio, nnqft_stats::grubbs(&v, crate::FLAG_ALPHA), nb)
                    .map(|why| format!("E z^{}: {why}{}", 2 * (i + 1), if ratio < crate::LOW_SPREAD { " (tails not sampled)" } else { "" }))
            });
            rows.push(LayerRow {
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
                c6,
                c6_stderr: c6_se,
                c8,
                c8_stderr: c8_se,
                k_theory: th.k,
                k_nlo: th.k_nlo,
                kurtosis_theory: th.kurtosis,
                c6_theory: th.c6,
                c8_theory: th.c8,
                k_exact: ex.mu2,
                kurtosis_exact: ex.kurtosis,
                c6_exact: ex.c6,
                c8_exact: ex.c8,
                z: (kurt - best) / kurt_se,
                spread_ratio: spreads.iter().copied().fold(f64::INFINITY, f64::min),
                unreliable,
            });
        }
    }
    rows
}

/// A named Float64 column of a table of `R` rows.
type Col<R> = (&'static str, fn(&R) -> f64);

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
    let cols: [Col<LayerRow>; 24] = [
        ("K", |r| r.k),
        ("K_stderr", |r| r.k_stderr),
        ("g4c", |r| r.g4c),
        ("g4c_stderr", |r| r.g4c_stderr),
        ("kurtosis", |r| r.kurtosis),
        ("kurtosis_stderr", |r| r.kurtosis_stderr),
        ("c6", |r| r.c6),
        ("c6_stderr", |r| r.c6_stderr),
        ("c8", |r| r.c8),
        ("c8_stderr", |r| r.c8_stderr),
        ("K_theory", |r| r.k_theory),
        ("K_nlo", |r| r.k_nlo),
        ("kurtosis_theory", |r| r.kurtosis_theory),
        ("c6_theory", |r| r.c6_theory),
        ("c8_theory", |r| r.c8_theory),
        ("K_exact", |r| r.k_exact),
        ("kurtosis_exact", |r| r.kurtosis_exact),
        ("c6_exact", |r| r.c6_exact),
        ("c8_exact", |r| r.c8_exact),
        ("z", |r| r.z),
        ("z_c6", |r| (r.c6 - r.c6_exact) / r.c6_stderr),
        ("z_c8", |r| (r.c8 - r.c8_exact) / r.c8_stderr),
        ("z_K", |r| (r.k - r.k_exact) / r.k_stderr),
        ("spread_ratio", |r| r.spread_ratio),
    ];
    for (name, f) in cols {
        t.f64(name, rows.iter().map(f).collect());
    }
    t.u8("unreliable", rows.iter().map(|r| r.unreliable.is_some() as u8).collect())
        .opt_utf8("unreliable_reason", rows.iter().map(|r| r.unreliable.clone()).collect());
    t.write(path, footer)
}

/// Writes `layers_bags.parquet`: per bag, layer and point the bag means of
/// z^2, z^4, z^6, z^8 (`m2`, `m4`, `m6`, `m8`), for fits with per-bag errors (the rg stage).
pub fn write_layer_bags(path: &Path, p: &Pipeline, reduced: &[LayerReduced], footer: &serde_json::Value) -> Result<()> {
    let (mut arch, mut width, mut layer, mut point, mut bag) = (vec![], vec![], vec![], vec![], vec![]);
    let mut m: [Vec<f64>; 4] = Default::default();
    for r in reduced {
        let a = p.arch(&r.arch).expect("arch");
        for b in 0..r.bags.len() {
            for pt in 0..a.k() {
                for l in 1..=a.hidden_layers + 1 {
                    arch.push(r.arch.clone());
                    width.push(r.width as u32);
                    layer.push(l as u32);
                    point.push(pt as u32);
                    bag.push(b as u32);
                    for (col, v) in m.iter_mut().zip(r.powers(a.k(), b, l, pt)) {
                        col.push(v);
                    }
                }
            }
        }
    }
    let mut t = Table::default();
    let [m2, m4, m6, m8] = m;
    t.utf8("arch", arch).u32("width", width).u32("layer", layer).u32("point", point).u32("bag", bag);
    t.f64("m2", m2).f64("m4", m4).f64("m6", m6).f64("m8", m8);
    t.write(path, footer)
}

/// One row of `layer_moments.parquet`: a sorted tuple of inputs at one layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerMomentRow {
    pub arch: String,
    pub width: usize,
    pub layer: usize,
    pub order: usize,
    pub tuple: Vec<usize>,
    /// `E prod z(x_t)` over all bags, with its bag error.
    pub mean: f64,
    pub stderr: f64,
    /// The connected (cumulant) function: the mean minus its Wick pairings
    /// (order 4) and minus the (4, 2) splits plus twice the Wick pairings
    /// (order 6); pooled and jackknifed over bags.
    pub connected: f64,
    pub connected_stderr: f64,
    /// Leading order: `K^(l)_ab` (order 2), the 4-point vertex recursion
    /// (order 4); NaN for order 6.
    pub theory: f64,
    /// The exact chain where every index of the tuple is the same input; else NaN.
    pub exact: f64,
}

/// The connected function of sorted tuple `t` from the means `m[order][i]`.
fn connected(k: usize, t: &[usize], m: &dyn Fn(usize, usize) -> f64) -> f64 {
    let get = |sub: &[usize]| {
        let mut s = sub.to_vec();
        s.sort_unstable();
        m(s.len(), tuple_index(k, &s))
    };
    let g2 = |a: usize, b: usize| get(&[a, b]);
    match t.len() {
        2 => get(t),
        4 => get(t) - wick(t, g2),
        6 => {
            let mut splits = 0.0;
            for i in 0..6 {
                for j in i + 1..6 {
                    let rest: Vec<usize> = (0..6).filter(|&q| q != i && q != j).map(|q| t[q]).collect();
                    splits += g2(t[i], t[j]) * get(&rest);
                }
            }
            get(t) - splits + 2.0 * wick(t, g2)
        }
        o => panic!("connected functions of order 2, 4, 6 only, not {o}"),
    }
}

/// The rows of `layer_moments.parquet` for one reduced deep (arch, width).
pub fn layer_moment_rows(arch: &ArchSpec, r: &LayerReduced, exact: &[Vec<ChainLayer>]) -> Vec<LayerMomentRow> {
    let k = arch.k();
    let nb = r.bags.len();
    let lo = multi_input_theory(arch, r.width);
    let mut rows = Vec::new();
    for layer in 1..=arch.hidden_layers + 1 {
        for order in [2, 4, 6] {
            for (i, t) in tuples(k, order).iter().enumerate() {
                let pooled = |keep: &[usize], o: usize, j: usize| keep.iter().map(|&b| r.bags[b][layer - 1][&o][j]).sum::<f64>() / keep.len() as f64;
                let values: Vec<f64> = (0..nb).map(|b| r.bags[b][layer - 1][&order][i]).collect();
                let (mean, _) = nnqft_stats::mean_std(&values);
                let (conn, conn_se) = jackknife(nb, |keep| connected(k, t, &|o, j| pooled(keep, o, j)));
                let ex = if t.iter().all(|&a| a == t[0]) {
                    let c = exact[t[0]][layer - 1];
                    match order {
                        2 => c.mu2,
                        4 => c.kurtosis * c.mu2.powi(2),
                        _ => c.c6 * c.mu2.powi(3),
                    }
                } else {
                    f64::NAN
                };
                rows.push(LayerMomentRow {
                    arch: arch.name.clone(),
                    width: r.width,
                    layer,
                    order,
                    tuple: t.clone(),
                    mean,
                    stderr: nnqft_stats::stderr(&values),
                    connected: conn,
                    connected_stderr: conn_se,
                    theory: lo[layer - 1].connected(t),
                    exact: ex,
                });
            }
        }
    }
    rows
}

/// Writes `layer_moments.parquet`.
pub fn write_layer_moments(path: &Path, rows: &[LayerMomentRow], footer: &serde_json::Value) -> Result<()> {
    let mut t = Table::default();
    t.utf8("arch", rows.iter().map(|r| r.arch.clone()).collect())
        .u32("width", rows.iter().map(|r| r.width as u32).collect())
        .u32("layer", rows.iter().map(|r| r.layer as u32).collect())
        .u8("order", rows.iter().map(|r| r.order as u8).collect())
        .list_u16("tuple", &rows.iter().map(|r| r.tuple.iter().map(|&a| a as u16).collect()).collect::<Vec<Vec<u16>>>());
    let cols: [Col<LayerMomentRow>; 7] = [
        ("mean", |r| r.mean),
        ("stderr", |r| r.stderr),
        ("connected", |r| r.connected),
        ("connected_stderr", |r| r.connected_stderr),
        ("theory", |r| r.theory),
        ("exact", |r| r.exact),
        ("z", |r| (r.connected - if r.exact.is_finite() { r.exact } else { r.theory }) / r.connected_stderr),
    ];
    for (name, f) in cols {
        t.f64(name, rows.iter().map(f).collect());
    }
    t.write(path, footer)
}

/// The layer table as text (printed by the binary).
pub fn format_layers(rows: &[LayerRow]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<14} {:>5} {:>5} {:>5} {:>11} {:>11} {:>20} {:>11} {:>11} {:>6} {:>22} {:>11}",
        "arch", "width", "point", "layer", "K", "K theory", "kurtosis", "recursion", "exact", "z", "c6", "c6 exact"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:<14} {:>5} {:>5} {:>5} {:>11.4e} {:>11.4e} {:>9.4} +- {:<7.4} {:>11.4} {:>11.4} {:>6.2} {:>10.4} +- {:<8.4} {:>11.4}",
            r.arch, r.width, r.point, r.layer, r.k, r.k_theory, r.kurtosis, r.kurtosis_stderr, r.kurtosis_theory, r.kurtosis_exact, r.z, r.c6, r.c6_stderr, r.c6_exact
        );
    }
    s
}
