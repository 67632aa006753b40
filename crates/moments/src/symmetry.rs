//! Symmetry tests (`[[symmetry.test]]`, docs/physics.md §13): the
//! correlators of an ensemble beside those of its image under a
//! transformation, their difference per tuple in standard errors, a
//! Hotelling chi-square over all tuples of an order, and the exact
//! prediction of both.
//!
//! - `output_rotation`: one seeded Haar rotation R of the D outputs applied
//!   to every net, so the image is measured on the same nets; the tensors run
//!   over the variables `(output i, point a)`, numbered `i P + a` for the
//!   test's P points. Even orders also get the invariant-tensor
//!   decomposition of `G_{i_1..i_n}` at one input and its residual.
//! - `input_rotation` / `translation`: the ensemble against its `image`
//!   arch, sampled independently at the transformed inputs (output 0); the
//!   tensors run over the test's points (default: every input).
//!
//! Per bag b the difference `D^b = G^b - G^b_image` is one draw of an iid
//! vector (the bags are independent in both cases), so the Hotelling test
//! of `E D = 0` ([`nnqft_stats::hotelling`]) is exact for Gaussian bags and
//! accounts for the correlation between tuples.

use crate::reduce::{bag_sums, load_cached, store_cached};
use crate::Theory;
use anyhow::Result;
use nnqft_core::exact::Accuracy;
use nnqft_core::means::MeanTheory;
use nnqft_core::pipeline::{SymmetryKind, SymmetryTest};
use nnqft_core::rng::StreamKey;
use nnqft_core::symmetry::{decompose, index_tuples, rotation};
use nnqft_core::tuples::{ProductTree, add_sums, tuple_index, tuples};
use nnqft_core::{ArchSpec, Pipeline};
use nnqft_stats::{Hotelling, hotelling, mean_std};
use nnqft_store::tables::Table;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use nnqft_store::keys::{SYMMETRY_VERSION, symmetry_hash, symmetry_key as test_key};

/// A test's p-value below this says "not invariant" (and, against the
/// exact prediction, "disagrees").
pub const ALPHA: f64 = 0.01;

/// `DATA/cache/symmetry/test=T/width=N.json`.
pub fn cache_path(data: &Path, test: &str, width: usize) -> PathBuf {
    data.join("cache").join("symmetry").join(format!("test={test}")).join(format!("width={width}.json"))
}

/// Per-bag correlators of one (test, width): `g[b][order][i]` of the
/// ensemble and `image[b][order][i]` of its image, tuple i of
/// `tuples(variables, order)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reduced {
    pub key: String,
    pub test: String,
    pub width: usize,
    pub g: Vec<BTreeMap<usize, Vec<f64>>>,
    pub image: Vec<BTreeMap<usize, Vec<f64>>>,
}

/// The output rotation of a test, row-major `D x D`.
pub fn test_rotation(p: &Pipeline, t: &SymmetryTest, d: usize) -> Vec<f64> {
    let label = format!("symmetry/{}", t.name);
    rotation(d, &mut StreamKey { seed: t.seed(p), arch: &label, width: 0, bag: 0, part: 0 }.stream())
}

type Sums = (BTreeMap<usize, Vec<f64>>, BTreeMap<usize, Vec<f64>>);

fn add_pair(acc: &mut Sums, s: Sums) {
    add_sums(&mut acc.0, s.0);
    add_sums(&mut acc.1, s.1);
}

fn slices(c: &[Vec<f64>]) -> Vec<&[f64]> {
    c.iter().map(Vec::as_slice).collect()
}

fn per_net(bags: Vec<BTreeMap<usize, Vec<f64>>>, n: f64) -> Vec<BTreeMap<usize, Vec<f64>>> {
    bags.into_iter()
        .map(|mut b| {
            b.values_mut().for_each(|v| v.iter_mut().for_each(|x| *x /= n));
            b
        })
        .collect()
}

