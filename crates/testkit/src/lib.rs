//! Helpers shared by the end-to-end tests of the stage binaries: the
//! repository root, running a stage, test pipelines built from their tables
//! ([`Pipe`]) and running every stage on one ([`run_stages`]).

mod pipe;

pub use pipe::{run_stages, Pipe};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (pipelines are resolved from there).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// Runs `bin args` in the repository root.
pub fn run(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin).args(args).current_dir(repo()).output().unwrap_or_else(|e| panic!("{}: {e}", bin.display()))
}

/// Runs `bin args`, asserts success and returns stdout.
pub fn ok(bin: &Path, args: &[&str]) -> String {
    let out = run(bin, args);
    assert!(out.status.success(), "{} {args:?}: {}", bin.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
