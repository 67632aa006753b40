//! # nnqft-report
//!
//! One report for the whole run. Every stage writes its own Markdown section
//! (`DATA/report/STAGE.md`, [`write_section`]) headed by the config hash it
//! was written for; [`assemble`] then joins the sections of every stage the
//! pipeline runs into `DATA/report.md` and a self-contained
//! `DATA/report.html` (plots inlined as data URIs, so the file can be mailed
//! or archived on its own). A section written for another config than the
//! tables on disk, or from inputs that have since changed, is kept but marked
//! stale; a stage that has not run yet is listed as missing. The pipeline's
//! TOML and how to reproduce the run close the report.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! nnqft_report::write_section(dir.path(), "moments", "abc", "## Moments\n\nall good\n").unwrap();
//! let s = nnqft_report::read_section(dir.path(), "moments").unwrap();
//! assert_eq!((s.config_hash.as_str(), s.markdown.as_str()), ("abc", "## Moments\n\nall good\n"));
//! ```

use anyhow::{Context, Result};
use base64::Engine;
use nnqft_core::Pipeline;
use nnqft_store::atomic::write_atomic;
use nnqft_store::tables::read_footer;
use std::path::{Path, PathBuf};

/// The stages in report order.
pub const STAGES: [&str; 4] = ["sample", "moments", "fit", "rg"];

/// One stage's section as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    pub stage: String,
    pub config_hash: String,
    pub markdown: String,
}

fn section_path(data: &Path, stage: &str) -> PathBuf {
    data.join("report").join(format!("{stage}.md"))
}

const HEADER: &str = "<!-- nnqft-report section";

/// Writes `DATA/report/STAGE.md` atomically: a header line recording the
/// stage and `config_hash`, then `markdown`.
pub fn write_section(data: &Path, stage: &str, config_hash: &str, markdown: &str) -> Result<()> {
    let dir = data.join("report");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // temporary files of killed writers of this section
    nnqft_store::atomic::clean_stale_temps(&dir, Some(&format!("{stage}.md")))?;
    let text = format!("{HEADER} stage={stage} config_hash={config_hash} -->\n{markdown}");
    write_atomic(&section_path(data, stage), |f| {
        use std::io::Write;
        Ok(f.write_all(text.as_bytes())?)
    })
}

/// Reads a section back; `None` if the stage has not written one (or the
/// file does not carry the header).
pub fn read_section(data: &Path, stage: &str) -> Option<Section> {
    let text = std::fs::read_to_string(section_path(data, stage)).ok()?;
    let (first, rest) = text.split_once('\n')?;
    let fields = first.strip_prefix(HEADER)?.trim().strip_suffix("-->")?;
    let get = |k: &str| fields.split_whitespace().find_map(|f| f.strip_prefix(k)?.strip_prefix('=')).map(str::to_string);
    Some(Section { stage: get("stage")?, config_hash: get("config_hash")?, markdown: rest.to_string() })
}

/// A Markdown table: the header, its separator and one line per row; a `|`
/// inside a cell becomes `/` so it cannot split the cell.
///
/// ```
/// let t = nnqft_report::table(&["a", "b"], [vec!["1".to_string(), "x|y".to_string()]]);
/// assert_eq!(t, "| a | b |\n|---|---|\n| 1 | x/y |\n");
/// ```
pub fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut s = format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| c.replace('|', "/")).collect();
        s.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    s
}

/// The hash the sample section is written for: every (arch, width)'s sample hash.
pub fn sample_hash(p: &Pipeline) -> String {
    let keys: Vec<String> = p.arch_widths().into_iter().map(|(a, w)| p.sample_hash(&p.sample.arch[a], w)).collect();
    nnqft_core::rng::sha256_hex(keys.join(",").as_bytes())
}

/// The hash the moments section is written for: both table families' hashes
/// (and the symmetry tables', when tests are declared).
pub fn moments_hash(p: &Pipeline) -> String {
    let tables = format!("{}+{}", nnqft_store::keys::tables_hash(p, false), nnqft_store::keys::tables_hash(p, true));
    if p.symmetry.is_empty() { tables } else { format!("{tables}+{}", nnqft_store::keys::symmetry_hash(p)) }
}

/// Whether the pipeline runs STAGE (sample and moments always do).
pub fn runs(p: &Pipeline, stage: &str) -> bool {
    match stage {
        "fit" => !p.fit.run.is_empty(),
        "rg" => !p.rg.cutoff.is_empty() || p.rg.sigma_w.is_some() || p.rg.input_scale.is_some() || p.deep_archs().next().is_some(),
        _ => true,
    }
}

