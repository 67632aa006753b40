//! # nnqft-plot
//!
//! Figures as the stages write them: PNG and SVG side by side, each written
//! atomically, the PNG's text rendered from the embedded DejaVu Sans (no
//! system fonts needed); the SVG names the font and falls back to the
//! viewer's sans-serif (tens of kB instead of 1 MB with the font inside). A figure is anything that can draw itself
//! on a plotters backend ([`Figure`]); [`write_panels`] draws generic
//! log-log panels.

use anyhow::{Context, Result, anyhow};
use nnqft_store::atomic::write_atomic;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();

/// Registers DejaVu Sans as plotters' "sans-serif" (once per process).
pub fn embed_font() {
    FONT.call_once(|| {
        for (style, bytes) in [(FontStyle::Normal, dejavu::sans::regular()), (FontStyle::Bold, dejavu::sans::bold())] {
            plotters::style::register_font("sans-serif", style, bytes).ok().expect("DejaVu Sans is a valid font");
        }
    });
}

/// Points every text of an SVG at DejaVu Sans (the font the PNG is drawn
/// with) and then the viewer's sans-serif. The font is not embedded: it made
/// every SVG about 1 MB; the PNG beside it is the exact rendering.
///
/// ```
/// let svg = nnqft_plot::svg_font_family("<svg><text font-family=\"sans-serif\">N</text></svg>");
/// assert!(svg.contains("font-family=\"DejaVu Sans, Verdana, Arial, sans-serif\""));
/// ```
pub fn svg_font_family(svg: &str) -> String {
    svg.replace("font-family=\"sans-serif\"", "font-family=\"DejaVu Sans, Verdana, Arial, sans-serif\"")
}

/// Something drawn on any plotters backend.
pub trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static;
}

/// Writes `DIR/STEM.svg` (text in DejaVu Sans or the viewer's sans-serif) and `DIR/STEM.png`, each atomically.
pub fn write_figure(dir: &Path, stem: &str, size: (u32, u32), fig: &impl Figure) -> Result<()> {
    embed_font();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        fig.draw(&root)?;
    }
    let svg = svg_font_family(&svg);
    write_atomic(&dir.join(format!("{stem}.svg")), |f| {
        use std::io::Write;
        Ok(f.write_all(svg.as_bytes())?)
    })?;
    // plotters encodes the PNG itself when it owns the path: draw to a
    // temporary sibling (ending in .png so the encoder knows the format),
    // then sync and rename it into place.
    let tmp = dir.join(format!(".{stem}.png.tmp-{}-0.png", std::process::id()));
    {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        fig.draw(&root)?;
    }
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).with_context(|| format!("cannot sync {}", tmp.display()))?;
    let dst = dir.join(format!("{stem}.png"));
    std::fs::rename(&tmp, &dst).with_context(|| format!("cannot rename into {}", dst.display()))
}

/// How an axis maps values: logarithmic, linear, or linear with integer
/// ticks (layers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scale {
    #[default]
    Log,
    Linear,
    Integer,
}

/// One series of a panel: markers (measured, optionally with error bars) or
/// a line (theory).
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    /// (x, y); points a log axis cannot show (non-positive) and non-finite
    /// values are skipped.
    pub points: Vec<(f64, f64)>,
    /// One standard error per point (empty: no error bars).
    pub errors: Vec<f64>,
    /// Markers (measured) or a line (theory).
    pub line: bool,
    /// Line width in pixels (lines only).
    pub stroke: u32,
    /// Colour index into the palette.
    pub color: usize,
}

impl Series {
    /// Measured points drawn as markers.
    ///
    /// ```
    /// let s = nnqft_plot::Series::markers("N = 10", vec![(1.0, 2.0)], 0).with_errors(vec![0.1]);
    /// assert_eq!(s.errors, vec![0.1]);
    /// ```
    pub fn markers(label: impl Into<String>, points: Vec<(f64, f64)>, color: usize) -> Self {
        Series { label: label.into(), points, errors: Vec::new(), line: false, stroke: 2, color }
    }

