//! The rg section of the run report (`report/rg.md`) and the `plots/rg_*` figures.

use crate::*;
use nnqft_cli::fmt_g as num;
use anyhow::Result;
use nnqft_core::Pipeline;
use nnqft_plot::{write_panels, Panel, Scale, Series};
use std::path::Path;

/// `plots/rg_cutoff`, `plots/rg_sigma_w`, `plots/rg_input_scale` and `plots/rg_layers` (PNG and SVG); returns the stems written.
pub(crate) fn write_rg_plots(data: &Path, flow: &[FlowRow]) -> Result<Vec<String>> {
    let dir = data.join("plots");
    let mut written = Vec::new();
    let mut groups: Vec<(String, &str, usize)> = Vec::new();
    for r in flow.iter().filter(|r| r.kind == "cutoff") {
        let g = (r.arch.clone(), r.propagator, r.width);
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let panels: Vec<Panel> = groups
        .iter()
        .map(|(a, prop, w)| {
            let rows: Vec<&FlowRow> = flow.iter().filter(|r| r.kind == "cutoff" && &r.arch == a && r.propagator == *prop && r.width == *w).collect();
            Panel::new(
                format!("{a}, N = {w}, {prop}"),
                "cutoff L",
                "|lambda_bar|",
                vec![
                    Series::markers("measured", rows.iter().map(|r| (r.scale, r.value.abs())).collect(), 0)
                        .with_errors(rows.iter().map(|r| r.stderr).collect()),
                    Series::line("exact finite N", rows.iter().map(|r| (r.scale, r.exact.abs())).collect(), 1),
                ],
            )
        })
        .collect();
    if !panels.is_empty() {
        write_panels(&dir, "rg_cutoff", &panels)?;
        written.push("rg_cutoff".to_string());
    }
    for (kind, axis) in [("sigma_w", "sigma_W"), ("input_scale", "input scale s")] {
        if write_scale_plot(&dir, flow, kind, axis)? {
            written.push(format!("rg_{kind}"));
        }
    }
    let layer: Vec<&FlowRow> = flow.iter().filter(|r| r.kind == "layer").collect();
    if !layer.is_empty() {
        let mut archs: Vec<&str> = layer.iter().map(|r| r.arch.as_str()).collect();
        archs.dedup();
        let panels: Vec<Panel> = ["K", "kurtosis", "c6", "c8"]
            .iter()
            .map(|c| Panel::new(
                format!("{} against the layer (largest width)", if *c == "kurtosis" { "c4 (kurtosis)" } else { c }),
                "layer l",
                c.to_string(),
                archs
                    .iter()
                    .enumerate()
                    .flat_map(|(i, a)| {
                        let w = layer.iter().filter(|r| r.arch == *a).map(|r| r.width).max().unwrap_or(0);
                        let rows: Vec<&&FlowRow> = layer.iter().filter(|r| r.arch == *a && r.width == w && r.coupling == *c).collect();
                        [
                            Series::markers(format!("{a} n = {w}"), rows.iter().map(|r| (r.scale, r.value)).collect(), i)
                                .with_errors(rows.iter().map(|r| r.stderr).collect()),
                            Series::line(format!("{a} {}", if *c == "K" { "recursion" } else { "exact chain" }), rows.iter().map(|r| (r.scale, r.exact)).collect(), i),
                        ]
                    })
                    .collect(),
            )
            // c_n against l on log-log axes: a power law is a straight line
            .scales(if *c == "K" { Scale::Integer } else { Scale::Log }, Scale::Log))
            .collect();
        write_panels(&dir, "rg_layers", &panels)?;
        written.push("rg_layers".to_string());
    }
    Ok(written)
}

/// `plots/rg_KIND`: |u4| and |u6| against the scale of a sigma_W or input-scale flow,
/// measured per width with error bars and exact; false when the flow has no rows.
fn write_scale_plot(dir: &Path, flow: &[FlowRow], kind: &str, axis: &str) -> Result<bool> {
    let rows: Vec<&FlowRow> = flow.iter().filter(|r| r.kind == kind).collect();
    if rows.is_empty() {
        return Ok(false);
    }
    let mut widths: Vec<usize> = rows.iter().map(|r| r.width).collect();
    widths.dedup();
    let panels: Vec<Panel> = ["u4", "u6"]
        .iter()
        .filter(|c| rows.iter().any(|r| r.coupling == **c))
        .map(|c| {
            Panel::new(
                format!("|{c}| against the {axis}"),
                axis,
                format!("|{c}|"),
                widths
                    .iter()
                    .enumerate()
                    .flat_map(|(i, &w)| {
                        let at: Vec<&&FlowRow> = rows.iter().filter(|r| r.coupling == *c && r.width == w).collect();
                        [
                            Series::markers(format!("N = {w}"), at.iter().map(|r| (r.scale, r.value.abs())).collect(), i)
                                .with_errors(at.iter().map(|r| r.stderr).collect()),
                            Series::line(format!("exact N = {w}"), at.iter().map(|r| (r.scale, r.exact.abs())).collect(), i),
                        ]
                    })
                    .collect(),
            )
        })
        .collect();
    write_panels(dir, &format!("rg_{kind}"), &panels)?;
    Ok(true)
}

/// The rg section of the run report: every slope and amplitude with
/// measured, exact, asymptotic and reference-talk values, and the plots.
pub fn format_report(p: &Pipeline, flow: &[FlowRow], slopes: &[SlopeRow], plots: &[String]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "## Renormalisation-group flows (rg)\n");
    if slopes.iter().any(|r| r.kind != "layer") {
        let _ = writeln!(
            s,
            "Slopes are d log|coupling| / d log scale by weighted least squares (weights from the bag errors); \
             stderr is the spread of the per-bag slopes / sqrt(bags). `exact` is the same fit to the couplings \
             computed from the exact finite-N deviations (docs/physics.md §4), `asymptotic` what the theory (§6-7) \
             says the slope tends to, `seed` what the reference talks claim (docs/physics.md §9). Nothing is tuned toward either.\n"
        );
    }
    let mut shaky: Vec<String> = flow
        .iter()
        .filter(|r| r.n_unreliable > 0)
        .map(|r| format!("{} N = {} ({})", r.arch, r.width, r.coupling))
        .collect();
    shaky.sort();
    shaky.dedup();
    if !shaky.is_empty() {
        let _ = writeln!(
            s,
            "**Unreliable error bars:** the flows of {} use tuples whose bag errors the moments stage flagged \
             (bag spread far below the exact one, docs/physics.md §10; `n_unreliable` in flow.parquet): their error \
             bars and slope errors understate the true error.\n",
            shaky.join(", ")
        );
    }
    for (kind, title) in [
        ("cutoff", "Cutoff flow: lambda_bar(L) (docs/physics.md §7)"),
        ("sigma_w", "sigma_W flow: u4, u6 (docs/physics.md §6, reference talk 001)"),
        ("input_scale", "Passive flow: u4, u6 against the input scale s at a fixed ensemble (docs/physics.md §14, reference talk 001)"),
        ("layer", "Layer flow of deep nets: K, kurtosis, c6, c8 against l (docs/physics.md §8, §11, reference talk 002)"),
    ] {
        let rows: Vec<&SlopeRow> = slopes.iter().filter(|r| r.kind == kind).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(s, "### {title}\n");
        if kind == "layer" {
            let _ = writeln!(
                s,
                "Input point 0, unit 0's pre-activation at layer l (l = L + 1 is the output). `K (n = inf)` is the \
                 infinite-width recursion and `K (1/n)` adds its first finite-width correction; `LO` are the \
                 leading orders in 1/n of the kurtosis (1/n), c6 (1/n^2) and c8 (1/n^3); `chain` is the exact \
                 single-input theory at this width (docs/physics.md §8, §11).\n"
            );
            s.push_str(&layers::format_layer_table(p, flow));
            let _ = writeln!(
                s,
                "\nRates are d ln X / d l and exponents d ln X / d ln l by weighted least squares over the layers \
                 (kurtosis, c6, c8 from l = 2); stderr from the per-bag fits; `exact` is the same fit to the exact \
                 chain (K: to the recursion); `asymptotic` is the large-l leading order (c_2m ~ l^(m-1) at \
                 criticality). The note compares an exponential with a power law and says whether one power law \
                 describes the measurement (chi-square p >= 0.01).\n"
            );
        }
        s.push_str(&nnqft_report::table(
            &["arch", "d", "N", "propagator", "coupling", "quantity", "range", "measured", "stderr", "exact", "asymptotic", "seed", "points", "note"],
            rows.iter().map(|r| {
                let mut row: Vec<String> = vec![r.arch.clone(), r.d_in.to_string(), r.width.to_string()];
                row.extend([r.propagator, r.coupling, r.quantity, r.range].map(str::to_string));
                row.extend([r.slope, r.stderr, r.exact, r.asymptotic, r.seed_claim].map(num));
                row.extend([r.n_points.to_string(), r.note.clone().unwrap_or_default()]);
                row
            }),
        ));
        let stem = format!("rg_{kind}").replace("rg_layer", "rg_layers");
        if plots.iter().any(|p| *p == stem) {
            let _ = writeln!(s, "\n![{title}](plots/{stem}.png)\n");
        }
    }
    s
}
