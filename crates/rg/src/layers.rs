//! The layer flow of deep nets (docs/physics.md §8, §11, seed 002): the kernel
//! `K^(l)` and the normalised connected functions c4 (the excess kurtosis),
//! c6, c8 against the layer index `l`, measured (per-bag moments from
//! `layers_bags.parquet`, pooled, with delete-one-bag jackknife errors and bias
//! correction) beside the exact single-input chain, with fitted exponential
//! rates (`d ln X / d l`) and power-law exponents (`d ln X / d ln l`), the
//! same fits to the chain, the leading-order asymptotics (`c_2m ~ l^(m-1)` at
//! criticality) and whether one power law describes the measurement.

use crate::{FlowRow, SlopeRow};
use anyhow::{Result, bail};
use nnqft_core::chain::{default_atoms, exact_chain};
use nnqft_core::deep::{k1, layer_theory, recursion};
use nnqft_core::{Activation, ArchSpec, Pipeline};
use nnqft_stats::jackknife;
use std::collections::BTreeMap;
use std::path::Path;

/// Per (arch, width, layer) of input point 0: the bags' (m2, m4, m6, m8).
pub type LayerBags = BTreeMap<(String, usize, usize), Vec<[f64; 4]>>;

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
    let m = ["m2", "m4", "m6", "m8"].map(|c| nnqft_frames::f64s(path, &rows, c));
    let [m2, m4, m6, m8] = m;
    let (m2, m4, m6, m8) = (m2?, m4?, m6?, m8?);
    let mut out: LayerBags = BTreeMap::new();
    for i in 0..rows.height() {
        out.entry((arch[i].clone(), width[i] as usize, layer[i] as usize)).or_default().push([m2[i], m4[i], m6[i], m8[i]]);
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
        (Activation::Tanh, "K", "exponent") if critical(1.0) => -1.0,
        // at criticality c_2m ~ l^(m - 1) / n^(m - 1) (leading order, large l)
        (Activation::Relu, c, "exponent") if critical(2.0) => c_exponent(c),
        (Activation::Tanh, c, "exponent") if critical(1.0) => c_exponent(c),
        _ => f64::NAN,
    }
}

/// `m - 1` for `c_2m` (the kurtosis is c4).
fn c_exponent(coupling: &str) -> f64 {
    match coupling {
        "kurtosis" => 1.0,
        "c6" => 2.0,
        "c8" => 3.0,
        _ => f64::NAN,
    }
}

/// `E z^2, kurtosis, c6, c8` of pooled bags.
fn pooled_cumulants(bags: &[[f64; 4]], keep: &[usize]) -> [f64; 4] {
    let mut m = [0.0; 4];
    for &b in keep {
        for i in 0..4 {
            m[i] += bags[b][i] / keep.len() as f64;
        }
    }
    nnqft_stats::normalised_cumulants(m)
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
    let chain = exact_chain(arch, &arch.inputs[0], width, default_atoms(arch.activation));
    let mut per_layer = Vec::new();
    for l in 1..=layers + 1 {
        let Some(b) = bags.get(&(arch.name.clone(), width, l)) else {
            bail!("layers_bags.parquet has no rows for {} width {width} layer {l}; rerun nnqft-moments", arch.name);
        };
        per_layer.push(b.clone());
    }
    let nb = per_layer[0].len();
    let mut flow = Vec::new();
    let mut slopes = Vec::new();
    for (qi, coupling) in ["K", "kurtosis", "c6", "c8"].into_iter().enumerate() {
        let of = |l: usize, keep: &[usize]| pooled_cumulants(&per_layer[l - 1], keep)[qi];
        // K: the infinite-width recursion (the flow's law); c_n: the exact chain
        let exact = |l: usize| if qi == 0 { th[l - 1].k } else { chain[l - 1].c(2 * qi + 2) };
        let first = if qi == 0 { 1 } else { 2 };
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
        // ln c_n needs c_n > 0: fit the layers where the measurement is
        // positive by more than 2 standard errors (noisy c6, c8 at wide layers)
        let all = ls.len();
        let (ls, est): (Vec<usize>, Vec<(f64, f64)>) = ls.into_iter().zip(est).filter(|(_, (m, s))| *m > 2.0 * s && s.is_finite()).unzip();
        if ls.len() < 3 {
            continue;
        }
        let dropped = if ls.len() < all { format!(" (fit over the {} of {all} layers where it is > 2 se)", ls.len()) } else { String::new() };
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
        let p_power = nnqft_stats::chi2_sf(chi2[1], ls.len() - 2);
        let verdict = format!(
            "chi2/dof: exponential {}, power law {} ({} describes l = {}..{}{dropped} better); one power law {} (p = {})",
            nnqft_cli::fmt_g(chi2[0] / dof),
            nnqft_cli::fmt_g(chi2[1] / dof),
            if chi2[0] < chi2[1] { "exponential" } else { "power law" },
            ls[0],
            ls[ls.len() - 1],
            if p_power >= 0.01 { "describes the measurement" } else if p_power < 0.01 { "does not describe the measurement" } else { "cannot be tested" },
            nnqft_cli::fmt_g(p_power)
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

/// The per-layer table of the report: measured K, kurtosis, c6 and c8 beside
/// the leading orders and the exact chain.
pub fn format_layer_table(p: &Pipeline, flow: &[FlowRow]) -> String {
    use nnqft_cli::fmt_g as num;
    let pm = |r: Option<&FlowRow>| r.map_or("-".to_string(), |r| format!("{} ± {}", num(r.value), num(r.stderr)));
    let rows = flow.iter().filter(|r| r.kind == "layer" && r.coupling == "K").map(|k| {
        let arch = p.arch(&k.arch).expect("arch");
        let (c_w, c_b) = arch.variances();
        let l = k.scale as usize;
        let th = layer_theory(arch, &arch.inputs[0], k.width)[l - 1];
        let find = |c: &str| flow.iter().find(|r| r.kind == "layer" && r.coupling == c && r.arch == k.arch && r.width == k.width && r.scale == k.scale);
        let z = find("kurtosis").map_or("-".to_string(), |r| format!("{:.2}", (r.value - r.exact) / r.stderr));
        let ex = |c: &str| find(c).map_or(f64::NAN, |r| r.exact);
        vec![
            k.arch.clone(),
            num(c_w),
            num(c_b),
            k.width.to_string(),
            l.to_string(),
            pm(Some(k)),
            num(th.k),
            num(th.k_nlo),
            pm(find("kurtosis")),
            num(th.kurtosis),
            num(ex("kurtosis")),
            z,
            pm(find("c6")),
            num(th.c6),
            num(ex("c6")),
            pm(find("c8")),
            num(th.c8),
            num(ex("c8")),
        ]
    });
    nnqft_report::table(
        &["arch", "C_W", "C_b", "n", "l", "K", "K (n = inf)", "K (1/n)", "kurtosis", "LO", "chain", "(kurt - chain) / se", "c6", "LO", "chain", "c8", "LO", "chain"],
        rows,
    )
}