    /// Theory drawn as a line.
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>, color: usize) -> Self {
        Series { label: label.into(), points, errors: Vec::new(), line: true, stroke: 2, color }
    }

    /// One standard error per point, drawn as a vertical bar of +-1 stderr.
    pub fn with_errors(mut self, errors: Vec<f64>) -> Self {
        self.errors = errors;
        self
    }

    /// The line width in pixels.
    pub fn with_stroke(mut self, stroke: u32) -> Self {
        self.stroke = stroke;
        self
    }
}

/// A panel: title, axis labels and scales, series. The legend goes below
/// the plot area, so it never covers data.
#[derive(Clone, Debug)]
pub struct Panel {
    pub title: String,
    pub x: String,
    pub y: String,
    pub x_scale: Scale,
    pub y_scale: Scale,
    pub series: Vec<Series>,
    /// Names of the x positions 0, 1, .. of an [`Scale::Integer`] axis
    /// (categories such as correlator tuples); empty: numbers.
    pub x_labels: Vec<String>,
}

impl Panel {
    /// A log-log panel.
    pub fn new(title: impl Into<String>, x: impl Into<String>, y: impl Into<String>, series: Vec<Series>) -> Self {
        Panel { title: title.into(), x: x.into(), y: y.into(), x_scale: Scale::Log, y_scale: Scale::Log, series, x_labels: Vec::new() }
    }

    /// The same panel with named x positions 0, 1, .. (an integer axis): as
    /// many are labelled as fit side by side, evenly spaced.
    ///
    /// ```
    /// use nnqft_plot::{Panel, Scale, Series};
    /// let p = Panel::new("t", "tuple", "G", vec![Series::markers("m", vec![(0.0, 1.0), (1.0, 2.0)], 0)])
    ///     .scales(Scale::Integer, Scale::Linear)
    ///     .with_x_labels(vec!["aa".into(), "ab".into()]);
    /// assert_eq!(p.x_labels.len(), 2);
    /// ```
    pub fn with_x_labels(mut self, labels: Vec<String>) -> Self {
        self.x_labels = labels;
        self
    }

    /// The same panel with other axis scales.
    pub fn scales(mut self, x: Scale, y: Scale) -> Self {
        self.x_scale = x;
        self.y_scale = y;
        self
    }
}

/// The palette, by colour index (wraps around).
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(90, 90, 90),
    RGBColor(23, 190, 207),
];

/// Tick values for an axis over `[lo, hi]` (values, not logs): at least
/// three labelled ticks whenever the range is not empty, also for a log
/// range shorter than a decade.
///
/// ```
/// use nnqft_plot::{ticks, Scale};
/// assert_eq!(ticks(Scale::Log, 1.0, 1000.0), vec![1.0, 10.0, 100.0, 1000.0]);
/// assert!(ticks(Scale::Log, 0.3, 0.9).len() >= 3);
/// assert!(ticks(Scale::Log, 0.043, 0.053).len() >= 3);
/// assert_eq!(ticks(Scale::Integer, 1.0, 5.0), vec![1.0, 2.0, 3.0, 4.0, 5.0]);
/// ```
pub fn ticks(scale: Scale, lo: f64, hi: f64) -> Vec<f64> {
    let linear = |lo: f64, hi: f64, want: f64, integer: bool| -> Vec<f64> {
        let raw = ((hi - lo) / want).max(f64::MIN_POSITIVE);
        let mag = 10f64.powf(raw.log10().floor());
        let mut step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|&s| s >= raw).unwrap_or(10.0 * mag);
        if integer {
            step = step.round().max(1.0);
        }
        let first = (lo / step).ceil() as i64;
        let last = (hi / step).floor() as i64;
        (first..=last).map(|k| k as f64 * step).collect()
    };
    match scale {
        Scale::Linear => linear(lo, hi, 5.0, false),
        Scale::Integer => linear(lo, hi, 8.0, true),
        Scale::Log => {
            let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
            for mantissas in [&[1.0][..], &[1.0, 2.0, 5.0], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]] {
                let t: Vec<f64> =
                    (a..=b).flat_map(|k| mantissas.iter().map(move |m| m * 10f64.powi(k))).filter(|&v| v >= lo * (1.0 - 1e-12) && v <= hi * (1.0 + 1e-12)).collect();
                if t.len() >= 3 {
                    let thin = t.len().div_ceil(9);
                    return t.into_iter().step_by(thin).collect();
                }
            }
            // Less than a decade with fewer than three 1..9 x 10^k ticks: linear ticks, finer until there are three.
            [4.0, 8.0, 16.0].iter().map(|&n| linear(lo, hi, n, false).into_iter().filter(|&v| v > 0.0).collect::<Vec<_>>()).find(|t| t.len() >= 3).unwrap_or_default()
        }
    }
}

