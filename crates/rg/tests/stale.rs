//! One stale-data rule for every stage (README "Stale data"): after a width
//! is removed or `bags` lowered, sample, moments, fit and rg each refuse
//! with one error line naming the stale file, and no table changes; once
//! `nnqft-sample --force` has removed the stale samples, every stage runs.
//! A deep-only pipeline (no `moments.parquet`) runs through rg.

use nnqft_testkit::{ok, run, run_stages, Pipe};
use std::path::{Path, PathBuf};

const BIN: &str = env!("CARGO_BIN_EXE_nnqft-rg");
const STAGES: [&str; 4] = ["nnqft-sample", "nnqft-moments", "nnqft-fit", "nnqft-rg"];

/// widths and bags as given; `shallow` adds the single-layer erf arch, its fit run and cutoff flow.
fn pipe(widths: &[usize], bags: u32, shallow: bool) -> Pipe {
    let mut p = Pipe::new("stale", 11, bags, 2_000, widths, &[2, 4]);
    if shallow {
        p = p.arch("erf-d1", "erf", 1.0, 1.0, &[&[-1.0], &[-0.6], &[-0.2], &[0.2], &[0.6], &[1.0]]);
    }
    p = p.arch_with("relu-deep", "relu", 1.4142135623730951, 0.0, &[&[1.0]], "hidden_layers = 2");
    if shallow {
        p = p.raw("[[fit.run]]\narch = \"erf-d1\"\ncutoff = 100.0\ninterior = [-0.6, 0.6]\n[rg]\ncutoffs = [7.0, 100.0]\n[[rg.cutoff]]\narch = \"erf-d1\"\nwidths = [10]\n");
    }
    p
}

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

fn all(pipe: &Path, data: &Path) {
    run_stages(Path::new(BIN), &STAGES, pipe, data);
}

#[test]
fn every_stage_refuses_stale_data_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let full = pipe(&[3, 10], 3, true).write_as(tmp.path(), "full");
    all(&full, &data);
    let before = tables(&data);

    // A removed width: width=3 of both archs is stale.
    let fewer = pipe(&[10], 3, true).write_as(tmp.path(), "fewer");
    refuses("nnqft-sample", &fewer, &data, &["width=3", "stale", "--force"]);
    refuses("nnqft-moments", &fewer, &data, &["width=3", "stale", "nnqft-sample --force"]);
    refuses("nnqft-fit", &fewer, &data, &["moments.parquet", "stale", "rerun nnqft-moments"]);
    refuses("nnqft-rg", &fewer, &data, &["moments.parquet", "stale", "rerun nnqft-moments"]);
    // The same without the single-layer arch: rg's input is then layers_bags.parquet.
    let deep = pipe(&[10], 3, false).write_as(tmp.path(), "deep");
    refuses("nnqft-rg", &deep, &data, &["layers_bags.parquet", "stale"]);
    assert_eq!(tables(&data), before, "a refusing stage changed a table");

    // Fewer bags: bag=2 is stale everywhere.
    let two = pipe(&[3, 10], 2, true).write_as(tmp.path(), "two");
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
    let deep = pipe(&[3, 10], 3, false).write_as(tmp.path(), "deep");
    all(&deep, &data);
    assert!(!data.join("moments.parquet").exists());
    assert!(data.join("flow.parquet").is_file());
}
