//! # nnqft-rg
//!
//! The rg stage (docs/physics.md §6 and 7): how the couplings run with
//! the cutoff L (lambda_bar(L) on the box `[-L, L]^d`) and with sigma_W
//! (u4, u6 of seed 001), log-log slopes by weighted least squares with
//! errors from the bags, side by side with the exact finite-N values and
//! the reference talks' claims. Writes `flow.parquet`, `slopes.parquet`, the rg section
//! and `plots/rg_*.{png,svg}`.

pub mod flows;
pub mod layers;
pub mod report;
pub mod rows;
pub mod slopes;
pub mod tables;

pub use flows::*;
pub use report::*;
pub use rows::*;
pub use slopes::*;
use tables::*;

use anyhow::Result;
use nnqft_core::rng::sha256_hex;
use nnqft_core::{ArchSpec, Pipeline};
pub use nnqft_stats::{wls_line, wls_slope};
use nnqft_deviations::{load_deviations, Deviations};
use nnqft_store::tables::read_footer;
use std::collections::BTreeMap;
use std::path::Path;

/// Version of the rg stage; enters the config hash.
pub const RG_VERSION: u32 = 1;

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub force: bool,
}

/// What the stage did.
pub struct Outputs {
    pub flow: Vec<FlowRow>,
    pub slopes: Vec<SlopeRow>,
    pub up_to_date: bool,
}

/// Widths of a cutoff flow.
fn cutoff_widths(p: &Pipeline, c: &nnqft_core::pipeline::CutoffFlow) -> Vec<usize> {
    c.widths.clone().unwrap_or_else(|| p.widths_of(p.arch(&c.arch).expect("validated")).to_vec())
}

/// Widths of the sigma_W flow: configured, else those every listed arch has.
fn sigma_w_widths(p: &Pipeline) -> Vec<usize> {
    let Some(sw) = &p.rg.sigma_w else { return Vec::new() };
    sw.widths.clone().unwrap_or_else(|| {
        let first = p.widths_of(p.arch(&sw.archs[0]).expect("validated")).to_vec();
        first.into_iter().filter(|w| sw.archs.iter().all(|a| p.widths_of(p.arch(a).expect("validated")).contains(w))).collect()
    })
}

/// Widths of the passive flow: configured, else those every listed arch has.
fn input_scale_widths(p: &Pipeline) -> Vec<usize> {
    let Some(f) = &p.rg.input_scale else { return Vec::new() };
    f.widths.clone().unwrap_or_else(|| {
        let first = p.widths_of(p.arch(&f.archs[0]).expect("validated")).to_vec();
        first.into_iter().filter(|w| f.archs.iter().all(|a| p.widths_of(p.arch(a).expect("validated")).contains(w))).collect()
    })
}

/// The config hash of the rg outputs.
pub fn rg_hash(p: &Pipeline) -> String {
    let mut keys = Vec::new();
    for c in &p.rg.cutoff {
        let a = p.arch(&c.arch).expect("validated");
        keys.extend(cutoff_widths(p, c).into_iter().map(|w| nnqft_store::keys::reduce_key(p, a, w)));
    }
    if let Some(sw) = &p.rg.sigma_w {
        for w in sigma_w_widths(p) {
            keys.extend(sw.archs.iter().map(|a| nnqft_store::keys::reduce_key(p, p.arch(a).expect("validated"), w)));
        }
    }
    if let Some(f) = &p.rg.input_scale {
        for w in input_scale_widths(p) {
            keys.extend(f.archs.iter().map(|a| nnqft_store::keys::reduce_key(p, p.arch(a).expect("validated"), w)));
        }
    }
    for a in p.deep_archs() {
        keys.extend(p.widths_of(a).iter().map(|&w| nnqft_store::keys::layers_key(p, a, w)));
    }
    let key = serde_json::json!({"rg_version": RG_VERSION, "tables_version": nnqft_store::keys::TABLES_VERSION, "rg": p.rg, "reduce_keys": keys});
    sha256_hex(key.to_string().as_bytes())
}