/// Reduces one test at every width it is run at (cached per width).
pub fn reduce_test(p: &Pipeline, data: &Path, t: &SymmetryTest, force: bool) -> Result<Vec<Reduced>> {
    let widths = t.widths(p);
    let index = |name: &str| p.sample.arch.iter().position(|a| a.name == name).expect("validated arch");
    let ai = index(&t.arch);
    let arch = &p.sample.arch[ai];
    let orders = t.orders();
    let v = t.variables(arch);
    let tree = ProductTree::new(v, &orders);
    let n = p.sample.nets_per_bag as f64;
    let mut out = Vec::new();
    for &w in &widths {
        let key = test_key(p, t, w);
        let path = cache_path(data, &t.name, w);
        if let Some(r) = load_cached(&path, force, |r: &Reduced| r.key == key) {
            out.push(r);
            continue;
        }
        let label = format!("symmetry {}", t.name);
        let (g, image) = match t.kind {
            SymmetryKind::OutputRotation => {
                let (k, d) = (arch.k(), arch.d_out);
                let points = t.points(arch);
                let r = test_rotation(p, t, d);
                let sums = bag_sums(
                    p,
                    data,
                    &[(ai, w)],
                    &label,
                    |_, cols| {
                        let rows = cols[0].len();
                        let mut f: Vec<Vec<f64>> = Vec::with_capacity(v);
                        let mut rf: Vec<Vec<f64>> = Vec::with_capacity(v);
                        for o in 0..d {
                            for &a in &points {
                                f.push(cols[o * k + a].iter().map(|&x| x as f64).collect());
                                let mut y = vec![0.0; rows];
                                for j in 0..d {
                                    let rij = r[o * d + j];
                                    for (yy, &x) in y.iter_mut().zip(&cols[j * k + a]) {
                                        *yy += rij * x as f64;
                                    }
                                }
                                rf.push(y);
                            }
                        }
                        (tree.sums(&slices(&f), None), tree.sums(&slices(&rf), None))
                    },
                    add_pair,
                )?;
                let (g, image): (Vec<_>, Vec<_>) = sums.into_iter().next().expect("one pair").into_iter().unzip();
                (g, image)
            }
            _ => {
                let bi = index(t.image.as_deref().expect("validated image"));
                let points = t.points(arch);
                let mut sums = bag_sums(
                    p,
                    data,
                    &[(ai, w), (bi, w)],
                    &label,
                    |_, cols| {
                        let refs: Vec<&[f32]> = points.iter().map(|&a| cols[a].as_slice()).collect();
                        tree.sums(&refs, None)
                    },
                    add_sums,
                )?;
                let image = sums.pop().expect("image");
                (sums.pop().expect("arch"), image)
            }
        };
        let r = Reduced { key, test: t.name.clone(), width: w, g: per_net(g, n), image: per_net(image, n) };
        store_cached(&path, &r)?;
        out.push(r);
    }
    Ok(out)
}

/// One tuple of one (test, width): a row of `symmetry.parquet`.
#[derive(Clone, Debug, PartialEq)]
pub struct TupleRow {
    pub test: String,
    pub width: usize,
    pub order: usize,
    /// Sorted variable indices (see the module docs).
    pub tuple: Vec<usize>,
    /// Output index of each slot.
    pub outputs: Vec<usize>,
    /// Input index of each slot.
    pub inputs: Vec<usize>,
    pub g: f64,
    pub g_stderr: f64,
    pub g_exact: f64,
    pub g_image: f64,
    pub g_image_stderr: f64,
    pub g_image_exact: f64,
    /// g - g_image, mean over bags of the per-bag differences.
    pub diff: f64,
    pub diff_stderr: f64,
    pub diff_exact: f64,
    /// diff / diff_stderr.
    pub z: f64,
    /// (diff - diff_exact) / diff_stderr.
    pub z_exact: f64,
}

/// One (test, width, order): a row of `symmetry_tests.parquet`.
#[derive(Clone, Debug, PartialEq)]
pub struct TestRow {
    pub test: String,
    pub kind: SymmetryKind,
    pub arch: String,
    pub image: String,
    pub width: usize,
    pub order: usize,
    pub tuples: usize,
    /// Hotelling test of diff = 0 (invariance).
    pub invariance: Hotelling,
    /// Hotelling test of diff = diff_exact (NaN where the exact difference is not known).
    pub exact: Hotelling,
    pub max_abs_z: f64,
    /// Output rotations, even orders: the coefficient of the invariant
    /// (pairing) tensors of `G_{i_1..i_n}(x_a, .., x_a)` at the first point
    /// (mean over pairings), its standard error and exact value.
    pub coefficient: f64,
    pub coefficient_stderr: f64,
    pub coefficient_exact: f64,
    /// RMS over entries of the residual of that decomposition (every point).
    pub residual_rms: f64,
    /// Largest |residual| / stderr over the entries.
    pub residual_max_z: f64,
    pub verdict: String,
}

