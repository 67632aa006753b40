//! # nnqft-cli
//!
//! The pieces every stage binary shares: resolving `--pipeline`, the default
//! data directory, the thread pool, progress reporting, and printing a
//! failure as one line with a non-zero exit code.

pub mod interrupt;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use nnqft_core::Pipeline;
use nnqft_core::pipeline::DEFAULT_PIPELINE_TOML;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A loaded pipeline and where it came from (a path, or "<embedded quick>").
pub struct Loaded {
    pub pipeline: Pipeline,
    pub source: String,
    /// The pipeline file's text as read.
    pub text: String,
    /// The first error in the analysis tables (`[fit]`, `[rg]`), if any,
    /// prefixed with the source: sample and moments warn and go on, fit and
    /// rg refuse ([`Loaded::require_analysis`]).
    pub analysis_error: Option<String>,
}

impl Loaded {
    /// Fails with the analysis-table error (for the fit and rg stages).
    pub fn require_analysis(&self) -> Result<()> {
        match &self.analysis_error {
            Some(e) => bail!("{e}"),
            None => Ok(()),
        }
    }

    /// Prints the analysis-table error as a warning (for sample and moments).
    pub fn warn_analysis(&self, program: &str) {
        if let Some(e) = &self.analysis_error {
            eprintln!("{program}: warning: {e} (nnqft-fit / nnqft-rg will refuse this; {program} goes on)");
        }
    }
}

fn parse_pipeline(source: &str, text: String) -> Result<Loaded> {
    let (pipeline, analysis) = Pipeline::parse(&text).map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
    Ok(Loaded { pipeline, source: source.to_string(), text, analysis_error: analysis.map(|e| format!("{source}: {e}")) })
}

/// Resolves `--pipeline`: `None` is the embedded default; a value that names
/// an existing file (or ends in `.toml`) is a path; otherwise `NAME` means
/// `pipelines/NAME.toml`, and `quick` works without it (it is embedded in
/// the binaries; a `pipelines/quick.toml` that differs from the embedded copy
/// is used, with a note saying so). An unknown NAME lists the available
/// ones. Parse and validation errors name the file.
pub fn load_pipeline(arg: Option<&str>) -> Result<Loaded> {
    let embedded = || parse_pipeline("<embedded quick pipeline>", DEFAULT_PIPELINE_TOML.into());
    let Some(arg) = arg else {
        return embedded();
    };
    let direct = Path::new(arg);
    let path = if direct.is_file() || arg.ends_with(".toml") || arg.contains('/') {
        direct.to_path_buf()
    } else {
        let p = Path::new("pipelines").join(format!("{arg}.toml"));
        if !p.is_file() {
            if arg == "quick" {
                return embedded();
            }
            bail!("pipeline {arg:?}: no file {arg} nor {}; available: {}", p.display(), available_pipelines().join(", "));
        }
        p
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}: cannot read pipeline", path.display()))?;
    if arg == "quick" && text != DEFAULT_PIPELINE_TOML {
        eprintln!("note: using {} (it differs from the quick pipeline embedded in this binary)", path.display());
    }
    parse_pipeline(&path.display().to_string(), text)
}

/// The names `--pipeline NAME` accepts here: `pipelines/*.toml` and the embedded `quick`.
pub fn available_pipelines() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("pipelines")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".toml").map(str::to_string))
        .collect();
    if !names.iter().any(|n| n == "quick") {
        names.push("quick".into());
    }
    names.sort();
    names
}

/// `--data` if given, else `data/NAME`.
pub fn data_dir(arg: Option<PathBuf>, pipeline: &Pipeline) -> PathBuf {
    arg.unwrap_or_else(|| Path::new("data").join(&pipeline.name))
}

/// Sizes the global rayon pool (`None`: one thread per core).
pub fn init_threads(threads: Option<usize>) -> Result<()> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        if n == 0 {
            bail!("--threads must be >= 1");
        }
        b = b.num_threads(n);
    }
    b.build_global().context("cannot start the thread pool")
}

/// Runs a stage's body; on error prints `PROGRAM: error: REASON` (the whole
/// context chain on one line) and exits with code 1. Ctrl-C is caught
/// ([`interrupt`]): it prints one line and exits 130.
pub fn run_main(program: &'static str, body: impl FnOnce() -> Result<()>) {
    interrupt::install(program);
    if let Err(e) = body() {
        let msg = format!("{e:#}").replace('\n', " ");
        eprintln!("{program}: error: {msg}");
        std::process::exit(1);
    }
}

/// The options every stage takes: `#[command(flatten)]` them into a binary's arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// Pipeline: a file, or NAME for pipelines/NAME.toml [default: the embedded quick pipeline]
    #[arg(long)]
    pub pipeline: Option<String>,
    /// Data directory [default: data/NAME]
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Worker threads [default: one per core]
    #[arg(long)]
    pub threads: Option<usize>,
}

impl Common {
    /// Starts the thread pool and loads the pipeline; returns it with its data directory.
    pub fn setup(&self) -> Result<(Loaded, PathBuf)> {
        init_threads(self.threads)?;
        let loaded = load_pipeline(self.pipeline.as_deref())?;
        let data = data_dir(self.data.clone(), &loaded.pipeline);
        Ok((loaded, data))
    }
}

/// Parses the command line; a usage error is printed as one line
/// (`PROGRAM: error: ...`) with exit code 2. `--help` and `--version` print as usual.
pub fn parse_args<T: clap::Parser>(program: &str) -> T {
    match T::try_parse() {
        Ok(t) => t,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("{program}: error: {first} (see --help)");
            std::process::exit(2);
        }
    }
}

