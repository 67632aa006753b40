//! The layer flow of deep nets (docs/physics.md §8, seed 002): the kernel
//! `K^(l)` and the excess kurtosis against the layer index `l`, measured
//! (per-bag moments from `layers_bags.parquet`, pooled, with delete-one-bag
//! jackknife errors and bias correction) beside the layer recursion
//! and the exact relu kurtosis, with fitted exponential rates
//! (`d ln X / d l`) and power-law exponents (`d ln X / d ln l`).

use crate::{FlowRow, SlopeRow};
use anyhow::{Result, bail};
use nnqft_core::deep::{k1, layer_theory, recursion};
use nnqft_core::{Activation, ArchSpec, Pipeline};
use nnqft_stats::{jackknife, kurtosis, pooled};
use std::collections::BTreeMap;
use std::path::Path;

/// Per (arch, width, layer) of input point 0: the bags' (m2, m4).
pub type LayerBags = BTreeMap<(String, usize, usize), Vec<(f64, f64)>>;

/// Reads input point 0 of `layers_bags.parquet`: one polars query filters
/// the point, groups by (arch, width, layer) and gathers the bags in order.
/// The caller has checked that the table is current (`crate::run`).
pub fn load_layer_bags(path: &Path) -> Result<LayerBags> {
    use nnqft_frames::{IntoLazy, col, lit};
    // One read: point 0's rows in (arch, width, layer, bag) order; the group
    // check runs on the collected frame.
    let rows = nnqft_frames::collect(path, nnqft_frames::scan(path)?.filter(col("point").eq(lit(0u32))).sort(["arch", "width", "layer", "bag"], Default::default()))?;
    let q = rows
        .clone()
        .lazy()
        .group_by_stable([col("arch"), col("width"), col("layer")])
        .agg([col("bag").count().alias("n_bags"), col("bag").max().alias("last_bag")]);
    let groups = nnqft_frames::collect(path, q)?;
    let (n_bags, last) = (nnqft_frames::u32s(path, &groups, "n_bags")?, nnqft_frames::u32s(path, &groups, "last_bag")?);
    let (ga, gw, gl) = (nnqft_frames::strs(path, &groups, "arch")?, nnqft_frames::u32s(path, &groups, "width")?, nnqft_frames::u32s(path, &groups, "layer")?);
    for i in 0..groups.height() {
        if n_bags[i] != last[i] + 1 {
            bail!("{}: {} width {} layer {}: {} rows for bags 0..={}: bags missing or repeated", path.display(), ga[i], gw[i], gl[i], n_bags[i], last[i]);
        }
    }
    let (arch, width, layer) = (nnqft_frames::strs(path, &rows, "arch")?, nnqft_frames::u32s(path, &rows, "width")?, nnqft_frames::u32s(path, &rows, "layer")?);
    let (m2, m4) = (nnqft_frames::f64s(path, &rows, "m2")?, nnqft_frames::f64s(path, &rows, "m4")?);
    let mut out: LayerBags = BTreeMap::new();
    for i in 0..rows.height() {
        out.entry((arch[i].clone(), width[i] as usize, layer[i] as usize)).or_default().push((m2[i], m4[i]));
    }
    Ok(out)
}

/// What docs/physics.md §8 says the rate / exponent is (NaN where it is silent).
fn asymptotic(arch: &ArchSpec, coupling: &str, quantity: &str) -> f64 {
    let (c_w, c_b) = arch.variances();
    let critical = |v: f64| (c_w - v).abs() < 1e-9 && c_b == 0.0;
    match (arch.activation, coupling, quantity) {
        // relu, C_b = 0: K^(l) = (C_W / 2)^(l-1) K^(1) exactly
        (Activation::Relu, "K", "rate") if c_b == 0.0 => {
            let r = (c_w / 2.0).ln();
            if r.abs() < 1e-12 { 0.0 } else { r }
        }
        (Activation::Relu, "K", "exponent") if critical(2.0) => 0.0,
        (Activation::Relu, "kurtosis", "exponent") if critical(2.0) => 1.0,
        (Activation::Tanh, "K", "exponent") if critical(1.0) => -1.0,
        (Activation::Tanh, "kurtosis", "exponent") if critical(1.0) => 1.0,
        _ => f64::NAN,
    }
}