/// Exact correlators of a test's ensemble and its image.
pub struct Exact {
    kind: SymmetryKind,
    arch: ArchSpec,
    points: Vec<usize>,
    r: Vec<f64>,
    /// Output rotations: every output-index moment (docs/physics.md §12).
    outputs: Option<MeanTheory>,
    /// Input rotations and translations: the arch's and its image's theories.
    theory: Option<Theory>,
    image: Option<Theory>,
}

impl Exact {
    pub fn new(p: &Pipeline, t: &SymmetryTest) -> Self {
        let arch = p.arch(&t.arch).expect("validated arch").clone();
        let orders = t.orders();
        let mut even: Vec<usize> = orders.iter().copied().filter(|o| o % 2 == 0).collect();
        if !even.contains(&2) {
            even.push(2);
        }
        let theory_orders = if arch.has_means() { orders.clone() } else { even.clone() };
        let image = t.image.as_deref().map(|n| Theory::new(p.arch(n).expect("validated image"), &theory_orders));
        let outputs = t.kind == SymmetryKind::OutputRotation;
        Exact {
            kind: t.kind,
            points: t.points(&arch),
            r: if outputs { test_rotation(p, t, arch.d_out) } else { Vec::new() },
            outputs: outputs.then(|| MeanTheory::new(&arch, &orders, Accuracy::default())),
            theory: (!outputs).then(|| Theory::new(&arch, &theory_orders)),
            image,
            arch,
        }
    }

    /// The (outputs, inputs) of a tuple's slots.
    pub fn slots(&self, t: &[usize]) -> (Vec<usize>, Vec<usize>) {
        match self.kind {
            SymmetryKind::OutputRotation => {
                let np = self.points.len();
                (t.iter().map(|u| u / np).collect(), t.iter().map(|u| self.points[u % np]).collect())
            }
            _ => (vec![0; t.len()], t.iter().map(|&u| self.points[u]).collect()),
        }
    }

    /// Exact `E prod f` of one output-0 tuple of inputs from a moments theory.
    fn input_moment(th: &Theory, has_means: bool, t: &[usize], n: usize) -> f64 {
        match th {
            Theory::Means(m) => m.moment(t, n),
            _ if !has_means && t.len() % 2 == 1 => 0.0,
            _ => th.gp(t) + th.delta(t, n),
        }
    }

    /// (exact G, exact G of the image) of tuple `t` at width `n`; NaN where not known.
    pub fn values(&self, t: &[usize], n: usize) -> (f64, f64) {
        let (outs, ins) = self.slots(t);
        match self.kind {
            SymmetryKind::OutputRotation => {
                // E prod (R f)_{i_r} = sum over output tuples j of prod R_{i_r j_r} E prod f_{j_r}
                let th = self.outputs.as_ref().expect("output theory");
                let d = self.arch.d_out;
                let k = self.arch.k();
                let mut cache: std::collections::HashMap<Vec<usize>, f64> = std::collections::HashMap::new();
                let mut moment = |js: &[usize]| -> f64 {
                    let mut key: Vec<usize> = js.iter().zip(&ins).map(|(j, a)| j * k + a).collect();
                    key.sort_unstable();
                    *cache.entry(key).or_insert_with(|| th.moment_outputs(&ins, js, n))
                };
                let g = moment(&outs);
                let mut image = 0.0;
                let mut js = vec![0usize; t.len()];
                loop {
                    let w: f64 = outs.iter().zip(&js).map(|(i, j)| self.r[i * d + j]).product();
                    if w != 0.0 {
                        image += w * moment(&js);
                    }
                    // next output tuple, odometer order
                    let Some(pos) = js.iter().rposition(|&j| j + 1 < d) else { break };
                    js[pos] += 1;
                    js[pos + 1..].iter_mut().for_each(|j| *j = 0);
                }
                (g, image)
            }
            _ => {
                let image = self.image.as_ref().expect("image theory");
                let means = self.arch.has_means();
                let theory = self.theory.as_ref().expect("arch theory");
                (Self::input_moment(theory, means, &ins, n), Self::input_moment(image, means, &ins, n))
            }
        }
    }
}

