//! The reference talks' figure, with the theory line they lack: mean |m_n|
//! (with jackknife error bars) and the background against N (log-log), one
//! panel per architecture, with the exact finite-N curve over the points;
//! the layer figure of deep nets on a linear integer layer axis. PNG (text rendered from the
//! embedded DejaVu Sans, no system fonts needed) and SVG.

use crate::SummaryRow;
use anyhow::Result;
use nnqft_core::Pipeline;
use nnqft_plot::{Panel, Scale, Series, write_panels};
use std::path::Path;

/// The exact finite-N mean |m| of one (arch, order) at many widths.
#[derive(Clone, Debug)]
pub struct Curve {
    pub arch: String,
    pub order: usize,
    pub points: Vec<(f64, f64)>,
}

/// Palette index of an order: grey 2, blue 4, red 6.
fn color(order: usize) -> usize {
    match order {
        2 => 5,
        4 => 0,
        _ => 1,
    }
}

/// One panel per architecture: measured mean |m_n| with its jackknife error
/// bar, the background (thin line) and the exact finite-N curve (thick).
fn panels(p: &Pipeline, summary: &[SummaryRow], curves: &[Curve]) -> Vec<Panel> {
    p.sample
        .arch
        .iter()
        .map(|arch| {
            let rows: Vec<&SummaryRow> = summary.iter().filter(|r| r.arch == arch.name).collect();
            let mut series = Vec::new();
            for &order in &p.moments.orders {
                let c = color(order);
                let at: Vec<&&SummaryRow> = rows.iter().filter(|r| r.order == order).collect();
                series.push(
                    Series::markers(format!("|m_{order}| measured"), at.iter().map(|r| (r.width as f64, r.mean_abs_m)).collect(), c)
                        .with_errors(at.iter().map(|r| r.mean_abs_m_stderr).collect()),
                );
                series.push(Series::line(format!("background n={order}"), at.iter().map(|r| (r.width as f64, r.mean_background)).collect(), c).with_stroke(1));
                if let Some(curve) = curves.iter().find(|cv| cv.arch == arch.name && cv.order == order) {
                    series.push(Series::line(format!("exact finite-N n={order}"), curve.points.clone(), c).with_stroke(3));
                }
            }
            Panel::new(format!("{} ({}, d_in = {})", arch.name, arch.activation, arch.d_in), "width N", "mean |m_n|", series)
        })
        .collect()
}

/// Writes `DATA/plots/moments_vs_width.{png,svg}` atomically.
pub fn write_plots(data: &Path, p: &Pipeline, summary: &[SummaryRow], curves: &[Curve]) -> Result<()> {
    write_panels(&data.join("plots"), "moments_vs_width", &panels(p, summary, curves))
}

/// `DATA/plots/layers.{png,svg}` for deep archs (input point 0): per arch,
/// the excess kurtosis against the layer (measured per width, the
/// recursion's leading order and, where known, the exact relu value as
/// lines); and one panel of `K^(l)` for every arch.
pub fn write_layer_plots(data: &Path, rows: &[crate::layers::LayerRow]) -> Result<()> {
    let rows: Vec<&crate::layers::LayerRow> = rows.iter().filter(|r| r.point == 0).collect();
    let mut archs: Vec<&str> = rows.iter().map(|r| r.arch.as_str()).collect();
    archs.dedup();
    let mut panels = Vec::new();
    let mut k_series = Vec::new();
    for (ai, arch) in archs.iter().enumerate() {
        let mine: Vec<&&crate::layers::LayerRow> = rows.iter().filter(|r| r.arch == *arch).collect();
        let mut widths: Vec<usize> = mine.iter().map(|r| r.width).collect();
        widths.dedup();
        let mut series = Vec::new();
        for (wi, &w) in widths.iter().enumerate() {
            let at: Vec<&&&crate::layers::LayerRow> = mine.iter().filter(|r| r.width == w).collect();
            let pts = |f: &dyn Fn(&crate::layers::LayerRow) -> f64| at.iter().map(|r| (r.layer as f64, f(r))).collect::<Vec<_>>();
            let errs = |f: &dyn Fn(&crate::layers::LayerRow) -> f64| at.iter().map(|r| f(r)).collect::<Vec<_>>();
            series.push(Series::markers(format!("n = {w}"), pts(&|r| r.kurtosis), 2 * wi).with_errors(errs(&|r| r.kurtosis_stderr)));
            series.push(Series::line(format!("recursion n = {w}"), pts(&|r| r.kurtosis_theory), 2 * wi));
            if at.iter().any(|r| r.kurtosis_exact.is_finite()) {
                series.push(Series::line(format!("exact n = {w}"), pts(&|r| r.kurtosis_exact), 2 * wi + 1));
            }
            if wi == 0 {
                k_series.push(Series::markers(format!("{arch} (n = {w})"), pts(&|r| r.k), ai).with_errors(errs(&|r| r.k_stderr)));
                k_series.push(Series::line(format!("{arch} recursion"), pts(&|r| r.k_theory), ai));
            }
        }
        panels.push(Panel::new(format!("{arch}: excess kurtosis"), "layer l", "kurtosis", series).scales(Scale::Integer, Scale::Log));
    }
    panels.push(Panel::new("kernel K(l)", "layer l", "K", k_series).scales(Scale::Integer, Scale::Log));
    write_panels(&data.join("plots"), "layers", &panels)
}