/// The recursion's fixed point `K* > 0` and `chi_par(K*)`, when the flow
/// from `K^(1)` converges to one (tanh with C_W > 1, say) without starting
/// on it (relu at criticality stays at `K^(1)`); None when K runs to 0 or
/// to infinity.
pub fn non_trivial_fixed_point(arch: &ArchSpec) -> Option<(f64, f64)> {
    let (c_w, c_b) = arch.variances();
    let r = recursion(arch.activation, c_w, c_b, k1(arch, &arch.inputs[0]), 3000);
    let (a, b) = (r[r.len() - 2].k, r[r.len() - 1].k);
    let converged = b.is_finite() && b > 1e-9 && (b - a).abs() < 1e-10 * b;
    (converged && (r[0].k - b).abs() > 1e-6 * b).then(|| {
        // chi_par of the recursion at K* is d K^(l+1) / d K^(l)
        let (lo, hi) = (recursion(arch.activation, c_w, c_b, b * (1.0 - 1e-5), 1), recursion(arch.activation, c_w, c_b, b * (1.0 + 1e-5), 1));
        (b, (hi[1].k - lo[1].k) / (2e-5 * b))
    })
}

/// The layer flow of one deep arch at one width.
pub fn layer_flow(arch: &ArchSpec, width: usize, bags: &LayerBags) -> Result<(Vec<FlowRow>, Vec<SlopeRow>)> {
    let layers = arch.hidden_layers;
    let th = layer_theory(arch, &arch.inputs[0], width);
    let exact_kurt = |l: usize| if th[l - 1].exact.is_finite() { th[l - 1].exact } else { th[l - 1].kurtosis };
    let mut per_layer = Vec::new();
    for l in 1..=layers + 1 {
        let Some(b) = bags.get(&(arch.name.clone(), width, l)) else {
            bail!("layers_bags.parquet has no rows for {} width {width} layer {l}; rerun nnqft-moments", arch.name);
        };
        per_layer.push(b.clone());
    }
    let nb = per_layer[0].len();
    let k_of = |l: usize, keep: &[usize]| pooled(&per_layer[l - 1], keep).0;
    let kurt_of = |l: usize, keep: &[usize]| kurtosis(pooled(&per_layer[l - 1], keep));
    let mut flow = Vec::new();
    let mut slopes = Vec::new();
    type Quantity<'a> = (&'static str, &'a dyn Fn(usize, &[usize]) -> f64, Box<dyn Fn(usize) -> f64 + 'a>, usize);
    let quantities: [Quantity; 2] = [("K", &k_of, Box::new(|l| th[l - 1].k), 1), ("kurtosis", &kurt_of, Box::new(exact_kurt), 2)];
    for (coupling, of, exact, first) in quantities {
        let ls: Vec<usize> = (first..=layers + 1).collect();
        let est: Vec<(f64, f64)> = ls.iter().map(|&l| jackknife(nb, |keep| of(l, keep))).collect();
        for (&l, &(value, stderr)) in ls.iter().zip(&est) {
            flow.push(FlowRow {
                arch: arch.name.clone(),
                d_in: arch.d_in,
                width,
                kind: "layer",
                propagator: "-",
                scale: l as f64,
                coupling,
                value,
                stderr,
                exact: exact(l),
                quad_rel_err: f64::NAN,
                n_unreliable: 0,
            });
        }
        if ls.len() < 3 {
            continue;
        }
        let w: Vec<f64> = est.iter().map(|(m, s)| if *s > 0.0 && s.is_finite() { (m / s).powi(2) } else { 1.0 }).collect();
        let exact_y: Vec<f64> = ls.iter().map(|&l| exact(l).abs().ln()).collect();
        let ln = |v: f64| if v > 0.0 { v.ln() } else { f64::NAN };
        let mut chi2 = [0.0; 2];
        let mut rows = Vec::new();
        for (qi, quantity) in ["rate", "exponent"].into_iter().enumerate() {
            let x: Vec<f64> = ls.iter().map(|&l| if qi == 0 { l as f64 } else { (l as f64).ln() }).collect();
            chi2[qi] = crate::wls_line(&x, &est.iter().map(|e| ln(e.0)).collect::<Vec<_>>(), &w).2;
            let (slope, stderr) = jackknife(nb, |keep| crate::wls_slope(&x, &ls.iter().map(|&l| ln(of(l, keep))).collect::<Vec<_>>(), &w));
            rows.push(SlopeRow {
                arch: arch.name.clone(),
                d_in: arch.d_in,
                width,
                kind: "layer",
                propagator: "-",
                coupling,
                quantity,
                range: "all",
                slope,
                stderr,
                exact: crate::wls_slope(&x, &exact_y, &w),
                asymptotic: asymptotic(arch, coupling, quantity),
                seed_claim: f64::NAN,
                n_points: ls.len(),
                note: None,
            });
        }
        let dof = (ls.len() - 2) as f64;
        let verdict = format!(
            "chi2/dof: exponential {}, power law {} ({} describes l = {}..{} better)",
            nnqft_cli::fmt_g(chi2[0] / dof),
            nnqft_cli::fmt_g(chi2[1] / dof),
            if chi2[0] < chi2[1] { "exponential" } else { "power law" },
            first,
            layers + 1
        );
        let fixed = (coupling == "K").then(|| non_trivial_fixed_point(arch)).flatten();
        let verdict = match fixed {
            Some((k_star, chi)) => format!(
                "K flows to the non-zero fixed point K* = {} of the recursion: K - K* decays exponentially at rate ln chi_par(K*) = {} per layer, so neither fit to K itself is the law; {verdict}",
                nnqft_cli::fmt_g(k_star),
                nnqft_cli::fmt_g(chi.ln())
            ),
            None if coupling == "K" && th.iter().all(|p| (p.k - th[0].k).abs() <= 1e-9 * th[0].k) => format!(
                "K^(l) = K^(1) = {} at every layer of the recursion (marginal, chi_par = 1): a fixed point, rate and exponent 0; {verdict}",
                nnqft_cli::fmt_g(th[0].k)
            ),
            None => verdict,
        };
        for r in &mut rows {
            r.note = Some(verdict.clone());
        }
        slopes.extend(rows);
    }
    Ok((flow, slopes))
}

