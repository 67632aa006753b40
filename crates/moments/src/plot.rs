//! The seed talks' figure, with the theory line they lack: mean |m_n| and
//! the background against N (log-log), one panel per architecture, with the
//! exact finite-N curve over the points. PNG (text rendered from the
//! embedded DejaVu Sans, no system fonts needed) and SVG.

use crate::SummaryRow;
use anyhow::{Result, anyhow};
use nnqft_core::Pipeline;
use nnqft_plot::{Figure, Panel, Series, draw_legend, write_figure, write_panels};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// The exact finite-N mean |m| of one (arch, order) at many widths.
#[derive(Clone, Debug)]
pub struct Curve {
    pub arch: String,
    pub order: usize,
    pub points: Vec<(f64, f64)>,
}

fn color(order: usize) -> RGBColor {
    match order {
        2 => RGBColor(90, 90, 90),
        4 => RGBColor(31, 119, 180),
        _ => RGBColor(214, 39, 40),
    }
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, p: &Pipeline, summary: &[SummaryRow], curves: &[Curve]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
    let archs = &p.sample.arch;
    let panels = root.split_evenly((1, archs.len()));
    let positive = |v: f64| v.is_finite() && v > 0.0;
    for (area, arch) in panels.iter().zip(archs) {
        let rows: Vec<&SummaryRow> = summary.iter().filter(|r| r.arch == arch.name).collect();
        let ys: Vec<f64> = rows
            .iter()
            .flat_map(|r| [r.mean_abs_m, r.mean_background])
            .chain(curves.iter().filter(|c| c.arch == arch.name).flat_map(|c| c.points.iter().map(|p| p.1)))
            .filter(|&v| positive(v))
            .collect();
        let xs: Vec<f64> = rows.iter().map(|r| r.width as f64).collect();
        if ys.is_empty() || xs.is_empty() {
            continue;
        }
        let (xmin, xmax) = (xs.iter().cloned().fold(f64::INFINITY, f64::min), xs.iter().cloned().fold(0.0, f64::max));
        let (ymin, ymax) = (ys.iter().cloned().fold(f64::INFINITY, f64::min), ys.iter().cloned().fold(0.0, f64::max));
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{} ({}, d_in = {})", arch.name, arch.activation, arch.d_in), ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((xmin / 1.3..xmax * 1.3).log_scale(), (ymin / 2.0..ymax * 2.0).log_scale())
            .map_err(|e| anyhow!("{e:?}"))?;
        chart
            .configure_mesh()
            .x_desc("width N")
            .y_desc("mean |m_n|")
            .x_labels(8)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .light_line_style(WHITE.mix(0.0))
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| anyhow!("{e:?}"))?;
        for &order in &p.moments.orders {
            let c = color(order);
            let pts: Vec<(f64, f64)> =
                rows.iter().filter(|r| r.order == order && positive(r.mean_abs_m)).map(|r| (r.width as f64, r.mean_abs_m)).collect();
            chart
                .draw_series(PointSeries::of_element(pts, 5, c.filled(), &|pos, s, st| Circle::new(pos, s, st)))
                .map_err(|e| anyhow!("{e:?}"))?
                .label(format!("|m_{order}| measured"))
                .legend(move |(x, y)| Circle::new((x + 10, y), 5, c.filled()));
            let bg: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.order == order && positive(r.mean_background))
                .map(|r| (r.width as f64, r.mean_background))
                .collect();
            chart
                .draw_series(LineSeries::new(bg, c.stroke_width(1)))
                .map_err(|e| anyhow!("{e:?}"))?
                .label(format!("background n={order}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(1)));
            if let Some(curve) = curves.iter().find(|cv| cv.arch == arch.name && cv.order == order) {
                let pts: Vec<(f64, f64)> = curve.points.iter().copied().filter(|p| positive(p.1)).collect();
                chart
                    .draw_series(LineSeries::new(pts, c.stroke_width(3)))
                    .map_err(|e| anyhow!("{e:?}"))?
                    .label(format!("exact finite-N n={order}"))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
            }
        }
        draw_legend(&mut chart)?;
    }
    root.present().map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}

struct MomentsFigure<'a>(&'a Pipeline, &'a [SummaryRow], &'a [Curve]);

impl Figure for MomentsFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        draw(root, self.0, self.1, self.2)
    }
}

/// Writes `DATA/plots/moments_vs_width.{png,svg}` atomically.
pub fn write_plots(data: &Path, p: &Pipeline, summary: &[SummaryRow], curves: &[Curve]) -> Result<()> {
    let size = (460 * p.sample.arch.len() as u32, 520);
    write_figure(&data.join("plots"), "moments_vs_width", size, &MomentsFigure(p, summary, curves))
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
            series.push(Series { label: format!("n = {w}"), points: pts(&|r| r.kurtosis), line: false, color: 2 * wi });
            series.push(Series { label: format!("recursion n = {w}"), points: pts(&|r| r.kurtosis_theory), line: true, color: 2 * wi });
            if at.iter().any(|r| r.kurtosis_exact.is_finite()) {
                series.push(Series { label: format!("exact n = {w}"), points: pts(&|r| r.kurtosis_exact), line: true, color: 2 * wi + 1 });
            }
            if wi == 0 {
                k_series.push(Series { label: format!("{arch} (n = {w})"), points: pts(&|r| r.k), line: false, color: ai });
                k_series.push(Series { label: format!("{arch} recursion"), points: pts(&|r| r.k_theory), line: true, color: ai });
            }
        }
        panels.push(Panel { title: format!("{arch}: excess kurtosis"), x: "layer l".into(), y: "kurtosis".into(), series });
    }
    panels.push(Panel { title: "kernel K(l)".into(), x: "layer l".into(), y: "K".into(), series: k_series });
    write_panels(&data.join("plots"), "layers", &panels)
}
