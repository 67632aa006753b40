//! Bad input: one clear error line, non-zero exit, and good data untouched.

mod common;
use common::*;

const GOOD: &str = r#"
name = "bad"
seed = 5
[sample]
bags = 2
nets_per_bag = 500
widths = [3]
[[sample.arch]]
name = "erf"
activation = "erf"
d_in = 1
sigma_w = 1.0
sigma_b = 1.0
inputs = [[0.5], [1.0]]
"#;

#[test]
fn config_errors_name_file_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cases: &[(&str, &str, &[&str])] = &[
        ("activation = \"erf\"", "activation = \"sigmoid\"", &["line 10, column 14", "unknown variant `sigmoid`"]),
        ("d_in = 1", "d_in = 3", &["sample.arch[0].inputs[0]", "d_in = 3"]),
        ("widths = [3]", "widths = [0]", &["sample.widths[0]", "width must be >= 1"]),
        ("nets_per_bag = 500", "nets_per_bag = 0", &["sample.nets_per_bag", ">= 1"]),
        ("sigma_b = 1.0", "sigma_b = -0.5", &["sample.arch[0].sigma_b", "finite and >= 0"]),
        ("sigma_w = 1.0", "sigma_w = inf", &["sample.arch[0].sigma_w", "finite and >= 0"]),
        ("seed = 5", "seed = 5\nsede = 6", &["line 4, column 1", "unknown field `sede`"]),
        ("[sample]", "[sample", &["line 4, column 8"]),
        ("d_in = 1", "d_in = 1\nd_out = 0", &["sample.arch[0].d_out", "must be 1..64 (got 0)"]),
        ("d_in = 1", "d_in = 1\nmu_w = nan", &["sample.arch[0].mu_w", "must be finite"]),
        ("d_in = 1", "d_in = 1\nmu_b_out = -inf", &["sample.arch[0].mu_b_out", "must be finite"]),
    ];
    for (from, to, needles) in cases {
        let pipe = write_pipeline(tmp.path(), "bad", &GOOD.replacen(from, to, 1));
        let mut all = vec![pipe.as_str()];
        all.extend_from_slice(needles);
        run_err(&["--pipeline", &pipe, "--data", data.to_str().unwrap()], &all);
        assert!(!data.exists(), "nothing written for {to:?}");
    }
    let dup = format!("{GOOD}{}", &GOOD[GOOD.find("[[sample.arch]]").unwrap()..]);
    let pipe = write_pipeline(tmp.path(), "bad", &dup);
    run_err(&["--pipeline", &pipe], &["sample.arch[1].name", "duplicate arch name"]);
    run_err(&["--pipeline", "no-such-pipeline"], &["no-such-pipeline", "pipelines/no-such-pipeline.toml"]);
    run_err(&["--pipeline", "/nonexistent/x.toml"], &["/nonexistent/x.toml", "cannot read"]);
    run_err(&["--shard", "4/3"], &["--shard", "1 <= I <= N"]);
}

#[test]
fn another_config_never_overwrites_good_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    run_ok(&["--pipeline", &write_pipeline(tmp.path(), "bad", GOOD), "--data", d]);
    let before = snapshot(&data);
    // Same arch name and widths, different sigma: every part is foreign.
    let other = write_pipeline(tmp.path(), "bad", &GOOD.replace("sigma_w = 1.0", "sigma_w = 2.0"));
    run_err(&["--pipeline", &other, "--data", d], &["part-00000.parquet", "written by a different config: sample.arch[erf].sigma_w: 1.0 -> 2.0", "--force"]);
    assert_eq!(before, snapshot(&data), "untouched");
    // A removed width leaves stale data: refused, not silently kept beside new data.
    let fewer = write_pipeline(tmp.path(), "bad", &GOOD.replace("widths = [3]", "widths = [4]"));
    run_err(&["--pipeline", &fewer, "--data", d], &["width=3", "stale", "--force"]);
    assert_eq!(before, snapshot(&data), "untouched");
    // --force redoes the foreign parts.
    run_ok(&["--pipeline", &other, "--data", d, "--force"]);
    assert_ne!(before, snapshot(&data));
}

