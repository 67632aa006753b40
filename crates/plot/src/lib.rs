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

/// The legend every figure uses: lower left, on a translucent white box.
pub fn draw_legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(chart: &mut ChartContext<'a, DB, CT>) -> Result<()>
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .position(SeriesLabelPosition::LowerLeft)
        .draw()
        .map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}

/// One series of a generic log-log panel.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    /// (x, y); non-positive or non-finite values are skipped.
    pub points: Vec<(f64, f64)>,
    /// Markers (measured) or a line (theory).
    pub line: bool,
    /// Colour index.
    pub color: usize,
}

/// A log-log panel: title, axis labels, series.
#[derive(Clone, Debug)]
pub struct Panel {
    pub title: String,
    pub x: String,
    pub y: String,
    pub series: Vec<Series>,
}

const PALETTE: [RGBColor; 6] =
    [RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44), RGBColor(148, 103, 189), RGBColor(255, 127, 14), RGBColor(90, 90, 90)];

fn draw_panels<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, panels: &[Panel]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    let ok = |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite() && p.0 > 0.0 && p.1 > 0.0;
    for (area, panel) in areas.iter().zip(panels) {
        let pts: Vec<(f64, f64)> = panel.series.iter().flat_map(|s| s.points.iter().copied()).filter(ok).collect();
        if pts.is_empty() {
            continue;
        }
        let (xmin, xmax) = pts.iter().fold((f64::MAX, 0.0f64), |(a, b), p| (a.min(p.0), b.max(p.0)));
        let (ymin, ymax) = pts.iter().fold((f64::MAX, 0.0f64), |(a, b), p| (a.min(p.1), b.max(p.1)));
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((xmin / 1.3..xmax * 1.3).log_scale(), (ymin / 2.0..ymax * 2.0).log_scale())
            .map_err(|e| anyhow!("{e:?}"))?;
        chart
            .configure_mesh()
            .x_desc(panel.x.as_str())
            .y_desc(panel.y.as_str())
            .x_label_formatter(&|v| format!("{v:.0e}"))
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .light_line_style(WHITE.mix(0.0))
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| anyhow!("{e:?}"))?;
        for s in &panel.series {
            let c = PALETTE[s.color % PALETTE.len()];
            let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(ok).collect();
            if s.line {
                chart
                    .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                    .map_err(|e| anyhow!("{e:?}"))?
                    .label(s.label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
            } else {
                chart
                    .draw_series(PointSeries::of_element(pts, 4, c.filled(), &|pos, sz, st| Circle::new(pos, sz, st)))
                    .map_err(|e| anyhow!("{e:?}"))?
                    .label(s.label.as_str())
                    .legend(move |(x, y)| Circle::new((x + 10, y), 4, c.filled()));
            }
        }
        draw_legend(&mut chart)?;
    }
    root.present().map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}

struct PanelsFigure<'a>(&'a [Panel]);

impl Figure for PanelsFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        draw_panels(root, self.0)
    }
}

/// Writes `DIR/STEM.{png,svg}` (atomically) with the panels side by side.
pub fn write_panels(dir: &Path, stem: &str, panels: &[Panel]) -> Result<()> {
    write_figure(dir, stem, (480 * panels.len().max(1) as u32, 480), &PanelsFigure(panels))
}

