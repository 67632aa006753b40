//! Deep nets end to end (docs/physics.md §8): sample -> moments -> fit -> rg on
//! a pipeline mixing deep archs with a single-hidden-layer one. The Monte
//! Carlo kurtosis of relu at criticality, n = 32, is within 3 standard
//! errors of 3 [(1 + 5/n)^(l-1) - 1] at l = 2 and 4; K^(l) = K^(1) at every
//! layer; the report has its layer section and plots; pyarrow/polars
//! reproduce the tables from the raw per-layer sample columns.

use arrow::array::{Float64Array, StringArray, UInt32Array};
use nnqft_core::deep::relu_exact_kurtosis;
use nnqft_store::tables::{column, read_table};
use std::path::Path;
use nnqft_testkit::{ok, repo, run, Pipe};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_nnqft-rg");

fn pipeline() -> String {
    Pipe::new("deep-ci", 32, 20, 25_000, &[32], &[2, 4])
        .nets_per_part(12_500)
        .arch_with("relu-crit", "relu", 1.4142135623730951, 0.0, &[&[1.0], &[0.5]], "hidden_layers = 4")
        .arch_with("tanh-crit", "tanh", 1.0, 0.0, &[&[1.0]], "hidden_layers = 3")
        .arch("erf-single", "erf", 1.0, 1.0, &[&[-1.0], &[1.0]])
        .text()
        .to_string()
}

