//! nnqft-moments as a command: determinism, resume, and refusal of missing,
//! corrupt or foreign samples (one error line, outputs untouched).

use std::collections::BTreeMap;
use std::path::Path;
use nnqft_testkit::{ok, repo, run};

const BIN: &str = env!("CARGO_BIN_EXE_nnqft-moments");

fn err_line(args: &[&str], needles: &[&str]) {
    let out = run(Path::new(BIN), args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "should fail: {args:?}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one error line: {stderr}");
    assert!(lines[0].starts_with("nnqft-moments: error: "), "{}", lines[0]);
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} not in {}", lines[0]);
    }
}

/// Output file -> (size, SHA-256): compared, not printed, when they differ.
fn tables(data: &Path) -> BTreeMap<String, (usize, String)> {
    ["moments.parquet", "moments_bags.parquet", "summary.parquet", "plots/moments_vs_width.svg", "plots/moments_vs_width.png"]
        .iter()
        .map(|f| {
            let b = std::fs::read(data.join(f)).unwrap_or_default();
            (f.to_string(), (b.len(), nnqft_core::rng::sha256_hex(&b)))
        })
        .collect()
}

fn sample(data: &Path) {
    ok(&Path::new(BIN).with_file_name("nnqft-sample"), &["--pipeline", "smoke", "--data", data.to_str().unwrap()]);
}

#[test]
fn threads_and_resume_give_identical_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("smoke");
    let d = data.to_str().unwrap();
    sample(&data);
    let first = ok(Path::new(BIN), &["--pipeline", "smoke", "--data", d, "--threads", "1"]);
    assert!(first.contains("0 of 8 (arch, width) reductions cached"), "{first}");
    let one = tables(&data);
    assert!(one.values().all(|b| b.0 > 100), "all outputs written");
    let svg = std::fs::read_to_string(data.join("plots/moments_vs_width.svg")).unwrap();
    assert!(!svg.contains("@font-face"), "no font inside the SVG");
    assert!(svg.len() < 200_000, "SVG of {} bytes", svg.len());
    assert!(!svg.contains("font-family=\"sans-serif\""), "every text names DejaVu Sans first");
    ok(Path::new(BIN), &["--pipeline", "smoke", "--data", d, "--threads", "2", "--force"]);
    assert_eq!(one, tables(&data), "1 vs 2 threads");
    // Everything current: "up to date" at once, nothing rewritten.
    let t0 = std::time::Instant::now();
    let same = ok(Path::new(BIN), &["--pipeline", "smoke", "--data", d]);
    assert!(same.contains("up to date"), "{same}");
    eprintln!("up to date in {:.3} s", t0.elapsed().as_secs_f64());
    assert_eq!(one, tables(&data), "up to date: untouched");
    // Resume: with a table gone, a lost cache entry is recomputed, the rest reused, same bytes.
    std::fs::remove_file(data.join("cache/moments/arch=relu-d1/width=10.json")).unwrap();
    std::fs::remove_file(data.join("summary.parquet")).unwrap();
    let again = ok(Path::new(BIN), &["--pipeline", "smoke", "--data", d]);
    assert!(again.contains("7 of 8 (arch, width) reductions cached"), "{again}");
    assert_eq!(one, tables(&data), "resumed");
}

#[test]
fn bad_samples_are_refused_and_outputs_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("smoke");
    let d = data.to_str().unwrap();
    sample(&data);
    ok(Path::new(BIN), &["--pipeline", "smoke", "--data", d]);
    let before = tables(&data);
    std::fs::remove_dir_all(data.join("cache")).unwrap();
    let part = data.join("samples/arch=erf-d1/width=3/bag=2/part-00001.parquet");
    let good = std::fs::read(&part).unwrap();

    // A missing bag.
    let bag = data.join("samples/arch=erf-d1/width=3/bag=2");
    let moved = tmp.path().join("bag2");
    std::fs::rename(&bag, &moved).unwrap();
    err_line(&["--pipeline", "smoke", "--data", d], &["bag=2/part-00000.parquet", "missing sample part", "nnqft-sample"]);
    std::fs::rename(&moved, &bag).unwrap();
    // Truncated and zero-byte parts.
    for bytes in [good[..good.len() / 3].to_vec(), Vec::new()] {
        std::fs::write(&part, bytes).unwrap();
        err_line(&["--pipeline", "smoke", "--data", d], &["part-00001.parquet", "not a readable Parquet file"]);
    }
    // A part with the wrong schema: a valid part of another arch with 4 inputs instead of 6.
    std::fs::copy(data.join("samples/arch=tanh-d1/width=3/bag=2/part-00001.parquet"), &part).unwrap();
    err_line(&["--pipeline", "smoke", "--data", d], &["part-00001.parquet", "written by a different config"]);
    // A part from another config (same layout, other seed).
    let other = tmp.path().join("other.toml");
    std::fs::write(&other, std::fs::read_to_string(repo().join("pipelines/smoke.toml")).unwrap().replace("seed = 7", "seed = 8")).unwrap();
    let od = tmp.path().join("other");
    ok(&Path::new(BIN).with_file_name("nnqft-sample"), &["--pipeline", other.to_str().unwrap(), "--data", od.to_str().unwrap()]);
    std::fs::copy(od.join("samples/arch=erf-d1/width=3/bag=2/part-00001.parquet"), &part).unwrap();
    err_line(&["--pipeline", "smoke", "--data", d], &["part-00001.parquet", "written by a different config: seed: 8 -> 7"]);
    assert_eq!(before, tables(&data), "outputs untouched by failed runs");
    // Restored, it runs again and reproduces the same tables.
    std::fs::write(&part, &good).unwrap();
    ok(Path::new(BIN), &["--pipeline", "smoke", "--data", d]);
    assert_eq!(before, tables(&data));
}