fn bag_values(bags: &[BTreeMap<usize, Vec<f64>>], order: usize, i: usize) -> Vec<f64> {
    bags.iter().map(|b| b[&order][i]).collect()
}

/// The rows of one reduced (test, width).
pub fn rows(p: &Pipeline, t: &SymmetryTest, ex: &Exact, r: &Reduced) -> (Vec<TupleRow>, Vec<TestRow>) {
    let arch = p.arch(&t.arch).expect("validated arch");
    let v = t.variables(arch);
    let nb = r.g.len();
    let sq = (nb as f64).sqrt();
    let (mut tuple_rows, mut test_rows) = (Vec::new(), Vec::new());
    for order in t.orders() {
        let ts = tuples(v, order);
        let mut diffs: Vec<Vec<f64>> = vec![Vec::with_capacity(ts.len()); nb];
        let mut shifted: Vec<Vec<f64>> = vec![Vec::with_capacity(ts.len()); nb];
        let mut mine = Vec::new();
        for (i, tup) in ts.iter().enumerate() {
            let (g, h) = (bag_values(&r.g, order, i), bag_values(&r.image, order, i));
            let d: Vec<f64> = g.iter().zip(&h).map(|(a, b)| a - b).collect();
            let ((gm, gs), (hm, hs), (dm, ds)) = (mean_std(&g), mean_std(&h), mean_std(&d));
            let (ge, he) = ex.values(tup, r.width);
            let de = ge - he;
            for (b, x) in d.iter().enumerate() {
                diffs[b].push(*x);
                shifted[b].push(x - de);
            }
            let (outputs, inputs) = ex.slots(tup);
            mine.push(TupleRow {
                test: t.name.clone(),
                width: r.width,
                order,
                tuple: tup.clone(),
                outputs,
                inputs,
                g: gm,
                g_stderr: gs / sq,
                g_exact: ge,
                g_image: hm,
                g_image_stderr: hs / sq,
                g_image_exact: he,
                diff: dm,
                diff_stderr: ds / sq,
                diff_exact: de,
                z: dm / (ds / sq),
                z_exact: (dm - de) / (ds / sq),
            });
        }
        let invariance = hotelling(&diffs);
        let exact = if mine.iter().all(|m| m.diff_exact.is_finite()) { hotelling(&shifted) } else { hotelling(&[]) };
        let max_abs_z = mine.iter().map(|m| m.z.abs()).filter(|z| z.is_finite()).fold(0.0, f64::max);
        let dec = (t.kind == SymmetryKind::OutputRotation && order % 2 == 0).then(|| decomposition(t, arch, ex, r, order));
        let (coefficient, coefficient_stderr, coefficient_exact, residual_rms, residual_max_z) = dec.unwrap_or((f64::NAN, f64::NAN, f64::NAN, f64::NAN, f64::NAN));
        let verdict = verdict(&invariance, &exact);
        test_rows.push(TestRow {
            test: t.name.clone(),
            kind: t.kind,
            arch: t.arch.clone(),
            image: t.image.clone().unwrap_or_else(|| format!("R {} (seed {})", t.arch, t.seed(p))),
            width: r.width,
            order,
            tuples: ts.len(),
            invariance,
            exact,
            max_abs_z,
            coefficient,
            coefficient_stderr,
            coefficient_exact,
            residual_rms,
            residual_max_z,
            verdict,
        });
        tuple_rows.extend(mine);
    }
    (tuple_rows, test_rows)
}

/// "invariant" / "not invariant", and whether the exact prediction agrees.
fn verdict(inv: &Hotelling, exact: &Hotelling) -> String {
    let first = if inv.p_value.is_nan() {
        "no test (no spread over bags)".to_string()
    } else if inv.p_value < ALPHA {
        format!("not invariant (p = {})", nnqft_cli::fmt_g(inv.p_value))
    } else {
        format!("invariant (p = {:.2})", inv.p_value)
    };
    let second = if exact.p_value.is_nan() {
        "exact difference not known".to_string()
    } else if exact.p_value < ALPHA {
        format!("disagrees with the exact difference (p = {})", nnqft_cli::fmt_g(exact.p_value))
    } else {
        format!("agrees with the exact difference (p = {:.2})", exact.p_value)
    };
    format!("{first}; {second}")
}