/// Parses `I/N` (1 <= I <= N) for `--shard`.
///
/// ```
/// assert_eq!(nnqft_cli::parse_shard("2/3").unwrap(), (2, 3));
/// assert!(nnqft_cli::parse_shard("0/3").is_err());
/// assert!(nnqft_cli::parse_shard("4/3").is_err());
/// ```
pub fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    let (i, n) = s.split_once('/').ok_or_else(|| format!("--shard {s:?}: expected I/N, e.g. 2/8"))?;
    let i: u32 = i.trim().parse().map_err(|_| format!("--shard {s:?}: I is not a whole number"))?;
    let n: u32 = n.trim().parse().map_err(|_| format!("--shard {s:?}: N is not a whole number"))?;
    if n == 0 || i == 0 || i > n {
        return Err(format!("--shard {s:?}: need 1 <= I <= N"));
    }
    Ok((i, n))
}

/// Progress of a long stage: an indicatif bar on a terminal, otherwise a
/// plain line to stderr every `interval` (for logs and CI).
pub struct Progress {
    label: String,
    unit: &'static str,
    total: u64,
    done: AtomicU64,
    start: Instant,
    bar: Option<ProgressBar>,
    last_line: Mutex<Instant>,
    interval: Duration,
}

impl Progress {
    /// `total` units of work named `unit` ("nets", "MB").
    pub fn new(label: &str, total: u64, unit: &'static str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template(&format!("{{prefix}} [{{bar:30.cyan/blue}}] {{done}}/{{total}} {unit} {{rate}} {unit}/s ETA {{eta}}"))
                    .expect("valid template")
                    // The same number format as the log lines: "585.8k", not "585,824.9259".
                    .with_key("done", |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = w.write_str(&human(s.pos() as f64));
                    })
                    .with_key("total", |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = w.write_str(&human(s.len().unwrap_or(0) as f64));
                    })
                    .with_key("rate", |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = w.write_str(&human(s.per_sec()));
                    })
                    .progress_chars("=> "),
            );
            b.set_prefix(label.to_string());
            b
        });
        Progress {
            label: label.to_string(),
            unit,
            total,
            done: AtomicU64::new(0),
            start: Instant::now(),
            bar,
            last_line: Mutex::new(Instant::now()),
            interval: Duration::from_secs(10),
        }
    }

    /// Adds `n` finished units.
    pub fn inc(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(b) = &self.bar {
            b.inc(n);
            return;
        }
        let mut last = self.last_line.lock().unwrap();
        if last.elapsed() >= self.interval && done < self.total {
            *last = Instant::now();
            let secs = self.start.elapsed().as_secs_f64();
            let rate = done as f64 / secs.max(1e-9);
            let eta = (self.total - done) as f64 / rate.max(1e-9);
            eprintln!(
                "{}: {:.0}% ({}/{} {}, {} {}/s, ETA {:.0}s)",
                self.label,
                100.0 * done as f64 / self.total.max(1) as f64,
                human(done as f64),
                human(self.total as f64),
                self.unit,
                human(rate),
                self.unit,
                eta
            );
        }
    }

    /// Clears the bar; returns (units done, seconds elapsed).
    pub fn finish(&self) -> (u64, f64) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        (self.done.load(Ordering::Relaxed), self.start.elapsed().as_secs_f64())
    }
}

/// Three significant figures with a k/M/G suffix, for counts and rates in
/// progress lines and bars.
///
/// ```
/// use nnqft_cli::human;
/// assert_eq!(human(1234567.0), "1.23M");
/// assert_eq!(human(585824.9259), "586k");
/// assert_eq!(human(12e6), "12.0M");
/// assert_eq!(human(42.0), "42");
/// ```
pub fn human(x: f64) -> String {
    let (v, s) = match x.abs() {
        a if a >= 1e9 => (x / 1e9, "G"),
        a if a >= 1e6 => (x / 1e6, "M"),
        a if a >= 1e3 => (x / 1e3, "k"),
        _ => return format!("{x:.0}"),
    };
    match v.abs() {
        a if a >= 99.95 => format!("{v:.0}{s}"),
        a if a >= 9.995 => format!("{v:.1}{s}"),
        _ => format!("{v:.2}{s}"),
    }
}

/// A value with its error for tables: `1.234e-4±5.6e-6`; "-" for NaN, "0" for an exact zero.
///
/// ```
/// assert_eq!(nnqft_cli::fmt_pm(1.5e-4, 2e-6), "1.500e-4±2.0e-6");
/// ```
pub fn fmt_pm(v: f64, e: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v == 0.0 && (e == 0.0 || e.is_nan()) {
        "0".into()
    } else if e.is_nan() {
        format!("{v:.3e}")
    } else {
        format!("{v:.3e}±{e:.1e}")
    }
}

/// A number for tables: 4 decimals in [1e-3, 1e4), else 2-digit scientific; "-" for NaN.
///
/// ```
/// assert_eq!(nnqft_cli::fmt_g(0.25), "0.2500");
/// assert_eq!(nnqft_cli::fmt_g(-3e-7), "-3.00e-7");
/// ```
pub fn fmt_g(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v == 0.0 {
        "0".into()
    } else if (1e-3..1e4).contains(&v.abs()) {
        format!("{v:.4}")
    } else {
        format!("{v:.2e}")
    }
}
