//! Corrupt data never reach a table: a part whose data pages were
//! overwritten is refused by moments (one line naming it, nothing
//! overwritten), listed and redone by `nnqft-sample --verify`, after which
//! the tables equal an uninterrupted run's. Inputs that overflow and a
//! single bag are refused up front.

use nnqft_testkit::{ok, run, Pipe};
use std::path::{Path, PathBuf};

const MOMENTS: &str = env!("CARGO_BIN_EXE_nnqft-moments");

fn sample_bin() -> PathBuf {
    Path::new(MOMENTS).with_file_name("nnqft-sample")
}

/// The pipeline of these tests (orders: the default 2, 4, 6).
fn pipeline() -> String {
    Pipe::new("corrupt", 7, 3, 4_000, &[5], &[2, 4, 6]).arch("erf", "erf", 1.0, 1.0, &[&[-1.0], &[-0.2], &[0.6], &[1.0]]).text().to_string()
}

fn digest(path: &Path) -> String {
    nnqft_core::rng::sha256_hex(&std::fs::read(path).unwrap())
}

fn one_error_line(out: &std::process::Output, program: &str, needles: &[&str]) -> String {
    assert!(!out.status.success(), "should fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(lines.len(), 1, "one error line: {stderr}");
    assert!(lines[0].starts_with(&format!("{program}: error: ")), "{}", lines[0]);
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} not in {}", lines[0]);
    }
    lines[0].to_string()
}

#[test]
fn flipped_bytes_are_caught_listed_and_redone() {
    let tmp = tempfile::tempdir().unwrap();
    let pipe = tmp.path().join("p.toml");
    std::fs::write(&pipe, pipeline()).unwrap();
    let (p, clean, dirty) = (pipe.to_str().unwrap(), tmp.path().join("clean"), tmp.path().join("dirty"));
    for d in [&clean, &dirty] {
        ok(&sample_bin(), &["--pipeline", p, "--data", d.to_str().unwrap()]);
    }
    ok(Path::new(MOMENTS), &["--pipeline", p, "--data", clean.to_str().unwrap()]);
    let d = dirty.to_str().unwrap();
    // A first moments run, then bytes overwritten in the middle of one part's data.
    ok(Path::new(MOMENTS), &["--pipeline", p, "--data", d]);
    let tables = ["moments.parquet", "moments_bags.parquet", "summary.parquet"];
    let before: Vec<String> = tables.iter().map(|t| digest(&dirty.join(t))).collect();
    let part = nnqft_store::samples::part_path(&dirty, "erf", 5, 1, 0);
    let mut bytes = std::fs::read(&part).unwrap();
    let mid = bytes.len() / 3;
    for b in &mut bytes[mid..mid + 100] {
        *b ^= 0x5a;
    }
    std::fs::write(&part, &bytes).unwrap();
    // moments must reread the part (--force skips its cache) and refuse it.
    let out = run(Path::new(MOMENTS), &["--pipeline", p, "--data", d, "--force"]);
    let line = one_error_line(&out, "nnqft-moments", &["bag=1", "part-00000.parquet"]);
    eprintln!("{line}");
    let after: Vec<String> = tables.iter().map(|t| digest(&dirty.join(t))).collect();
    assert_eq!(before, after, "a refused run must not touch the tables");
    // A plain sample rerun trusts footers; --verify reads the data, lists the part and redoes it.
    let out = run(&sample_bin(), &["--pipeline", p, "--data", d, "--verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("part-00000.parquet") && stderr.contains("redoing it"), "{stderr}");
    ok(Path::new(MOMENTS), &["--pipeline", p, "--data", d, "--force"]);
    for t in tables {
        assert_eq!(digest(&clean.join(t)), digest(&dirty.join(t)), "{t} differs from an uninterrupted run's");
    }
    // Power of the check: the untouched part passes, so --verify redoes nothing now.
    let out = run(&sample_bin(), &["--pipeline", p, "--data", d, "--verify"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("redoing"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn overflowing_inputs_and_one_bag_are_refused_up_front() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            "d_in = 1\nsigma_w = 1.0\nsigma_b = 1.0\ninputs = [[-1.0], [-0.2], [0.6], [1.0]]",
            "d_in = 2\nsigma_w = 1.0\nsigma_b = 1.0\ninputs = [[0.0, 0.0], [1e300, 1.0]]",
            &["sample.arch[0].inputs[1]", "not be finite"],
        ),
        ("bags = 3", "bags = 1", &["sample.bags", ">= 2"]),
        ("activation = \"erf\"", "activation = \"gauss\"\n# big", &["sample.arch[0].inputs", "gauss"]),
        ("activation = \"erf\"", "activation = \"relu\"\nhidden_layers = 64", &["sample.arch[0].inputs", "last hidden layer"]),
    ];
    for (from, to, needles) in cases {
        assert!(pipeline().contains(from), "{from}");
        let mut text = pipeline().replacen(from, to, 1);
        if to.contains("# big") {
            text = text.replace("sigma_w = 1.0", "sigma_w = 30.0");
        }
        if to.contains("hidden_layers") {
            text = text.replace("sigma_w = 1.0", "sigma_w = 10.0").replace("sigma_b = 1.0", "sigma_b = 0.0");
        }
        let p = tmp.path().join("bad.toml");
        std::fs::write(&p, &text).unwrap();
        let out = run(&sample_bin(), &["--pipeline", p.to_str().unwrap(), "--data", data.to_str().unwrap()]);
        eprintln!("{}", one_error_line(&out, "nnqft-sample", needles));
        assert!(!data.join("samples").exists(), "nothing written for {to}");
    }
}
