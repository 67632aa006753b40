//! One stale-data rule for every stage (README "Stale data"): after a width
//! is removed or `bags` lowered, sample, moments, fit and rg each refuse
//! with one error line naming the stale file, and no table changes; once
//! `nnqft-sample --force` has removed the stale samples, every stage runs.
//! A deep-only pipeline (no `moments.parquet`) runs through rg.

use nnqft_testkit::{ok, run};
use std::path::{Path, PathBuf};

const BIN: &str = env!("CARGO_BIN_EXE_nnqft-rg");
const STAGES: [&str; 4] = ["nnqft-sample", "nnqft-moments", "nnqft-fit", "nnqft-rg"];

const PIPE: &str = r#"name = "stale"
seed = 11
[sample]
bags = 3
nets_per_bag = 2_000
widths = [3, 10]
[moments]
orders = [2, 4]
[[sample.arch]]
name = "erf-d1"
activation = "erf"
d_in = 1
sigma_w = 1.0
sigma_b = 1.0
inputs = [[-1.0], [-0.6], [-0.2], [0.2], [0.6], [1.0]]
[[sample.arch]]
name = "relu-deep"
activation = "relu"
d_in = 1
sigma_w = 1.4142135623730951
sigma_b = 0.0
hidden_layers = 2
inputs = [[1.0]]
[[fit.run]]
arch = "erf-d1"
cutoff = 100.0
interior = [-0.6, 0.6]
[rg]
cutoffs = [7.0, 100.0]
[[rg.cutoff]]
arch = "erf-d1"
widths = [10]
"#;

fn bin(stage: &str) -> PathBuf {
    Path::new(BIN).with_file_name(stage)
}

/// sha256 of every file under `data` except the lock and the sample parts.
fn tables(data: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in ["moments.parquet", "moments_bags.parquet", "summary.parquet", "layers.parquet", "layers_bags.parquet", "couplings.parquet", "predictions.parquet", "flow.parquet", "slopes.parquet", "report.md"] {
        let bytes = std::fs::read(data.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        out.push((name.to_string(), nnqft_core::rng::sha256_hex(&bytes)));
    }
    out
}

/// Runs `stage`, asserts it fails with exactly one stderr line holding every `needle`.
fn refuses(stage: &str, pipe: &Path, data: &Path, needles: &[&str]) {
    let out = run(&bin(stage), &["--pipeline", pipe.to_str().unwrap(), "--data", data.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stage} accepted stale data: {err}");
    assert_eq!(err.lines().count(), 1, "{stage}: one error line expected:\n{err}");
    for n in needles {
        assert!(err.contains(n), "{stage}: {n:?} not in {err}");
    }
}

/// `text` without its single-hidden-layer arch, fit and rg tables.
fn deep_only(text: &str) -> String {
    let first = text.find("[[sample.arch]]").unwrap();
    let deep = text.rfind("[[sample.arch]]").unwrap();
    let fit = text.find("[[fit.run]]").unwrap();
    format!("{}{}", &text[..first], &text[deep..fit])
}

fn all(pipe: &Path, data: &Path) {
    for stage in STAGES {
        ok(&bin(stage), &["--pipeline", pipe.to_str().unwrap(), "--data", data.to_str().unwrap()]);
    }
}

#[test]
fn every_stage_refuses_stale_data_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let pipe = tmp.path().join("stale.toml");
    std::fs::write(&pipe, PIPE).unwrap();
    all(&pipe, &data);
    let before = tables(&data);

    // A removed width: width=3 of both archs is stale.
    let fewer = tmp.path().join("fewer.toml");
    std::fs::write(&fewer, PIPE.replace("widths = [3, 10]", "widths = [10]")).unwrap();
    refuses("nnqft-sample", &fewer, &data, &["width=3", "stale", "--force"]);
    refuses("nnqft-moments", &fewer, &data, &["width=3", "stale", "nnqft-sample --force"]);
    refuses("nnqft-fit", &fewer, &data, &["moments.parquet", "stale", "rerun nnqft-moments"]);
    refuses("nnqft-rg", &fewer, &data, &["moments.parquet", "stale", "rerun nnqft-moments"]);
    // The same without the single-layer arch: rg's input is then layers_bags.parquet.
    let deep = tmp.path().join("deep.toml");
    std::fs::write(&deep, deep_only(&PIPE.replace("widths = [3, 10]", "widths = [10]"))).unwrap();
    refuses("nnqft-rg", &deep, &data, &["layers_bags.parquet", "stale"]);
    assert_eq!(tables(&data), before, "a refusing stage changed a table");

    // Fewer bags: bag=2 is stale everywhere.
    let two = tmp.path().join("two.toml");
    std::fs::write(&two, PIPE.replace("bags = 3", "bags = 2")).unwrap();
    refuses("nnqft-sample", &two, &data, &["bag=2", "stale"]);
    refuses("nnqft-moments", &two, &data, &["bag=2", "stale"]);
    refuses("nnqft-fit", &two, &data, &["moments.parquet", "stale"]);
    refuses("nnqft-rg", &two, &data, &["moments.parquet", "stale"]);
    assert_eq!(tables(&data), before, "a refusing stage changed a table");

    // The remedy the messages name: sample --force removes width=3, then every stage runs.
    ok(&bin("nnqft-sample"), &["--pipeline", fewer.to_str().unwrap(), "--data", data.to_str().unwrap(), "--force"]);
    assert!(!data.join("samples/arch=erf-d1/width=3").exists());
    all(&fewer, &data);
    assert_ne!(tables(&data), before);
}

#[test]
fn a_deep_only_pipeline_runs_through_rg() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let pipe = tmp.path().join("deep.toml");
    std::fs::write(&pipe, deep_only(PIPE)).unwrap();
    all(&pipe, &data);
    assert!(!data.join("moments.parquet").exists());
    assert!(data.join("flow.parquet").is_file());
}
