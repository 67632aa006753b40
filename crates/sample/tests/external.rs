//! Our Parquet files read by external tools (pyarrow, polars), and the
//! README's example run as written.

mod common;
use common::*;
use std::process::Command;

fn python(args: &[&str], cwd: &std::path::Path) {
    let out = Command::new("python3").args(args).current_dir(cwd).output().expect("python3 on PATH");
    assert!(
        out.status.success(),
        "python3 {args:?} failed (is pyarrow/polars installed? `just test` installs them):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pyarrow_and_polars_read_the_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("smoke");
    run_ok(&["--pipeline", "smoke", "--data", data.to_str().unwrap()]);
    let script = repo().join("tests/python/check_samples.py");
    let pipe = repo().join("pipelines/smoke.toml");
    python(&[script.to_str().unwrap(), data.to_str().unwrap(), pipe.to_str().unwrap()], tmp.path());
}

#[test]
fn readme_example_runs() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme.find("<!-- readme-example:samples -->").expect("example marker");
    let block = &readme[start..];
    let body = &block[block.find("```python\n").unwrap() + 10..];
    let code = &body[..body.find("\n```").unwrap()];
    assert!(code.contains("data = \"data/quick\""));
    // The example reads the quick pipeline's layout; a small run of the same
    // families (quick's arches, fewer nets) stands in for it.
    let tmp = tempfile::tempdir().unwrap();
    let quick = std::fs::read_to_string(repo().join("pipelines/quick.toml")).unwrap();
    let small = quick.replace("nets_per_bag = 50_000", "nets_per_bag = 2_000").replace("bags = 10", "bags = 3");
    let pipe = write_pipeline(tmp.path(), "quick", &small);
    let data = tmp.path().join("data/quick");
    run_ok(&["--pipeline", &pipe, "--data", data.to_str().unwrap()]);
    std::fs::write(tmp.path().join("example.py"), code).unwrap();
    python(&["example.py"], tmp.path());
    // and the external check on quick's layout (per-arch widths, a deep arch's per-layer columns)
    let script = repo().join("tests/python/check_samples.py");
    python(&[script.to_str().unwrap(), data.to_str().unwrap(), &pipe], tmp.path());
}