/// A tick label: plain decimals between 1e-3 and 1e5, else `2e-5`.
///
/// ```
/// assert_eq!(nnqft_plot::tick_label(0.25), "0.25");
/// assert_eq!(nnqft_plot::tick_label(100.0), "100");
/// assert_eq!(nnqft_plot::tick_label(2e-5), "2e-5");
/// ```
pub fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    if (1e-3..1e5).contains(&a) {
        let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
    } else {
        let s = format!("{v:.1e}");
        s.replace(".0e", "e")
    }
}

/// Where a value lands on a drawn axis (log10 for log axes); None if the
/// axis cannot show it.
fn to_axis(scale: Scale, v: f64) -> Option<f64> {
    match scale {
        Scale::Log if v > 0.0 && v.is_finite() => Some(v.log10()),
        Scale::Linear | Scale::Integer if v.is_finite() => Some(v),
        _ => None,
    }
}

fn from_axis(scale: Scale, v: f64) -> f64 {
    if scale == Scale::Log { 10f64.powf(v) } else { v }
}

/// The range drawn for data spanning `[lo, hi]`, with a margin.
fn padded(scale: Scale, lo: f64, hi: f64) -> (f64, f64) {
    let (a, b) = (to_axis(scale, lo).unwrap_or(0.0), to_axis(scale, hi).unwrap_or(1.0));
    let span = if b > a { b - a } else if scale == Scale::Log { 1.0 } else { a.abs().max(1.0) };
    let pad = if scale == Scale::Integer { 0.5_f64.max(span * 0.04) } else { span * 0.08 };
    (a - pad, b + pad)
}

/// A linear axis (over values or their log10) with the ticks we chose.
#[derive(Clone)]
struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let f = (v - self.lo) / (self.hi - self.lo);
        limit.0 + ((limit.1 - limit.0) as f64 * f + 1e-3).floor() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() { Vec::new() } else { self.ticks.clone() }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for Ticked {
    fn format(v: &f64) -> String {
        tick_label(*v)
    }
}

const LEGEND_FONT: u32 = 12;
const LEGEND_ROW: u32 = 18;

/// Legend entries per row and rows for `labels` in a panel `width` wide.
fn legend_layout(width: u32, labels: &[&str]) -> (u32, u32) {
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u32;
    let cell = 34 + 7 * longest;
    let per_row = ((width.saturating_sub(20)) / cell.max(1)).max(1);
    (per_row, (labels.len() as u32).div_ceil(per_row))
}

fn legend_height(width: u32, panel: &Panel) -> u32 {
    let labels: Vec<&str> = panel.series.iter().map(|s| s.label.as_str()).collect();
    let (_, rows) = legend_layout(width, &labels);
    rows * LEGEND_ROW + 8
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("{e:?}")
}

