//! Against a real single-node Slurm (installed from Debian packages by
//! scripts/slurm-local.sh, started without systemd, stopped by pid): the smoke
//! pipeline submitted as a 3-shard array plus a dependent moments job gives
//! exactly the bytes of a local run, and a resubmission after a lost part
//! submits only the shard that owns it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nnqft-slurm");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").unwrap().lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

/// The cluster's daemons, stopped (by the pids the script recorded) on drop.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let script = repo().join("scripts/slurm-local.sh");
        let st = Command::new("bash").arg(&script).arg("install").status().unwrap();
        assert!(st.success(), "installing slurm and munge failed");
        let cluster = Cluster { dir: dir.to_path_buf(), conf: dir.join("slurm.conf") };
        let out = Command::new("bash").arg(&script).arg("start").arg(dir).output().unwrap();
        assert!(out.status.success(), "cluster did not start: {}", String::from_utf8_lossy(&out.stderr));
        cluster
    }

    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf).current_dir(repo());
        c
    }

    /// Waits until the queue is empty.
    fn wait_idle(&self, timeout: Duration) {
        let t0 = Instant::now();
        loop {
            let out = self.cmd("squeue").args(["-h", "-o", "%i %T"]).output().unwrap();
            let q = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && q.is_empty() {
                return;
            }
            assert!(t0.elapsed() < timeout, "jobs still queued after {timeout:?}: {q}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(repo().join("scripts/slurm-local.sh")).arg("stop").arg(&self.dir).status();
    }
}

/// samples/ and the moments tables: path -> (size, sha256).
fn results(data: &Path) -> BTreeMap<String, (usize, String)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![data.join("samples")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let b = std::fs::read(&p).unwrap();
                out.insert(p.strip_prefix(data).unwrap().display().to_string(), (b.len(), nnqft_core::rng::sha256_hex(&b)));
            }
        }
    }
    for f in ["moments.parquet", "moments_bags.parquet", "summary.parquet", "inputs.parquet"] {
        let b = std::fs::read(data.join(f)).unwrap_or_default();
        out.insert(f.to_string(), (b.len(), nnqft_core::rng::sha256_hex(&b)));
    }
    out
}

fn ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{c:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn job_array_on_real_slurm_equals_local_run() {
    if !is_root() {
        eprintln!("SKIPPED: installing and running Slurm needs root");
        return;
    }
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(&tmp.path().join("cluster"));
    let started = t0.elapsed();

    let bins = Path::new(BIN).parent().unwrap();
    let local = tmp.path().join("local");
    for stage in ["nnqft-sample", "nnqft-moments"] {
        ok(Command::new(bins.join(stage)).args(["--pipeline", "smoke", "--data", local.to_str().unwrap()]).current_dir(repo()));
    }

    let data = tmp.path().join("on-slurm");
    let d = data.to_str().unwrap();
    let out = ok(cluster.cmd(BIN).args(["--pipeline", "smoke", "--data", d, "--submit"]));
    assert!(out.contains("3 of 3 shards have work left (1-3)"), "{out}");
    assert!(out.contains("submitted sample array job") && out.contains("submitted moments job"), "{out}");
    cluster.wait_idle(Duration::from_secs(240));
    let logs: Vec<String> = std::fs::read_dir(data.join("slurm/logs")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(logs.iter().filter(|l| l.starts_with("sample-")).count(), 3, "{logs:?}");
    assert_eq!(logs.iter().filter(|l| l.starts_with("moments-")).count(), 1, "{logs:?}");
    assert_eq!(results(&local), results(&data), "Slurm run equals local run");

    // A lost part: only its shard is resubmitted, and the results are whole again.
    std::fs::remove_file(data.join("samples/arch=relu-d1/width=10/bag=2/part-00001.parquet")).unwrap();
    let out = ok(cluster.cmd(BIN).args(["--pipeline", "smoke", "--data", d, "--submit"]));
    assert!(out.contains("1 of 3 shards have work left"), "{out}");
    cluster.wait_idle(Duration::from_secs(240));
    assert_eq!(results(&local), results(&data), "after resubmission");
    // Nothing left: no array is submitted.
    let out = ok(cluster.cmd(BIN).args(["--pipeline", "smoke", "--data", d, "--submit"]));
    assert!(out.contains("0 of 3 shards have work left") && out.contains("no sample shard to submit"), "{out}");
    cluster.wait_idle(Duration::from_secs(120));
    eprintln!("slurm test: cluster up in {:.1}s, whole test {:.1}s", started.as_secs_f64(), t0.elapsed().as_secs_f64());
    drop(cluster);
}
