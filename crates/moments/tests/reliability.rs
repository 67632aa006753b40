//! Reliability of both stages (issue 8): killed at random moments and
//! resumed, locked against a second writer, and out of disk space. Fixed
//! seeds; sizes small enough for CI.

use nnqft_testkit::Pipe;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const MOMENTS: &str = env!("CARGO_BIN_EXE_nnqft-moments");

fn sample_bin() -> PathBuf {
    Path::new(MOMENTS).with_file_name("nnqft-sample")
}

/// Long enough (about a second) that kills land mid-run.
/// Long enough (about a second) that kills land mid-run (orders: the default 2, 4, 6).
fn pipeline() -> String {
    Pipe::new("kill", 99, 4, 20_000, &[3, 50], &[2, 4, 6])
        .nets_per_part(2_000)
        .arch("erf", "erf", 1.0, 1.0, &[&[-1.0], &[-0.2], &[0.6], &[1.0]])
        .arch("relu", "relu", 1.0, 0.3, &[&[0.5, 0.5], &[1.0, -0.5], &[-1.0, 0.2]])
        .text()
        .to_string()
}

/// Every file under `dir` but the lock: path -> (size, sha256).
fn snapshot(dir: &Path) -> BTreeMap<String, (usize, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (usize, String)>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if p.file_name().unwrap() != ".nnqft.lock" {
                let b = std::fs::read(&p).unwrap();
                out.insert(p.strip_prefix(root).unwrap().display().to_string(), (b.len(), nnqft_core::rng::sha256_hex(&b)));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn run(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin).args(args).output().unwrap()
}

fn ok(bin: &Path, args: &[&str]) -> Output {
    let out = run(bin, args);
    assert!(out.status.success(), "{} {args:?}: {}", bin.display(), String::from_utf8_lossy(&out.stderr));
    out
}

/// A small deterministic generator (64-bit LCG) for the kill times.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Starts `bin args`, SIGKILLs it after `delay`; true if it was still running.
fn kill_after(bin: &Path, args: &[&str], delay: Duration) -> bool {
    let mut child = Command::new(bin).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    running
}

/// Every non-temporary Parquet file under `dir` opens and passes its footer checks.
fn all_parts_valid(dir: &Path) -> usize {
    let mut n = 0;
    for (path, _) in snapshot(dir) {
        let name = Path::new(&path).file_name().unwrap().to_string_lossy().into_owned();
        if path.starts_with("samples/") && !name.starts_with('.') {
            nnqft_store::samples::read_part_meta(&dir.join(&path)).unwrap_or_else(|e| panic!("{path} after a kill: {e:#}"));
            n += 1;
        }
    }
    n
}

#[test]
fn killed_twenty_times_then_resumed_equals_uninterrupted() {
    let tmp = tempfile::tempdir().unwrap();
    let pipe = tmp.path().join("kill.toml");
    std::fs::write(&pipe, pipeline()).unwrap();
    let (clean, killed) = (tmp.path().join("clean"), tmp.path().join("killed"));
    let args = |d: &Path| vec!["--pipeline".to_string(), pipe.display().to_string(), "--data".into(), d.display().to_string()];
    let a_clean = args(&clean);
    let a_clean: Vec<&str> = a_clean.iter().map(String::as_str).collect();
    let t0 = Instant::now();
    ok(&sample_bin(), &a_clean);
    let sample_secs = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    ok(Path::new(MOMENTS), &a_clean);
    let moments_secs = t0.elapsed().as_secs_f64();

    let a_killed = args(&killed);
    let a_killed: Vec<&str> = a_killed.iter().map(String::as_str).collect();
    let mut rng = Lcg(20261123);
    let mut interrupted = [0; 2];
    for (stage, (bin, secs)) in [(sample_bin(), sample_secs), (PathBuf::from(MOMENTS), moments_secs)].iter().enumerate() {
        for _ in 0..20 {
            // sample resumes where it stopped: short delays (<= 8% of a full run)
            // spread twenty kills over the work. moments redoes its tables every
            // run: anywhere in the first 90% of a run.
            let frac = if stage == 0 { 0.08 } else { 0.9 };
            let delay = Duration::from_secs_f64(rng.next() * secs * frac);
            if stage == 1 {
                // A run that finished leaves current tables, and the next would only say
                // "up to date": drop one so that every run rewrites them (from the cache).
                let _ = std::fs::remove_file(killed.join("summary.parquet"));
            }
            if kill_after(bin, &a_killed, delay) {
                interrupted[stage] += 1;
            }
            all_parts_valid(&killed);
        }
        if stage == 0 {
            ok(&sample_bin(), &a_killed);
        }
    }
    ok(Path::new(MOMENTS), &a_killed);
    eprintln!("kills that interrupted a running stage: sample {}/20, moments {}/20", interrupted[0], interrupted[1]);
    assert!(interrupted[0] >= 15 && interrupted[1] >= 10, "kills mostly landed after the run ended: {interrupted:?}");
    let (c, k) = (snapshot(&clean), snapshot(&killed));
    let temps: Vec<&String> = k.keys().filter(|p| Path::new(p).file_name().unwrap().to_string_lossy().contains(".tmp-")).collect();
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
    assert_eq!(c.keys().collect::<Vec<_>>(), k.keys().collect::<Vec<_>>(), "same files");
    assert_eq!(c, k, "same bytes after 40 kills");
}

#[test]
fn second_writer_is_refused_and_a_dead_holder_recovered() {
    let tmp = tempfile::tempdir().unwrap();
    let pipe = tmp.path().join("kill.toml");
    std::fs::write(&pipe, pipeline()).unwrap();
    let data = tmp.path().join("d");
    let (p, d) = (pipe.to_str().unwrap(), data.to_str().unwrap());
    let mut first = Command::new(sample_bin()).args(["--pipeline", p, "--data", d, "--threads", "1"]).stderr(Stdio::null()).spawn().unwrap();
    // Wait until it holds the lock.
    let lock = data.join(".nnqft.lock");
    let t0 = Instant::now();
    while !std::fs::read_to_string(&lock).unwrap_or_default().contains("pid=") {
        assert!(t0.elapsed() < Duration::from_secs(10), "first run never took the lock");
        std::thread::sleep(Duration::from_millis(5));
    }
    for bin in [sample_bin(), PathBuf::from(MOMENTS)] {
        let out = run(&bin, &["--pipeline", p, "--data", d]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "second writer must be refused");
        assert!(err.contains("in use by another nnqft run") && err.contains(&format!("pid={}", first.id())), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let out = ok(&sample_bin(), &["--pipeline", p, "--data", d]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("held by a run that is gone") && err.contains("recovered"), "{err}");
    ok(Path::new(MOMENTS), &["--pipeline", p, "--data", d]);
}

/// A tmpfs of `size` mounted for the test's lifetime (root only).
struct Tmpfs(PathBuf);
impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", dir.to_str().unwrap()]).status().ok()?;
        st.success().then(|| Tmpfs(dir.to_path_buf()))
    }
}
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn free_bytes(dir: &Path) -> u64 {
    let out = Command::new("df").args(["--output=avail", "-B1", dir.to_str().unwrap()]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
}

#[test]
fn disk_full_stops_cleanly_and_keeps_good_files() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&tmp.path().join("mnt"), "16m") else {
        let root = std::env::var("USER").map(|u| u == "root").unwrap_or(false)
            || std::fs::read_to_string("/proc/self/status").unwrap().lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
        assert!(!root, "running as root but could not mount a tmpfs");
        eprintln!("SKIPPED: not root, cannot mount a size-limited tmpfs for the disk-full test");
        return;
    };
    let data = fs.0.join("smoke");
    let d = data.to_str().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/smoke.toml");
    let p = repo.to_str().unwrap();
    ok(&sample_bin(), &["--pipeline", p, "--data", d]);
    ok(Path::new(MOMENTS), &["--pipeline", p, "--data", d]);
    let good = snapshot(&data);

    // Fill the disk, leaving 8 KiB.
    let filler = fs.0.join("filler");
    let fill = free_bytes(&fs.0).saturating_sub(8192);
    std::fs::write(&filler, vec![0u8; fill as usize]).unwrap();

    // moments: rewriting its tables fails mid-write; the previous tables survive.
    let out = run(Path::new(MOMENTS), &["--pipeline", p, "--data", d, "--force"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must fail on a full disk");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(good, snapshot(&data), "every good file intact, no temporary file left");

    // sample: a resume that needs more space than is free is refused up front.
    let part = data.join("samples/arch=erf-d1/width=10/bag=3");
    std::fs::remove_dir_all(&part).unwrap();
    let out = run(&sample_bin(), &["--pipeline", p, "--data", d]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("needs about") && err.contains("free; nothing was written"), "{err}");

    // Space back: both stages complete and reproduce the same bytes.
    std::fs::remove_file(&filler).unwrap();
    ok(&sample_bin(), &["--pipeline", p, "--data", d]);
    ok(Path::new(MOMENTS), &["--pipeline", p, "--data", d, "--force"]);
    assert_eq!(good, snapshot(&data));
}

/// Ctrl-C (SIGINT): one line saying how far the stage got, exit code 130,
/// and a rerun resumes to the bytes of an uninterrupted run.
#[test]
fn ctrl_c_prints_one_line_exits_130_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let pipe = tmp.path().join("kill.toml");
    std::fs::write(&pipe, pipeline()).unwrap();
    let (clean, int) = (tmp.path().join("clean"), tmp.path().join("int"));
    let p = pipe.display().to_string();
    let (c, i) = (clean.display().to_string(), int.display().to_string());
    ok(&sample_bin(), &["--pipeline", &p, "--data", &c]);
    let mut child = Command::new(sample_bin())
        .args(["--pipeline", &p, "--data", &i, "--threads", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until some parts are on disk, then press Ctrl-C.
    let deadline = Instant::now() + Duration::from_secs(60);
    while parts_on_disk(&int) < 2 {
        assert!(Instant::now() < deadline && child.try_wait().unwrap().is_none(), "sample ended before it could be interrupted");
        std::thread::sleep(Duration::from_millis(1));
    }
    let st = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "exit code after Ctrl-C; stderr: {err}");
    let last = err.lines().filter(|l| !l.trim().is_empty()).last().unwrap_or("");
    let rest = last.strip_prefix("nnqft-sample: interrupted: ").unwrap_or_else(|| panic!("one interrupted line, got {last:?}"));
    let (n, rest) = rest.split_once(" of ").expect("N of M");
    let (m, rest) = rest.split_once(' ').expect("M parts");
    assert_eq!(rest, "parts written; rerun to resume");
    let (n, m): (usize, usize) = (n.parse().unwrap(), m.parse().unwrap());
    let on_disk = parts_on_disk(&int);
    assert!(n >= 1 && n < m && n <= on_disk, "{n} of {m} parts written, {on_disk} on disk");
    // The rerun resumes and ends with the same bytes as the uninterrupted run.
    let out = ok(&sample_bin(), &["--pipeline", &p, "--data", &i]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("already done"), "the rerun resumed");
    let (a, b) = (snapshot(&clean), snapshot(&int));
    assert_eq!(a, b, "same bytes after Ctrl-C and a rerun");
}

/// Finished part files under `dir/samples` (no hashing: cheap enough to poll).
fn parts_on_disk(dir: &Path) -> usize {
    fn walk(d: &Path) -> usize {
        std::fs::read_dir(d).map_or(0, |it| {
            it.flatten()
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if e.path().is_dir() { walk(&e.path()) } else { usize::from(name.starts_with("part-") && name.ends_with(".parquet")) }
                })
                .sum()
        })
    }
    walk(&dir.join("samples"))
}