/// The invariant-tensor decomposition of `G_{i_1..i_n}(x_a, .., x_a)` per
/// bag: (coefficient at the first point, its stderr, its exact value,
/// residual RMS over every point's entries, max |residual| / stderr).
fn decomposition(t: &SymmetryTest, arch: &ArchSpec, ex: &Exact, r: &Reduced, order: usize) -> (f64, f64, f64, f64, f64) {
    let (d, points) = (arch.d_out, t.points(arch));
    let v = t.variables(arch);
    let idx = index_tuples(order, d);
    let nb = r.g.len();
    // per bag: (first point's mean coefficient, every residual entry)
    let per_bag: Vec<(f64, Vec<f64>)> = (0..nb)
        .map(|b| {
            let mut coef = f64::NAN;
            let mut res = Vec::new();
            for (pi, _) in points.iter().enumerate() {
                let tensor: Vec<f64> = idx
                    .iter()
                    .map(|ii| {
                        let mut u: Vec<usize> = ii.iter().map(|&i| i * points.len() + pi).collect();
                        u.sort_unstable();
                        r.g[b][&order][tuple_index(v, &u)]
                    })
                    .collect();
                let dec = decompose(&tensor, order, d);
                if pi == 0 {
                    coef = dec.coefficients.iter().sum::<f64>() / dec.coefficients.len() as f64;
                }
                res.extend(dec.residual);
            }
            (coef, res)
        })
        .collect();
    let (c, cs) = mean_std(&per_bag.iter().map(|x| x.0).collect::<Vec<_>>());
    let entries = per_bag[0].1.len();
    let mut rms = 0.0;
    let mut max_z: f64 = 0.0;
    for e in 0..entries {
        let (m, s) = mean_std(&per_bag.iter().map(|x| x.1[e]).collect::<Vec<_>>());
        rms += m * m;
        let se = s / (nb as f64).sqrt();
        if se > 1e-12 * m.abs().max(1e-300) && se > 0.0 {
            max_z = max_z.max((m / se).abs());
        }
    }
    // exact: the coefficient of a pairing = G with outputs paired off (0 0 1 1 ..), all at the first point
    let exact = if d >= order / 2 {
        let u: Vec<usize> = (0..order).map(|s| (s / 2) * points.len()).collect();
        ex.values(&u, r.width).0
    } else {
        f64::NAN
    };
    (c, cs / (nb as f64).sqrt(), exact, (rms / entries as f64).sqrt(), max_z)
}

/// What the symmetry tests produced.
#[derive(Default)]
pub struct Outputs {
    pub tuples: Vec<TupleRow>,
    pub tests: Vec<TestRow>,
}

/// Runs every declared test and writes `symmetry.parquet`,
/// `symmetry_tests.parquet` and one figure per test; nothing when no test
/// is declared.
pub fn run(p: &Pipeline, data: &Path, force: bool) -> Result<Outputs> {
    let mut out = Outputs::default();
    if p.symmetry.is_empty() {
        return Ok(out);
    }
    for t in &p.symmetry.test {
        nnqft_store::atomic::clean_stale_temps(&cache_path(data, &t.name, 0).parent().expect("cache dir").to_path_buf(), None)?;
        let reduced = reduce_test(p, data, t, force)?;
        let ex = Exact::new(p, t);
        for r in &reduced {
            let (a, b) = rows(p, t, &ex, r);
            out.tuples.extend(a);
            out.tests.extend(b);
        }
    }
    let footer = serde_json::json!({
        "stage": "moments",
        "pipeline": p.name,
        "seed": p.seed,
        "config_hash": symmetry_hash(p),
        "version": nnqft_core::VERSION,
        "tests": p.symmetry.test,
    });
    write_tables(data, &out, &footer)?;
    for t in &p.symmetry.test {
        write_plot(data, t, &out.tuples)?;
    }
    Ok(out)
}

