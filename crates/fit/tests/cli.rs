//! nnqft-fit as a command: the measured couplings against the exact
//! finite-N theory, determinism and resume, and one-line refusals of bad
//! input that leave good outputs untouched.

use std::path::{Path, PathBuf};
use nnqft_testkit::{ok, repo, run};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_nnqft-fit");

fn sibling(name: &str) -> PathBuf {
    Path::new(BIN).with_file_name(name)
}

fn err_line(args: &[&str], needles: &[&str]) {
    let out = run(Path::new(BIN), args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "should fail: {args:?}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one error line: {stderr}");
    assert!(lines[0].starts_with("nnqft-fit: error: "), "{}", lines[0]);
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} not in {}", lines[0]);
    }
}

/// sample + moments + fit of `pipeline` into `data`; returns fit's stdout.
fn all(pipeline: &str, data: &Path) -> String {
    let d = data.to_str().unwrap();
    ok(&sibling("nnqft-sample"), &["--pipeline", pipeline, "--data", d]);
    ok(&sibling("nnqft-moments"), &["--pipeline", pipeline, "--data", d]);
    ok(Path::new(BIN), &["--pipeline", pipeline, "--data", d])
}

fn digest(path: &Path) -> String {
    nnqft_core::rng::sha256_hex(&std::fs::read(path).unwrap())
}