/// Draws one panel (plot on top, legend below) into `area`.
pub fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &Panel, legend_rows_px: u32) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (w, h) = area.dim_in_pixel();
    let (plot_area, legend_area) = area.split_vertically(h.saturating_sub(legend_rows_px));
    let (xs, ys) = (panel.x_scale, panel.y_scale);
    let shown = |s: &Series, i: usize| -> Option<(f64, f64, f64)> {
        let (x, y) = s.points[i];
        let e = s.errors.get(i).copied().filter(|e| e.is_finite() && *e > 0.0).unwrap_or(0.0);
        Some((to_axis(xs, x)?, to_axis(ys, y)?, e))
    };
    let mut xr = (f64::INFINITY, f64::NEG_INFINITY);
    let mut yr = (f64::INFINITY, f64::NEG_INFINITY);
    for s in &panel.series {
        for i in 0..s.points.len() {
            if let Some((x, y, e)) = shown(s, i) {
                let v = from_axis(ys, y);
                xr = (xr.0.min(x), xr.1.max(x));
                yr = (yr.0.min(to_axis(ys, v - e).unwrap_or(y)), yr.1.max(to_axis(ys, v + e).unwrap_or(y)));
            }
        }
    }
    if !xr.0.is_finite() || !yr.0.is_finite() {
        plot_area
            .draw(&Text::new(format!("{}: nothing to plot", panel.title), (10, 20), ("sans-serif", 14)))
            .map_err(err)?;
        return Ok(());
    }
    let (x0, x1) = padded(xs, from_axis(xs, xr.0), from_axis(xs, xr.1));
    let (y0, y1) = padded(ys, from_axis(ys, yr.0), from_axis(ys, yr.1));
    let key = |scale: Scale, a: f64, b: f64| -> Vec<f64> {
        ticks(scale, from_axis(scale, a), from_axis(scale, b)).into_iter().filter_map(|t| to_axis(scale, t)).collect()
    };
    let named = xs == Scale::Integer && !panel.x_labels.is_empty();
    let x_ticks = if named {
        // every k-th category, so that the labels (~8 px a character at size 13, with a gap) fit the plot width
        let n = panel.x_labels.len();
        let chars = panel.x_labels.iter().map(|l| l.chars().count()).max().unwrap_or(1) + 1;
        let fit = ((w.saturating_sub(92)) as usize / (8 * chars)).max(1);
        let step = n.div_ceil(fit).max(1);
        (0..n).step_by(step).map(|i| i as f64).filter(|&v| v >= x0 && v <= x1).collect()
    } else {
        key(xs, x0, x1)
    };
    let x_name = |v: f64| -> String {
        if named {
            let i = v.round();
            if (v - i).abs() < 1e-9 && i >= 0.0 {
                return panel.x_labels.get(i as usize).cloned().unwrap_or_default();
            }
        }
        tick_label(from_axis(xs, v))
    };
    let mut chart = ChartBuilder::on(&plot_area)
        .caption(&panel.title, ("sans-serif", 17))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(62)
        .build_cartesian_2d(Ticked { lo: x0, hi: x1, ticks: x_ticks }, Ticked { lo: y0, hi: y1, ticks: key(ys, y0, y1) })
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(panel.x.as_str())
        .y_desc(panel.y.as_str())
        .x_label_formatter(&|v| x_name(*v))
        .y_label_formatter(&|v| tick_label(from_axis(ys, *v)))
        .bold_line_style(BLACK.mix(0.08))
        .light_line_style(WHITE.mix(0.0))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    for s in &panel.series {
        let c = PALETTE[s.color % PALETTE.len()];
        let pts: Vec<(f64, f64, f64)> = (0..s.points.len()).filter_map(|i| shown(s, i)).collect();
        if s.line {
            chart.draw_series(LineSeries::new(pts.iter().map(|p| (p.0, p.1)), c.stroke_width(s.stroke))).map_err(err)?;
            continue;
        }
        let bars = pts.iter().filter(|p| p.2 > 0.0).map(|&(x, y, e)| {
            let v = from_axis(ys, y);
            let lo = to_axis(ys, v - e).unwrap_or(y0).max(y0);
            let hi = to_axis(ys, v + e).unwrap_or(y1).min(y1);
            ErrorBar::new_vertical(x, lo, y, hi, c.stroke_width(1), 6)
        });
        chart.draw_series(bars).map_err(err)?;
        chart.draw_series(pts.iter().map(|p| Circle::new((p.0, p.1), 4, c.filled()))).map_err(err)?;
    }
    // The legend, below the plot area: a sample of each series and its label.
    let labels: Vec<&str> = panel.series.iter().map(|s| s.label.as_str()).collect();
    let (per_row, _) = legend_layout(w, &labels);
    let cell = (w.saturating_sub(20)) / per_row.max(1);
    for (i, s) in panel.series.iter().enumerate() {
        let (row, col) = (i as u32 / per_row, i as u32 % per_row);
        let (x, y) = (10 + (col * cell) as i32, 4 + (row * LEGEND_ROW) as i32 + LEGEND_ROW as i32 / 2);
        let c = PALETTE[s.color % PALETTE.len()];
        if s.line {
            legend_area.draw(&PathElement::new(vec![(x, y), (x + 22, y)], c.stroke_width(s.stroke))).map_err(err)?;
        } else {
            legend_area.draw(&Circle::new((x + 11, y), 4, c.filled())).map_err(err)?;
            if !s.errors.is_empty() {
                legend_area.draw(&PathElement::new(vec![(x + 11, y - 7), (x + 11, y + 7)], c.stroke_width(1))).map_err(err)?;
            }
        }
        let font = ("sans-serif", LEGEND_FONT).into_font().color(&BLACK).pos(plotters::style::text_anchor::Pos::new(plotters::style::text_anchor::HPos::Left, plotters::style::text_anchor::VPos::Center));
        legend_area.draw(&Text::new(s.label.clone(), (x + 28, y), font)).map_err(err)?;
    }
    Ok(())
}