/// A histogram of `values` over `bins` equal bins of `[lo, hi]`: bin centres and counts.
fn histogram(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<(f64, f64)> {
    let w = (hi - lo) / bins as f64;
    let mut counts = vec![0.0; bins];
    for &v in values.iter().filter(|v| v.is_finite() && **v >= lo && **v <= hi) {
        counts[(((v - lo) / w) as usize).min(bins - 1)] += 1.0;
    }
    counts.into_iter().enumerate().map(|(i, c)| (lo + (i as f64 + 0.5) * w, c)).collect()
}

/// `DATA/plots/deviations_hist.{png,svg}`: per (arch, order > 2), the
/// histogram over input tuples of N m_n (the deviation from the GP scaled by
/// the width, so that the leading 1/N behaviour lines the widths up), the
/// measurement as markers with Poisson errors and the exact finite-N theory
/// as a step line, for the smallest, a middle and the largest width.
/// Returns false (and writes nothing) when no order above 2 was measured.
pub fn write_deviation_hist(data: &Path, p: &Pipeline, rows: &[crate::TupleRow]) -> Result<bool> {
    const BINS: usize = 16;
    let orders: Vec<usize> = p.moments.orders.iter().copied().filter(|&o| o > 2).collect();
    let mut panels = Vec::new();
    for arch in &p.sample.arch {
        let ws = p.widths_of(arch);
        let mut shown: Vec<usize> = vec![ws[0], ws[ws.len() / 2], ws[ws.len() - 1]];
        shown.dedup();
        for &order in &orders {
            let at = |w: usize| rows.iter().filter(move |r| r.arch == arch.name && r.order == order && r.width == w);
            let all: Vec<f64> = shown.iter().flat_map(|&w| at(w).flat_map(move |r| [r.m * w as f64, r.exact_m * w as f64])).collect();
            let finite = all.iter().copied().filter(|v| v.is_finite());
            let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
            if !(lo.is_finite() && hi.is_finite() && hi > lo) {
                continue;
            }
            let mut series = Vec::new();
            for (i, &w) in shown.iter().enumerate() {
                let measured: Vec<f64> = at(w).map(|r| r.m * w as f64).collect();
                let exact: Vec<f64> = at(w).map(|r| r.exact_m * w as f64).collect();
                let h: Vec<(f64, f64)> = histogram(&measured, lo, hi, BINS).into_iter().filter(|&(_, c)| c > 0.0).collect();
                let errs = h.iter().map(|&(_, c)| c.sqrt()).collect();
                series.push(Series::markers(format!("measured N = {w}"), h, i).with_errors(errs));
                let half = (hi - lo) / BINS as f64 / 2.0;
                let steps = histogram(&exact, lo, hi, BINS).into_iter().flat_map(|(x, c)| [(x - half, c), (x + half, c)]).collect();
                series.push(Series::line(format!("exact N = {w}"), steps, i));
            }
            panels.push(
                Panel::new(format!("{}: n = {order}, {} tuples", arch.name, at(shown[0]).count()), format!("N m_{order}"), "tuples per bin", series)
                    .scales(Scale::Linear, Scale::Linear),
            );
        }
    }
    if panels.is_empty() {
        return Ok(false);
    }
    nnqft_plot::write_grid(&data.join("plots"), "deviations_hist", &panels, orders.len().max(1))?;
    Ok(true)
}