/// One row of couplings.parquet as (column -> f64) for the numeric columns.
fn coupling(data: &Path, arch: &str, model: &str) -> std::collections::BTreeMap<String, f64> {
    let rows = nnqft_fit::read_back(&data.join("couplings.parquet")).unwrap();
    let r = rows.iter().find(|r| r.arch == arch && r.model == model).unwrap_or_else(|| panic!("no {arch} {model} row"));
    [
        ("lambda0", r.coef[0]),
        ("lambda0_stderr", r.coef_stderr[0]),
        ("exact_lambda0", r.exact_coef[0]),
        ("value", r.value),
        ("value_stderr", r.value_stderr),
        ("exact_value", r.exact_value),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// docs/physics.md §5 against section 4: lambda_bar (and u4) measured from
/// Monte Carlo G4 equal the values computed from the exact finite-N G4,
/// for a gauss-net with K_W over R (sb = 0.5: with sb = 1 the lognormal
/// tails bias the moments at this size), within 3 standard errors.
#[test]
fn gauss_lambda_bar_matches_the_exact_finite_n_value() {
    let tmp = tempfile::tempdir().unwrap();
    let pipe = tmp.path().join("gauss-fit.toml");
    std::fs::write(
        &pipe,
        r#"name = "gauss-fit"
seed = 11
[sample]
bags = 10
nets_per_bag = 100_000
widths = [10]
[moments]
orders = [2, 4, 6]
[[sample.arch]]
name = "gauss-d1"
activation = "gauss"
d_in = 1
sigma_w = 1.0
sigma_b = 0.5
inputs = [[-0.01], [-0.006], [-0.002], [0.002], [0.006], [0.01]]
[[fit.run]]
arch = "gauss-d1"
cutoff = inf
propagator = "K_W"
interior = [-0.006, 0.006]
"#,
    )
    .unwrap();
    let data = tmp.path().join("data");
    let out = all(pipe.to_str().unwrap(), &data);
    assert!(out.contains("gauss-d1  N = 10"), "{out}");
    for (model, key, exact_key, se_key) in [
        ("lambda_bar", "value", "exact_value", "value_stderr"),
        ("u4", "value", "exact_value", "value_stderr"),
        ("M1", "lambda0", "exact_lambda0", "lambda0_stderr"),
    ] {
        let r = coupling(&data, "gauss-d1", model);
        let z = (r[key] - r[exact_key]) / r[se_key];
        eprintln!("{model}: measured {:.5e} +- {:.1e}, exact {:.5e} ({z:.2} se)", r[key], r[se_key], r[exact_key]);
        assert!(r[se_key] > 0.0 && r[se_key] < 0.1 * r[key].abs(), "{model}: the test must resolve the coupling");
        assert!(z.abs() < 3.0, "{model}: {z:.2} standard errors from exact");
    }
}

#[test]
fn smoke_fit_is_deterministic_resumable_and_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("smoke");
    let d = data.to_str().unwrap();
    let first = all("smoke", &data);
    assert!(first.contains("fitted"), "{first}");
    assert!(first.contains("relu-d1  N = 10"), "{first}");
    assert!(first.contains("not identifiable"), "relu d1 M2/M3 flagged in the table: {first}");
    let files = ["couplings.parquet", "predictions.parquet"].map(|f| data.join(f));
    let before: Vec<String> = files.iter().map(|f| digest(f)).collect();
    let footer = nnqft_store::tables::read_footer(&files[0]).unwrap();
    assert_eq!(footer["stage"], "fit");
    assert!(footer["sources"]["moments.parquet"].is_string());
    // pyarrow and polars read both tables; MSEs reproduced from the predictions.
    let py = Command::new("python3").arg(repo().join("tests/python/check_fit.py")).arg(&data).output().unwrap();
    assert!(py.status.success(), "check_fit.py (pyarrow/polars are installed by `just test`): {}{}", String::from_utf8_lossy(&py.stdout), String::from_utf8_lossy(&py.stderr));
    // Every column of every table here is in the data contract (docs/data.md).
    let py = Command::new("python3").arg(repo().join("tests/python/check_docs.py")).arg(&data).output().unwrap();
    assert!(py.status.success(), "check_docs.py: {}{}", String::from_utf8_lossy(&py.stdout), String::from_utf8_lossy(&py.stderr));
    // Resume: nothing to do.
    let again = ok(Path::new(BIN), &["--pipeline", "smoke", "--data", d]);
    assert!(again.contains("up to date"), "{again}");
    // Forced, on one thread: the same bytes.
    ok(Path::new(BIN), &["--pipeline", "smoke", "--data", d, "--force", "--threads", "1"]);
    let after: Vec<String> = files.iter().map(|f| digest(f)).collect();
    assert_eq!(before, after, "refit with another thread count changed the outputs");

    // Corrupt moments: one error line, the good outputs stay.
    let m = data.join("moments.parquet");
    let bytes = std::fs::read(&m).unwrap();
    std::fs::write(&m, &bytes[..bytes.len() / 2]).unwrap();
    err_line(&["--pipeline", "smoke", "--data", d, "--force"], &["moments.parquet"]);
    let kept: Vec<String> = files.iter().map(|f| digest(f)).collect();
    assert_eq!(before, kept, "a failed fit must not touch the previous outputs");
}

#[test]
fn bad_input_is_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("none");
    let ds = d.to_str().unwrap();
    std::fs::create_dir_all(&d).unwrap();
    err_line(&["--pipeline", "smoke", "--data", ds], &["moments.parquet", "missing", "nnqft-moments"]);
    let base = std::fs::read_to_string(repo().join("pipelines/smoke.toml")).unwrap();
    let cases: [(&str, &str, &[&str]); 5] = [
        ("arch = \"erf-d1\"\ncutoff = 100.0", "arch = \"erf-d9\"\ncutoff = 100.0", &["fit.run[0].arch", "erf-d9"]),
        ("interior = [-0.6, 0.6]", "interior = [0.9, 1.0]", &["fit.run[0].interior", "train"]),
        ("interior = [-0.6, 0.6]", "interior = [-2.0, 2.0]", &["fit.run[0].interior", "no test tuples"]),
        ("arch = \"erf-d1\"\ncutoff = 100.0", "arch = \"erf-d1\"\ncutoff = inf", &["fit.run[0].cutoff", "diverge"]),
        ("widths = [10]\ncutoff", "widths = [7]\ncutoff", &["fit.run[1].widths", "7"]),
    ];
    for (from, to, needles) in cases {
        assert!(base.contains(from), "{from}");
        let p = tmp.path().join("bad.toml");
        std::fs::write(&p, base.replacen(from, to, 1)).unwrap();
        err_line(&["--pipeline", p.to_str().unwrap(), "--data", ds], needles);
    }
    let p = tmp.path().join("nofit.toml");
    let cut = base.find("[[fit.run]]").unwrap();
    let end = base.find("[slurm]").unwrap();
    std::fs::write(&p, format!("{}{}", &base[..cut], &base[end..])).unwrap();
    // No fit runs is not an error (`just all` runs every stage): a note, exit 0, nothing written.
    let out = ok(Path::new(BIN), &["--pipeline", p.to_str().unwrap(), "--data", ds]);
    assert!(out.contains("no [[fit.run]]"), "{out}");
    assert!(!d.join("couplings.parquet").exists());
}