/// The symmetry tables exist and record the current config hash (true when
/// no test is declared).
pub fn up_to_date(p: &Pipeline, data: &Path) -> bool {
    if p.symmetry.is_empty() {
        return true;
    }
    let want = symmetry_hash(p);
    ["symmetry.parquet", "symmetry_tests.parquet"]
        .iter()
        .all(|f| nnqft_store::tables::read_footer(&data.join(f)).is_ok_and(|j| j["config_hash"].as_str() == Some(want.as_str())))
        && p.symmetry.test.iter().all(|t| data.join("plots").join(format!("symmetry_{}.png", t.name)).is_file())
}

fn u16s(v: &[usize]) -> Vec<u16> {
    v.iter().map(|&x| x as u16).collect()
}

fn write_tables(data: &Path, out: &Outputs, footer: &serde_json::Value) -> Result<()> {
    let rows = &out.tuples;
    let mut t = Table::default();
    t.utf8("test", rows.iter().map(|r| r.test.clone()).collect())
        .u32("width", rows.iter().map(|r| r.width as u32).collect())
        .u8("order", rows.iter().map(|r| r.order as u8).collect())
        .list_u16("tuple", &rows.iter().map(|r| u16s(&r.tuple)).collect::<Vec<_>>())
        .list_u16("outputs", &rows.iter().map(|r| u16s(&r.outputs)).collect::<Vec<_>>())
        .list_u16("inputs", &rows.iter().map(|r| u16s(&r.inputs)).collect::<Vec<_>>());
    let cols: [(&str, fn(&TupleRow) -> f64); 11] = [
        ("g", |r| r.g),
        ("g_stderr", |r| r.g_stderr),
        ("g_exact", |r| r.g_exact),
        ("g_image", |r| r.g_image),
        ("g_image_stderr", |r| r.g_image_stderr),
        ("g_image_exact", |r| r.g_image_exact),
        ("diff", |r| r.diff),
        ("diff_stderr", |r| r.diff_stderr),
        ("diff_exact", |r| r.diff_exact),
        ("z", |r| r.z),
        ("z_exact", |r| r.z_exact),
    ];
    for (name, f) in cols {
        t.f64(name, rows.iter().map(f).collect());
    }
    t.write(&data.join("symmetry.parquet"), footer)?;

    let tests = &out.tests;
    let mut s = Table::default();
    s.utf8("test", tests.iter().map(|r| r.test.clone()).collect())
        .utf8("kind", tests.iter().map(|r| r.kind.name().to_string()).collect())
        .utf8("arch", tests.iter().map(|r| r.arch.clone()).collect())
        .utf8("image", tests.iter().map(|r| r.image.clone()).collect())
        .u32("width", tests.iter().map(|r| r.width as u32).collect())
        .u8("order", tests.iter().map(|r| r.order as u8).collect())
        .u32("tuples", tests.iter().map(|r| r.tuples as u32).collect())
        .u32("bags", tests.iter().map(|r| r.invariance.bags as u32).collect())
        .u32("dof", tests.iter().map(|r| r.invariance.rank as u32).collect());
    let cols: [(&str, fn(&TestRow) -> f64); 14] = [
        ("chi2", |r| r.invariance.t2),
        ("chi2_per_dof", |r| r.invariance.per_dof),
        ("band99_lo", |r| r.invariance.band99.0),
        ("band99_hi", |r| r.invariance.band99.1),
        ("p_value", |r| r.invariance.p_value),
        ("chi2_exact", |r| r.exact.t2),
        ("chi2_exact_per_dof", |r| r.exact.per_dof),
        ("p_exact", |r| r.exact.p_value),
        ("max_abs_z", |r| r.max_abs_z),
        ("coefficient", |r| r.coefficient),
        ("coefficient_stderr", |r| r.coefficient_stderr),
        ("coefficient_exact", |r| r.coefficient_exact),
        ("residual_rms", |r| r.residual_rms),
        ("residual_max_z", |r| r.residual_max_z),
    ];
    for (name, f) in cols {
        s.f64(name, tests.iter().map(f).collect());
    }
    s.utf8("verdict", tests.iter().map(|r| r.verdict.clone()).collect());
    s.write(&data.join("symmetry_tests.parquet"), footer)
}

