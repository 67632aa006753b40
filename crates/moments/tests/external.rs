//! The moments tables read by pyarrow and polars (every number of
//! moments.parquet and summary.parquet reproduced from moments_bags.parquet),
//! and the README's moments example run as written.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_nnqft-moments");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn ok(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed (pyarrow/polars are installed by `just test`):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tables_are_read_by_pyarrow_and_polars_and_readme_example_runs() {
    let tmp = tempfile::tempdir().unwrap();
    // The README example reads data/quick: a smaller run of quick's families stands in.
    let quick = std::fs::read_to_string(repo().join("pipelines/quick.toml")).unwrap();
    let small = quick.replace("nets_per_bag = 50_000", "nets_per_bag = 4_000").replace("bags = 10", "bags = 4");
    let pipe = tmp.path().join("quick.toml");
    std::fs::write(&pipe, small).unwrap();
    let data = tmp.path().join("data/quick");
    let args = ["--pipeline", pipe.to_str().unwrap(), "--data", data.to_str().unwrap()];
    ok(Command::new(Path::new(BIN).with_file_name("nnqft-sample")).args(args));
    ok(Command::new(BIN).args(args));
    ok(Command::new("python3").arg(repo().join("tests/python/check_moments.py")).arg(&data).arg(&pipe));

    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme.find("<!-- readme-example:moments -->").expect("moments example marker");
    let body = &readme[start..];
    let body = &body[body.find("```python\n").unwrap() + 10..];
    let code = &body[..body.find("\n```").unwrap()];
    std::fs::write(tmp.path().join("example.py"), code).unwrap();
    ok(Command::new("python3").arg("example.py").current_dir(tmp.path()));
}
