//! Test pipelines built from their tables instead of pasted TOML, and the
//! run-every-stage helper the end-to-end tests share.

use std::fmt::Write;
use std::path::{Path, PathBuf};

/// A pipeline file for a test: `[sample]` and `[moments]` from
/// [`Pipe::new`], one `[[sample.arch]]` per [`Pipe::arch`], anything else
/// (fit runs, rg tables, per-arch extras) verbatim through [`Pipe::raw`].
///
/// ```
/// use nnqft_testkit::Pipe;
/// let p = Pipe::new("t", 3, 4, 1000, &[5], &[2, 4]).arch("erf", "erf", 1.0, 1.0, &[&[-1.0], &[1.0]]);
/// let parsed = nnqft_core::Pipeline::from_toml(p.text()).unwrap();
/// assert_eq!((parsed.sample.bags, parsed.sample.arch[0].k()), (4, 2));
/// ```
#[derive(Clone, Debug)]
pub struct Pipe {
    name: String,
    text: String,
}

impl Pipe {
    /// `name`, `seed`, `[sample]` bags / nets_per_bag / widths, `[moments]` orders.
    pub fn new(name: &str, seed: u64, bags: u32, nets_per_bag: u64, widths: &[usize], orders: &[usize]) -> Pipe {
        let text = format!(
            "name = \"{name}\"\nseed = {seed}\n[sample]\nbags = {bags}\nnets_per_bag = {nets_per_bag}\nwidths = {widths:?}\n[moments]\norders = {orders:?}\n"
        );
        Pipe { name: name.to_string(), text }
    }

    /// Adds `nets_per_part` to `[sample]` (it must come before any arch).
    pub fn nets_per_part(mut self, n: u64) -> Pipe {
        let at = self.text.find("[moments]").expect("built by Pipe::new");
        self.text.insert_str(at, &format!("nets_per_part = {n}\n"));
        self
    }

    /// A single-hidden-layer `[[sample.arch]]` with d_in = the points' length.
    pub fn arch(self, name: &str, activation: &str, sigma_w: f64, sigma_b: f64, inputs: &[&[f64]]) -> Pipe {
        self.arch_with(name, activation, sigma_w, sigma_b, inputs, "")
    }

    /// The same with extra lines in the arch table (`hidden_layers = 4`, `widths = [32]`).
    pub fn arch_with(mut self, name: &str, activation: &str, sigma_w: f64, sigma_b: f64, inputs: &[&[f64]], extra: &str) -> Pipe {
        let d_in = inputs.first().map_or(1, |x| x.len());
        let pts: Vec<String> = inputs.iter().map(|x| format!("[{}]", x.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", "))).collect();
        let _ = write!(
            self.text,
            "[[sample.arch]]\nname = \"{name}\"\nactivation = \"{activation}\"\nd_in = {d_in}\nsigma_w = {sigma_w:?}\nsigma_b = {sigma_b:?}\ninputs = [{}]\n",
            pts.join(", ")
        );
        if !extra.is_empty() {
            self.text.push_str(extra.trim_end());
            self.text.push('\n');
        }
        self
    }

    /// Appends TOML verbatim (fit runs, rg tables).
    pub fn raw(mut self, toml: &str) -> Pipe {
        self.text.push_str(toml.trim_start_matches('\n'));
        if !self.text.ends_with('\n') {
            self.text.push('\n');
        }
        self
    }

    /// The pipeline file's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Writes `dir/NAME.toml` and returns its path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        self.write_as(dir, &self.name)
    }

    /// Writes `dir/STEM.toml` (variants of one pipeline side by side).
    pub fn write_as(&self, dir: &Path, stem: &str) -> PathBuf {
        let path = dir.join(format!("{stem}.toml"));
        std::fs::write(&path, &self.text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }
}

/// Runs each of `stages` (binaries beside `bin`, e.g. "nnqft-sample") on
/// `pipeline` into `data`, asserting success; returns their stdouts.
pub fn run_stages(bin: &Path, stages: &[&str], pipeline: &Path, data: &Path) -> Vec<String> {
    let (p, d) = (pipeline.to_str().expect("utf-8 path"), data.to_str().expect("utf-8 path"));
    stages.iter().map(|s| crate::ok(&bin.with_file_name(s), &["--pipeline", p, "--data", d])).collect()
}