/// `DATA/plots/symmetry_T.{png,svg}`: per order, the measured difference
/// G - G_image of every tuple with its error bar (one colour per width)
/// and the exact difference as a line.
fn write_plot(data: &Path, t: &SymmetryTest, rows: &[TupleRow]) -> Result<()> {
    use nnqft_plot::{Panel, Scale, Series};
    let mine: Vec<&TupleRow> = rows.iter().filter(|r| r.test == t.name).collect();
    let mut widths: Vec<usize> = mine.iter().map(|r| r.width).collect();
    widths.sort_unstable();
    widths.dedup();
    let mut panels = Vec::new();
    for order in t.orders() {
        let mut series = Vec::new();
        for (wi, &w) in widths.iter().enumerate() {
            let at: Vec<&&TupleRow> = mine.iter().filter(|r| r.order == order && r.width == w).collect();
            series.push(
                Series::markers(format!("N = {w} measured"), at.iter().enumerate().map(|(i, r)| (i as f64, r.diff)).collect(), 2 * wi)
                    .with_errors(at.iter().map(|r| r.diff_stderr).collect()),
            );
            if at.iter().any(|r| r.diff_exact.is_finite()) {
                series.push(Series::line(format!("N = {w} exact"), at.iter().enumerate().map(|(i, r)| (i as f64, r.diff_exact)).collect(), 2 * wi + 1));
            }
        }
        let rows: Vec<&&TupleRow> = mine.iter().filter(|r| r.order == order && r.width == widths[0]).collect();
        // output rotations at one input point name the outputs only
        let one_input = rows.iter().flat_map(|r| r.inputs.iter()).collect::<std::collections::BTreeSet<_>>().len() <= 1;
        let labels: Vec<String> = rows.iter().map(|r| tuple_label(t.kind, r, one_input)).collect();
        let axis = match t.kind {
            SymmetryKind::OutputRotation => "tuple: outputs 1.. and inputs (a = x0, b = x1, ..)",
            _ => "tuple: inputs (a = x0, b = x1, ..)",
        };
        panels.push(Panel::new(format!("{}: order {order}", t.name), axis, "G - G(image)", series).scales(Scale::Integer, Scale::Linear).with_x_labels(labels));
    }
    nnqft_plot::write_panels(&data.join("plots"), &format!("symmetry_{}", t.name), &panels)
}

/// A tuple's name on a figure's axis: per slot the output (1-based, output
/// rotations only) and the input as a letter (a = x0, b = x1, ..), e.g.
/// `1a1a2a2a`, or `abbd` for the input tests.
fn tuple_label(kind: SymmetryKind, r: &TupleRow, one_input: bool) -> String {
    let letter = |j: usize| char::from_u32('a' as u32 + (j % 26) as u32).unwrap_or('?');
    r.outputs
        .iter()
        .zip(&r.inputs)
        .map(|(o, &j)| match kind {
            SymmetryKind::OutputRotation if one_input => format!("{}", o + 1),
            SymmetryKind::OutputRotation => format!("{}{}", o + 1, letter(j)),
            _ => letter(j).to_string(),
        })
        .collect()
}

/// The test rows as a text table (printed by the binary).
pub fn format_tests(tests: &[TestRow]) -> String {
    use std::fmt::Write;
    let g = nnqft_cli::fmt_g;
    let mut s = String::new();
    let _ = writeln!(s, "{:<24} {:>5} {:>5} {:>4} {:>9} {:>19} {:>9} {:>10} {:>9}  verdict", "test", "N", "order", "dof", "chi2/dof", "99% band", "p", "exact c2/d", "p exact");
    for r in tests {
        let band = format!("{}..{}", g(r.invariance.band99.0), g(r.invariance.band99.1));
        let _ = writeln!(
            s,
            "{:<24} {:>5} {:>5} {:>4} {:>9} {:>19} {:>9} {:>10} {:>9}  {}",
            r.test,
            r.width,
            r.order,
            r.invariance.rank,
            g(r.invariance.per_dof),
            band,
            g(r.invariance.p_value),
            g(r.exact.per_dof),
            g(r.exact.p_value),
            r.verdict
        );
    }
    s
}