/// Panel width and plot height of [`write_panels`] (the legend adds to the height).
pub const PANEL_SIZE: (u32, u32) = (480, 440);

/// The panels of one figure and their layout, computed once for both backends.
struct PanelsFigure<'a> {
    panels: &'a [Panel],
    columns: usize,
    /// The legend strip's height: the tallest panel legend, so the plot areas line up.
    legend: u32,
}

impl<'a> PanelsFigure<'a> {
    fn new(panels: &'a [Panel], columns: usize) -> Self {
        let legend = panels.iter().map(|p| legend_height(PANEL_SIZE.0, p)).max().unwrap_or(0);
        PanelsFigure { panels, columns: columns.clamp(1, panels.len().max(1)), legend }
    }

    fn rows(&self) -> usize {
        self.panels.len().div_ceil(self.columns).max(1)
    }
}

impl Figure for PanelsFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(err)?;
        for (area, panel) in root.split_evenly((self.rows(), self.columns)).iter().zip(self.panels) {
            draw_panel(area, panel, self.legend)?;
        }
        root.present().map_err(err)?;
        Ok(())
    }
}

/// Writes `DIR/STEM.{png,svg}` (atomically) with the panels side by side,
/// each [`PANEL_SIZE`] plus its legend below.
pub fn write_panels(dir: &Path, stem: &str, panels: &[Panel]) -> Result<()> {
    write_grid(dir, stem, panels, panels.len())
}

/// Writes `DIR/STEM.{png,svg}` (atomically) with the panels in rows of
/// `columns`, each [`PANEL_SIZE`] plus its legend below.
pub fn write_grid(dir: &Path, stem: &str, panels: &[Panel], columns: usize) -> Result<()> {
    let fig = PanelsFigure::new(panels, columns);
    let size = (PANEL_SIZE.0 * fig.columns as u32, (PANEL_SIZE.1 + fig.legend) * fig.rows() as u32);
    write_figure(dir, stem, size, &fig)
}