/// The layer flows of every deep arch and width of `p`.
pub fn layer_flows(p: &Pipeline, data: &Path) -> Result<(Vec<FlowRow>, Vec<SlopeRow>)> {
    let bags = load_layer_bags(&data.join("layers_bags.parquet"))?;
    let mut flow = Vec::new();
    let mut slopes = Vec::new();
    for arch in p.deep_archs() {
        for &w in p.widths_of(arch) {
            let (f, s) = layer_flow(arch, w, &bags)?;
            flow.extend(f);
            slopes.extend(s);
        }
    }
    Ok((flow, slopes))
}

/// The per-layer table of the report: measured K and kurtosis beside the
/// recursion and the exact relu kurtosis.
pub fn format_layer_table(p: &Pipeline, flow: &[FlowRow]) -> String {
    use nnqft_cli::fmt_g as num;
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "| arch | C_W | C_b | n | l | K | stderr | K recursion | kurtosis | stderr | recursion (1/n) | exact | (kurt - best) / se |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for k in flow.iter().filter(|r| r.kind == "layer" && r.coupling == "K") {
        let arch = p.arch(&k.arch).expect("arch");
        let (c_w, c_b) = arch.variances();
        let l = k.scale as usize;
        let th = layer_theory(arch, &arch.inputs[0], k.width);
        let kt = flow.iter().find(|r| r.kind == "layer" && r.coupling == "kurtosis" && r.arch == k.arch && r.width == k.width && r.scale == k.scale);
        let exact = th[l - 1].exact;
        let (kv, kse, z) = kt.map_or((f64::NAN, f64::NAN, f64::NAN), |r| (r.value, r.stderr, (r.value - r.exact) / r.stderr));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {l} | {} | {} | {} | {} | {} | {} | {} | {} |",
            k.arch,
            num(c_w),
            num(c_b),
            k.width,
            num(k.value),
            num(k.stderr),
            num(th[l - 1].k),
            num(kv),
            num(kse),
            num(th[l - 1].kurtosis),
            num(exact),
            if z.is_finite() { format!("{z:.2}") } else { "-".into() }
        );
    }
    s
}