#[test]
fn relu_critical_kurtosis_and_layer_report() {
    let tmp = tempfile::tempdir().unwrap();
    let pipe = tmp.path().join("deep-ci.toml");
    std::fs::write(&pipe, pipeline()).unwrap();
    // the README's layers example reads data/deep-criticality (relu-crit, width 32, layer 4)
    let data = tmp.path().join("data/deep-criticality");
    let args = ["--pipeline", pipe.to_str().unwrap(), "--data", data.to_str().unwrap()];
    for stage in ["nnqft-sample", "nnqft-moments", "nnqft-fit"] {
        ok(&Path::new(BIN).with_file_name(stage), &args);
    }
    let out = ok(Path::new(BIN), &args);
    assert!(out.contains("relu-crit") && out.contains("kurtosis"), "{out}");

    // layers.parquet: per layer and point
    let path = data.join("layers.parquet");
    let mut checked = 0;
    for b in read_table(&path).unwrap() {
        let arch = column::<StringArray>(&path, &b, "arch").unwrap();
        let layer = column::<UInt32Array>(&path, &b, "layer").unwrap();
        let point = column::<UInt32Array>(&path, &b, "point").unwrap();
        let f = |n: &str| column::<Float64Array>(&path, &b, n).unwrap().clone();
        let (k, kse, kurt, kurt_se, exact) = (f("K"), f("K_stderr"), f("kurtosis"), f("kurtosis_stderr"), f("kurtosis_exact"));
        for i in 0..b.num_rows() {
            if arch.value(i) != "relu-crit" {
                continue;
            }
            let (l, x) = (layer.value(i) as usize, [1.0, 0.5][point.value(i) as usize]);
            // relu at criticality conserves K = C_W x^2 exactly, at any width
            assert!((k.value(i) - 2.0 * x * x).abs() < 3.0 * kse.value(i), "K at l = {l}: {} +- {}", k.value(i), kse.value(i));
            assert!((exact.value(i) - relu_exact_kurtosis(32, l)).abs() < 1e-10, "chain {} vs closed form", exact.value(i));
            if l == 2 || l == 4 {
                let z = (kurt.value(i) - exact.value(i)) / kurt_se.value(i);
                eprintln!("relu-crit n = 32 l = {l} point {}: kurtosis {} +- {} exact {} (z = {z:.2})", point.value(i), kurt.value(i), kurt_se.value(i), exact.value(i));
                assert!(z.abs() < 3.0, "l = {l}: {} +- {} vs {}", kurt.value(i), kurt_se.value(i), exact.value(i));
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 4);
    assert_eq!(relu_exact_kurtosis(32, 2), 0.46875);

    // the single-hidden-layer arch still gets its moments; deep ones do not appear there
    let m = data.join("moments.parquet");
    let archs: Vec<String> = read_table(&m).unwrap().iter().flat_map(|b| {
        let a = column::<StringArray>(&m, b, "arch").unwrap();
        (0..b.num_rows()).map(|i| a.value(i).to_string()).collect::<Vec<_>>()
    }).collect();
    assert!(!archs.is_empty() && archs.iter().all(|a| a == "erf-single"), "{archs:?}");

    let report = std::fs::read_to_string(data.join("report.md")).unwrap();
    assert!(report.contains("## Layer flow"), "{report}");
    assert!(report.contains("| relu-crit | 2.0000 | 0 | 32 | 2 |"), "{report}");
    assert!(report.contains("plots/rg_layers.png"));
    for f in ["plots/rg_layers.png", "plots/rg_layers.svg", "plots/layers.png", "plots/layers.svg"] {
        assert!(std::fs::metadata(data.join(f)).unwrap().len() > 1000, "{f}");
    }
    // the relu critical kernel neither grows nor decays
    let s = data.join("slopes.parquet");
    for b in read_table(&s).unwrap() {
        let (arch, coupling, quantity) = (
            column::<StringArray>(&s, &b, "arch").unwrap(),
            column::<StringArray>(&s, &b, "coupling").unwrap(),
            column::<StringArray>(&s, &b, "quantity").unwrap(),
        );
        let (slope, se) = (column::<Float64Array>(&s, &b, "slope").unwrap(), column::<Float64Array>(&s, &b, "stderr").unwrap());
        for i in 0..b.num_rows() {
            if arch.value(i) == "relu-crit" && coupling.value(i) == "K" && quantity.value(i) == "rate" {
                assert!(slope.value(i).abs() < 3.0 * se.value(i), "K rate {} +- {}", slope.value(i), se.value(i));
            }
        }
    }
    // rerun: up to date
    assert!(ok(Path::new(BIN), &args).contains("up to date"));

    let py = Command::new("python3")
        .arg(repo().join("tests/python/check_layers.py"))
        .arg(&data)
        .output()
        .unwrap();
    assert!(py.status.success(), "check_layers.py (pyarrow/polars are installed by `just test`):\n{}\n{}", String::from_utf8_lossy(&py.stdout), String::from_utf8_lossy(&py.stderr));
    let py = Command::new("python3").arg(repo().join("tests/python/check_docs.py")).arg(&data).output().unwrap();
    assert!(py.status.success(), "check_docs.py: {}{}", String::from_utf8_lossy(&py.stdout), String::from_utf8_lossy(&py.stderr));

    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let body = &readme[readme.find("<!-- readme-example:layers -->").expect("layers example marker")..];
    let body = &body[body.find("```python\n").unwrap() + 10..];
    std::fs::write(tmp.path().join("example.py"), &body[..body.find("\n```").unwrap()]).unwrap();
    let py = Command::new("python3").arg("example.py").current_dir(tmp.path()).output().unwrap();
    assert!(py.status.success(), "README layers example:\n{}", String::from_utf8_lossy(&py.stderr));
}

/// Bad deep configs fail with one line naming the field.
#[test]
fn bad_deep_configs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for (from, to, field) in [
        ("activation = \"tanh\"", "activation = \"gauss\"", "sample.arch[1].activation"),
        ("hidden_layers = 3", "hidden_layers = 0", "sample.arch[1].hidden_layers"),
        ("hidden_layers = 3", "hidden_layers = 1000", "sample.arch[1].hidden_layers"),
        ("hidden_layers = 3", "hidden_layers = 3\nlayer_width_ratios = [1.0, 2.0]", "sample.arch[1].layer_width_ratios"),
        ("hidden_layers = 3", "hidden_layers = 3\nlayer_width_ratios = [1.0, 0.0, 1.0]", "sample.arch[1].layer_width_ratios"),
    ] {
        let pipe = tmp.path().join("bad.toml");
        std::fs::write(&pipe, pipeline().replace(from, to)).unwrap();
        let out = run(&Path::new(BIN).with_file_name("nnqft-sample"), &["--pipeline", pipe.to_str().unwrap(), "--data", tmp.path().join("d").to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(field), "{err}");
    }
    // a fit on a deep arch is refused
    let pipe = tmp.path().join("bad.toml");
    std::fs::write(&pipe, format!("{}[[fit.run]]\narch = \"relu-crit\"\ncutoff = 10.0\ninterior = [0.0, 0.7]\n", pipeline())).unwrap();
    let out = run(&Path::new(BIN).with_file_name("nnqft-fit"), &["--pipeline", pipe.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("fit.run[0].arch") && err.contains("hidden layers"), "{err}");
}