/// The table whose footer a fit or rg section must agree with.
fn primary_table(stage: &str) -> Option<&'static str> {
    match stage {
        "fit" => Some("couplings.parquet"),
        "rg" => Some("flow.parquet"),
        _ => None,
    }
}

/// Why a section no longer describes the data as configured now (None: current).
pub fn staleness(p: &Pipeline, data: &Path, s: &Section) -> Option<String> {
    let earlier = || Some(format!("written for an earlier config; rerun `just {} {}`", s.stage, p.name));
    match s.stage.as_str() {
        "sample" => (s.config_hash != sample_hash(p)).then(earlier).flatten(),
        "moments" => (s.config_hash != moments_hash(p)).then(earlier).flatten(),
        stage => {
            let table = primary_table(stage)?;
            let footer = match read_footer(&data.join(table)) {
                Ok(f) => f,
                Err(_) => return Some(format!("{table} is missing; rerun `just {stage} {}`", p.name)),
            };
            if footer["config_hash"].as_str() != Some(s.config_hash.as_str()) {
                return Some(format!("{table} was rewritten since; rerun `just {stage} {}`", p.name));
            }
            let sources = footer["sources"].as_object().cloned().unwrap_or_default();
            for (file, hash) in sources {
                let want = nnqft_store::keys::tables_hash(p, file.starts_with("layers"));
                if hash.as_str() != Some(want.as_str()) {
                    return Some(format!("computed from a {file} of an earlier config; rerun `just {stage} {}`", p.name));
                }
            }
            None
        }
    }
}

/// What [`assemble`] wrote.
#[derive(Clone, Debug)]
pub struct Assembled {
    pub markdown: PathBuf,
    pub html: PathBuf,
    /// (stage, reason) of every stale section.
    pub stale: Vec<(String, String)>,
    /// Stages the pipeline runs that have written no section yet.
    pub missing: Vec<String>,
}

/// The report's Markdown: a header with the stages' status, every section
/// of the stages the pipeline runs, how to reproduce, the pipeline TOML.
pub fn markdown(p: &Pipeline, data: &Path, source: &str, toml: &str) -> (String, Vec<(String, String)>, Vec<String>) {
    use std::fmt::Write;
    let mut out = String::new();
    let mut stale = Vec::new();
    let mut missing = Vec::new();
    let mut body = String::new();
    for stage in STAGES.iter().filter(|s| runs(p, s)) {
        match read_section(data, stage) {
            Some(sec) => {
                if let Some(why) = staleness(p, data, &sec) {
                    let _ = writeln!(body, "> **Stale section ({stage}):** {why}. It is shown as last written.\n");
                    stale.push((stage.to_string(), why));
                }
                body.push_str(sec.markdown.trim_end());
                body.push_str("\n\n");
            }
            None => {
                let _ = writeln!(body, "## {stage}\n\n> **Not run yet:** run `just {stage} {}`.\n", p.name);
                missing.push(stage.to_string());
            }
        }
    }
    let _ = writeln!(out, "# nnqft report: {}\n", p.name);
    let _ = writeln!(
        out,
        "nnqft {} · pipeline `{}` · seed {} · sample config hash `{}` · moments config hash `{}`\n",
        nnqft_core::VERSION,
        source,
        p.seed,
        &sample_hash(p)[..16],
        &moments_hash(p)[..16]
    );
    let ran: Vec<&str> = STAGES.iter().copied().filter(|s| runs(p, s)).collect();
    let _ = writeln!(out, "Stages in this pipeline: {}.", ran.join(", "));
    if stale.is_empty() && missing.is_empty() {
        let _ = writeln!(out, "Every section is current: it was written for this config from the tables on disk.\n");
    } else {
        let _ = writeln!(out, "Not every section is current:\n");
        for (stage, why) in &stale {
            let _ = writeln!(out, "- **{stage}**: stale, {why}");
        }
        for stage in &missing {
            let _ = writeln!(out, "- **{stage}**: not run yet");
        }
        let _ = writeln!(out);
    }
    out.push_str(&body);
    let _ = writeln!(out, "## How to reproduce\n");
    let _ = writeln!(
        out,
        "With nnqft {} (same sampler version, any machine, any thread count; the samples are bit-identical):\n",
        nnqft_core::VERSION
    );
    let _ = writeln!(out, "```sh\njust all {}\n```\n", p.name);
    let _ = writeln!(
        out,
        "or stage by stage `nnqft-sample`, `nnqft-moments`, `nnqft-fit`, `nnqft-rg` with `--pipeline {source}`. \
         The tables and their footers are described in docs/data.md; the physics in docs/physics.md.\n"
    );
    let _ = writeln!(out, "## Pipeline\n\n`{source}`:\n\n```toml\n{}\n```", toml.trim_end());
    (out, stale, missing)
}