/// Runs the stage.
pub fn run(p: &Pipeline, data: &Path, opts: &Options) -> Result<Outputs> {
    let coupling_flows = !p.rg.cutoff.is_empty() || p.rg.sigma_w.is_some() || p.rg.input_scale.is_some();
    let deep = p.deep_archs().next().is_some();
    if !coupling_flows && !deep {
        return Ok(Outputs { flow: Vec::new(), slopes: Vec::new(), up_to_date: true });
    }
    // A deep-only pipeline has no moments.parquet: its input is layers_bags.parquet.
    let input = if coupling_flows { "moments.parquet" } else { "layers_bags.parquet" };
    let lock = nnqft_store::lock::DirLock::acquire_for_input(data, "nnqft-rg", input, "nnqft-moments")?;
    if let Some(prev) = &lock.recovered_from {
        eprintln!("nnqft-rg: note: {} was held by a run that is gone ({prev}); recovered", lock.path().display());
    }
    nnqft_store::atomic::clean_stale_temps(data, None)?;
    nnqft_store::atomic::clean_stale_temps(&data.join("plots"), None)?;
    // Inputs first, even when the outputs look up to date: one stale-data rule for every stage.
    if coupling_flows {
        nnqft_deviations::require_inputs(p, data)?;
    }
    if deep {
        let want = nnqft_store::keys::tables_hash(p, true);
        nnqft_store::tables::require_current(&data.join("layers_bags.parquet"), &want, &p.name, "nnqft-moments")?;
    }
    let hash = rg_hash(p);
    let outs = ["flow.parquet", "slopes.parquet"].map(|f| data.join(f));
    let report_ok = nnqft_report::read_section(data, "rg").is_some_and(|s| s.config_hash == hash);
    if !opts.force && report_ok && outs.iter().all(|f| read_footer(f).is_ok_and(|v| v["config_hash"] == hash.as_str())) {
        return Ok(Outputs { flow: Vec::new(), slopes: Vec::new(), up_to_date: true });
    }
    let mut want: Vec<(String, usize)> = Vec::new();
    for c in &p.rg.cutoff {
        want.extend(cutoff_widths(p, c).into_iter().map(|w| (c.arch.clone(), w)));
    }
    if let Some(sw) = &p.rg.sigma_w {
        for w in sigma_w_widths(p) {
            want.extend(sw.archs.iter().map(|a| (a.clone(), w)));
        }
    }
    if let Some(f) = &p.rg.input_scale {
        for w in input_scale_widths(p) {
            want.extend(f.archs.iter().map(|a| (a.clone(), w)));
        }
    }
    want.sort();
    want.dedup();
    let devs = if want.is_empty() { BTreeMap::new() } else { load_deviations(p, data, &want)? };
    let mut flow = Vec::new();
    let mut slopes = Vec::new();
    let total = p.rg.cutoff.iter().map(|c| c.propagators.len()).sum::<usize>() + sigma_w_widths(p).len() + input_scale_widths(p).len();
    let progress = nnqft_cli::Progress::new("rg", total as u64, "flows");
    for c in &p.rg.cutoff {
        let arch = p.arch(&c.arch).expect("validated");
        let ws = cutoff_widths(p, c);
        let d: Vec<(usize, &Deviations)> = ws.iter().map(|&w| (w, &devs[&(c.arch.clone(), w)])).collect();
        for &prop in &c.propagators {
            let r = cutoff_flow(arch, prop, &p.rg.cutoffs, &d)?;
            flow.extend(r.flow);
            slopes.extend(r.slopes);
            progress.inc(1);
        }
    }
    if let Some(sw) = &p.rg.sigma_w {
        let archs: Vec<&ArchSpec> = sw.archs.iter().map(|a| p.arch(a).expect("validated")).collect();
        for w in sigma_w_widths(p) {
            let d: Vec<&Deviations> = sw.archs.iter().map(|a| &devs[&(a.clone(), w)]).collect();
            let (f, s) = sigma_w_flow(&archs, w, &d, p.moments.orders.contains(&6))?;
            flow.extend(f);
            slopes.extend(s);
            progress.inc(1);
        }
    }
    if let Some(f) = &p.rg.input_scale {
        let archs: Vec<&ArchSpec> = f.archs.iter().map(|a| p.arch(a).expect("validated")).collect();
        let base = &archs[0].inputs;
        let scales: Vec<f64> = archs.iter().map(|a| nnqft_core::pipeline::input_scale(base, &a.inputs).expect("validated")).collect();
        for w in input_scale_widths(p) {
            let d: Vec<&Deviations> = f.archs.iter().map(|a| &devs[&(a.clone(), w)]).collect();
            let (fl, s) = input_scale_flow(&archs, &scales, w, &d, p.moments.orders.contains(&6))?;
            flow.extend(fl);
            slopes.extend(s);
            progress.inc(1);
        }
    }
    for r in &mut flow {
        let order = if r.coupling == "u6" { 6 } else { 4 };
        r.n_unreliable = devs.get(&(r.arch.clone(), r.width)).map_or(0, |d| d.n_unreliable(order));
    }
    if deep {
        let (f, s) = layers::layer_flows(p, data)?;
        flow.extend(f);
        slopes.extend(s);
    }
    progress.finish();
    let mut sources = serde_json::Map::new();
    let inputs: &[&str] = match (coupling_flows, deep) {
        (true, true) => &["moments.parquet", "moments_bags.parquet", "layers_bags.parquet"],
        (true, false) => &["moments.parquet", "moments_bags.parquet"],
        _ => &["layers_bags.parquet"],
    };
    for f in inputs {
        sources.insert(f.to_string(), read_footer(&data.join(f))?["config_hash"].clone());
    }
    let footer = serde_json::json!({
        "stage": "rg",
        "pipeline": p.name,
        "seed": p.seed,
        "config_hash": hash,
        "version": nnqft_core::VERSION,
        "sources": sources,
    });
    write_flow(&outs[0], &flow, &footer)?;
    write_slopes(&outs[1], &slopes, &footer)?;
    let plots = write_rg_plots(data, &flow)?;
    nnqft_report::write_section(data, "rg", &hash, &format_report(p, &flow, &slopes, &plots))?;
    Ok(Outputs { flow, slopes, up_to_date: false })
}
