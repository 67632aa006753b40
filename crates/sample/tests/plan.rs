//! `nnqft-sample --plan` (docs/physics.md §10): the cost and resolution of a
//! run from the exact theory, writing nothing.

use nnqft_testkit::{ok, repo};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_nnqft-sample");

#[test]
fn plan_of_hms2020_writes_nothing_and_names_the_nets_needed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = ok(Path::new(BIN), &["--pipeline", "hms2020", "--data", data.to_str().unwrap(), "--plan", "--threads", "2"]);
    eprintln!("{out}");
    assert!(!data.exists(), "--plan created {}", data.display());
    assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none(), "--plan wrote into the temporary directory");
    assert!(out.contains("plan for hms2020 (nothing is written)"), "{out}");
    for field in ["work:", "disk:", "memory:", "time:"] {
        assert!(out.lines().any(|l| l.trim_start().starts_with(field)), "no {field} line\n{out}");
    }
    assert!(out.contains("14400 parts to write (900M nets)"), "{out}");
    let row = |arch: &str, width: &str, order: &str| -> Vec<String> {
        out.lines()
            .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
            .find(|f| f.len() >= 6 && f[0] == arch && f[1] == width && f[2] == order)
            .unwrap_or_else(|| panic!("no row {arch} {width} {order}\n{out}"))
    };
    // erf's 6-point function at N = 1000: mean |exact m_6| 1.7e-4 against a background of 6.9e-3.
    let erf = row("erf-d1", "1000", "6");
    assert_eq!(erf[5], "NO", "{erf:?}");
    let need: f64 = erf[6].parse().unwrap();
    let (m, bg): (f64, f64) = (erf[3].parse().unwrap(), erf[4].parse().unwrap());
    let want = 1e6 * (3.0 * bg / m).powi(2);
    assert!((need / want - 1.0).abs() < 0.01 && need > 1e9, "nets per bag to resolve {need:e}, from the printed columns {want:e}");
    // and a resolved one: erf's 4-point function at N = 2
    assert_eq!(row("erf-d1", "2", "4")[5], "yes");
    assert!(repo().join("pipelines/hms2020.toml").is_file());
}

#[test]
fn plan_of_a_deep_pipeline_says_there_is_no_exact_variance() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(Path::new(BIN), &["--pipeline", "quick", "--data", tmp.path().join("d").to_str().unwrap(), "--plan"]);
    assert!(out.contains("relu-deep: deep net (hidden_layers = 4): no exact variance"), "{out}");
    assert!(out.contains("gauss-d1") && out.contains("m_2 = 0 exactly"), "{out}");
}