const CSS: &str = "body{font-family:DejaVu Sans,Verdana,Arial,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\
table{border-collapse:collapse;margin:1em 0;font-size:0.85em}th,td{border:1px solid #bbb;padding:2px 6px;text-align:right}\
th{background:#eee}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #ddd}\
pre{background:#f6f6f6;padding:0.8em;overflow-x:auto;font-size:0.85em}code{font-size:0.95em}\
blockquote{border-left:4px solid #d62728;margin:1em 0;padding:0.2em 1em;background:#fff5f5}h2{border-bottom:1px solid #ccc;margin-top:2em}";

/// Renders the report's Markdown as one self-contained HTML page: images
/// under DATA are inlined as base64 data URIs (an image that cannot be read
/// is an error: the report never ships a broken figure).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let html = nnqft_report::html("# t\n\n| a | b |\n|---|---|\n| 1 | 2 |\n", dir.path(), "t").unwrap();
/// assert!(html.contains("<table>") && html.contains("<title>t</title>"));
/// ```
pub fn html(markdown: &str, data: &Path, title: &str) -> Result<String> {
    use pulldown_cmark::{CowStr, Event, Options, Parser, Tag};
    let mut events = Vec::new();
    for ev in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        events.push(match ev {
            Event::Start(Tag::Image { link_type, dest_url, title, id }) if !dest_url.starts_with("data:") => {
                let path = data.join(dest_url.as_ref());
                let bytes = std::fs::read(&path).with_context(|| format!("report: cannot read the figure {}", path.display()))?;
                let mime = if dest_url.ends_with(".svg") { "image/svg+xml" } else { "image/png" };
                let uri = format!("data:{mime};base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes));
                Event::Start(Tag::Image { link_type, dest_url: CowStr::from(uri), title, id })
            }
            other => other,
        });
    }
    let mut body = String::new();
    pulldown_cmark::html::push_html(&mut body, events.into_iter());
    let title = title.replace('&', "&amp;").replace('<', "&lt;");
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    ))
}

/// Writes `DATA/report.md` and `DATA/report.html` (each atomically) from
/// the sections on disk; `source` is where the pipeline came from and
/// `toml` its text.
pub fn assemble(p: &Pipeline, data: &Path, source: &str, toml: &str) -> Result<Assembled> {
    let (md, stale, missing) = markdown(p, data, source, toml);
    let page = html(&md, data, &format!("nnqft report: {}", p.name))?;
    let (markdown, html) = (data.join("report.md"), data.join("report.html"));
    for (path, text) in [(&markdown, &md), (&html, &page)] {
        write_atomic(path, |f| {
            use std::io::Write;
            Ok(f.write_all(text.as_bytes())?)
        })?;
    }
    Ok(Assembled { markdown, html, stale, missing })
}

/// [`assemble`], then one line on stdout with where the report is (and one
/// note on stderr per stale or missing section): what every stage binary
/// does last.
pub fn assemble_and_print(program: &str, p: &Pipeline, data: &Path, source: &str, toml: &str) -> Result<()> {
    let a = assemble(p, data, source, toml)?;
    for (stage, why) in &a.stale {
        eprintln!("{program}: note: the report's {stage} section is stale: {why}");
    }
    let pending = if a.missing.is_empty() { String::new() } else { format!(" (no section yet for: {})", a.missing.join(", ")) };
    println!("{program}: report -> {}{pending}", a.html.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_inlined_and_a_missing_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("plots")).unwrap();
        std::fs::write(dir.path().join("plots/a.png"), [137u8, 80, 78, 71]).unwrap();
        let page = html("![a](plots/a.png)\n", dir.path(), "t").unwrap();
        assert!(page.contains("src=\"data:image/png;base64,iVBORw==\""), "{page}");
        let err = html("![b](plots/b.png)\n", dir.path(), "t").unwrap_err();
        assert!(format!("{err:#}").contains("plots/b.png"), "{err:#}");
    }

    #[test]
    fn a_section_without_header_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("report")).unwrap();
        std::fs::write(dir.path().join("report/fit.md"), "## fit\n").unwrap();
        assert_eq!(read_section(dir.path(), "fit"), None);
    }
}