#[test]
fn corrupt_parts_are_detected_and_redone() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    let pipe = write_pipeline(tmp.path(), "bad", GOOD);
    run_ok(&["--pipeline", &pipe, "--data", d]);
    let before = snapshot(&data);
    let part = nnqft_store::samples::part_path(&data, "erf", 3, 1, 0);
    let bytes = std::fs::read(&part).unwrap();
    for (what, content) in [("truncated", bytes[..bytes.len() / 2].to_vec()), ("zero-byte", Vec::new())] {
        std::fs::write(&part, content).unwrap();
        let err = nnqft_store::samples::read_part(&part).unwrap_err();
        assert!(format!("{err:#}").contains("not a readable Parquet file"), "{what}: {err:#}");
        let out = run_ok(&["--pipeline", &pipe, "--data", d]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("part-00000.parquet") && stderr.contains("redoing it"), "{what}: {stderr}");
        assert_eq!(before, snapshot(&data), "{what} part redone bit-identically");
    }
    // A readable part whose footer is right but whose schema is not (1 column for 2 inputs).
    let (meta, cols) = nnqft_store::samples::read_part(&nnqft_store::samples::part_path(&data, "erf", 3, 0, 0)).unwrap();
    nnqft_store::samples::write_columns(&part, vec!["f0".into()], vec![cols[0].clone()], &meta).unwrap();
    let out = run_ok(&["--pipeline", &pipe, "--data", d]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("schema is not f0..f1 Float32") && stderr.contains("redoing it"), "{stderr}");
    assert_eq!(before, snapshot(&data), "wrong-schema part redone bit-identically");
}

#[test]
fn absurd_sizes_are_refused_up_front_with_the_estimate() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    // Memory: d_in = 20000 at width 2^24 needs (d + 2) N doubles per net, ~2.7 TB.
    let point = format!("[{}]", vec!["0.001"; 20_000].join(", "));
    let wide = GOOD
        .replace("widths = [3]", "widths = [16777216]")
        .replace("d_in = 1", "d_in = 20000")
        .replace("inputs = [[0.5], [1.0]]", &format!("inputs = [{point}]"));
    let pipe = write_pipeline(tmp.path(), "bad", &wide);
    run_err(&["--pipeline", &pipe, "--data", d, "--threads", "1"], &["needs about", "of memory", "per thread", "is available"]);
    // Disk: 10^11 nets per bag.
    let big = GOOD.replace("nets_per_bag = 500", "nets_per_bag = 100_000_000_000\nnets_per_part = 10_000_000");
    let pipe = write_pipeline(tmp.path(), "bad", &big);
    run_err(&["--pipeline", &pipe, "--data", d], &["needs about", "of disk", "free; nothing was written"]);
    // Part count: a tiny nets_per_part would mean 10^9 files.
    let many = GOOD.replace("nets_per_bag = 500", "nets_per_bag = 1_000_000_000\nnets_per_part = 1");
    let pipe = write_pipeline(tmp.path(), "bad", &many);
    run_err(&["--pipeline", &pipe, "--data", d], &["sample.nets_per_bag", "part files"]);
    let written: Vec<_> = std::fs::read_dir(&data).map(|r| r.map(|e| e.unwrap().file_name()).collect()).unwrap_or_default();
    assert!(written.iter().all(|f| f == ".nnqft.lock"), "nothing but the lock file: {written:?}");
}

/// An unknown pipeline name lists the ones there are; `quick` works outside
/// the repository (it is embedded in the binaries).
#[test]
fn pipeline_names_list_the_choices_and_quick_is_embedded() {
    let line = run_err(&["--pipeline", "nope", "--data", "/nonexistent/x"], &["pipeline \"nope\"", "available:", "quick", "smoke", "hms2020"]);
    assert!(!line.contains(".toml,"), "names, not files: {line}");
    // Outside the repository: quick loads from the binary, so the failure is about the data, not the pipeline.
    let tmp = tempfile::tempdir().unwrap();
    let fit = std::path::Path::new(BIN).with_file_name("nnqft-fit");
    let out = std::process::Command::new(fit).args(["--pipeline", "quick", "--data", "d"]).current_dir(tmp.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("moments.parquet is missing") && !err.contains("no file"), "{err}");
}
