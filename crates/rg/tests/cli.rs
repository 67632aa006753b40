//! nnqft-rg as a command: the Monte Carlo relu amplitude against THEORY
//! section 7, and the report of the smoke pipeline (markdown + images),
//! resumable and deterministic.

use std::path::Path;
use nnqft_testkit::{ok, repo, run, run_stages, Pipe};

const BIN: &str = env!("CARGO_BIN_EXE_nnqft-rg");

/// Every stage of `pipeline` into `data`; returns rg's stdout.
fn all(pipeline: &str, data: &Path) -> String {
    run_stages(Path::new(BIN), &["nnqft-sample", "nnqft-moments", "nnqft-fit", "nnqft-rg"], Path::new(pipeline), data).swap_remove(3)
}

fn digest(path: &Path) -> String {
    nnqft_core::rng::sha256_hex(&std::fs::read(path).unwrap())
}

/// relu, sb = 0, d = 1, N = 20: N lambda_bar L^5 measured from 10^6 nets
/// is within 3 standard errors of -12.5 / sw^8 (docs/physics.md §7).
#[test]
fn relu_amplitude_matches_theory() {
    let tmp = tempfile::tempdir().unwrap();
    let pipe = Pipe::new("relu-amp", 5, 10, 100_000, &[20], &[2, 4])
        .arch("relu-d1", "relu", 1.0, 0.0, &[&[0.2], &[0.4], &[0.6], &[0.8], &[1.0], &[1.2]])
        .raw("[rg]\ncutoffs = [7.0, 100.0, 1000.0, 100000.0]\n[[rg.cutoff]]\narch = \"relu-d1\"\n")
        .write(tmp.path());
    let data = tmp.path().join("data");
    let out = all(pipe.to_str().unwrap(), &data);
    let line = out.lines().find(|l| l.contains("amplitude")).unwrap_or_else(|| panic!("{out}"));
    let num = |key: &str| -> f64 {
        let rest = &line[line.find(key).unwrap() + key.len()..];
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    let (measured, se, exact) = (num("measured"), num("+-"), num("exact"));
    eprintln!("amplitude {measured} +- {se}, exact {exact}");
    assert!((exact + 12.5).abs() < 1e-6, "{line}");
    assert!(se > 0.0 && se < 1.0, "{line}");
    assert!((measured + 12.5).abs() < 3.0 * se, "{line}");
}

#[test]
fn smoke_report_renders_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("smoke");
    let d = data.to_str().unwrap();
    let out = all("smoke", &data);
    assert!(out.contains("lambda_bar"), "{out}");
    let report = std::fs::read_to_string(data.join("report.md")).unwrap();
    assert!(report.contains("## Cutoff flow") && report.contains("| relu-d1 | 1 | 10 | K | lambda_bar | slope |"), "{report}");
    for f in ["plots/rg_cutoff.png", "plots/rg_cutoff.svg", "flow.parquet", "slopes.parquet"] {
        let len = std::fs::metadata(data.join(f)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "{f}: {len} bytes");
    }
    let footer = nnqft_store::tables::read_footer(&data.join("slopes.parquet")).unwrap();
    assert_eq!(footer["stage"], "rg");
    let files = ["flow.parquet", "slopes.parquet", "report/rg.md", "report.md", "report.html"].map(|f| data.join(f));
    let before: Vec<String> = files.iter().map(|f| digest(f)).collect();
    let again = ok(Path::new(BIN), &["--pipeline", "smoke", "--data", d]);
    assert!(again.contains("up to date"), "{again}");
    ok(Path::new(BIN), &["--pipeline", "smoke", "--data", d, "--force", "--threads", "1"]);
    let after: Vec<String> = files.iter().map(|f| digest(f)).collect();
    assert_eq!(before, after, "recomputing on one thread changed the outputs");
    // Bad input: one line naming the field.
    let bad = tmp.path().join("bad.toml");
    let text = std::fs::read_to_string(repo().join("pipelines/smoke.toml")).unwrap();
    std::fs::write(&bad, text.replace("cutoffs = [7.0, 20.0", "cutoffs = [70.0, 20.0")).unwrap();
    let o = run(Path::new(BIN), &["--pipeline", bad.to_str().unwrap(), "--data", d]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.lines().count() == 1 && err.contains("rg.cutoffs[1]"), "{err}");
}
