//! Helpers shared by the end-to-end tests of `nnqft-sample`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_nnqft-sample");

/// Repository root (for pipelines/ and tests/python/).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Runs nnqft-sample with `args` (cwd = repo root) and returns its output.
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).current_dir(repo()).output().expect("run nnqft-sample")
}

/// Runs and asserts success.
pub fn run_ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(out.status.success(), "nnqft-sample {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs, asserts failure with exactly one stderr line containing every `needle`; returns the line.
pub fn run_err(args: &[&str], needles: &[&str]) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "nnqft-sample {args:?} should fail; stderr:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one error line, got:\n{stderr}");
    assert!(lines[0].starts_with("nnqft-sample: error: "), "{}", lines[0]);
    for n in needles {
        assert!(lines[0].contains(n), "error line lacks {n:?}: {}", lines[0]);
    }
    lines[0].to_string()
}

/// Writes `text` to DIR/NAME.toml and returns its path as a string.
pub fn write_pipeline(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// Every file under `dir`: relative path -> (size, SHA-256 of the bytes).
/// Digests keep a failing comparison readable.
pub fn snapshot(dir: &Path) -> BTreeMap<String, (usize, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (usize, String)>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                let digest = (bytes.len(), nnqft_core::rng::sha256_hex(&bytes));
                out.insert(p.strip_prefix(root).unwrap().display().to_string(), digest);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// All nets of (arch, width, bag) as k columns of f64, parts in order.
pub fn read_bag(data: &Path, arch: &str, width: usize, bag: u32) -> Vec<Vec<f64>> {
    let dir = nnqft_store::samples::bag_dir(data, arch, width, bag);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut cols: Vec<Vec<f64>> = Vec::new();
    for f in files {
        let (_, c) = nnqft_store::samples::read_part(&f).unwrap();
        if cols.is_empty() {
            cols = vec![Vec::new(); c.len()];
        }
        for (dst, src) in cols.iter_mut().zip(c) {
            dst.extend(src.into_iter().map(f64::from));
        }
    }
    cols
}

/// Mean of prod_a f(x_a) over nets, and its standard error (per-net spread).
pub fn moment(cols: &[Vec<f64>], tuple: &[usize]) -> (f64, f64) {
    let n = cols[0].len();
    let (mut s, mut s2) = (0.0, 0.0);
    for i in 0..n {
        let v: f64 = tuple.iter().map(|&a| cols[a][i]).product();
        s += v;
        s2 += v * v;
    }
    let mean = s / n as f64;
    (mean, ((s2 / n as f64 - mean * mean) / (n as f64 - 1.0)).sqrt())
}
