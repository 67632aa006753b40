//! One writer per data directory: an advisory `flock` on `DATA/.nnqft.lock`.
//!
//! The kernel releases the lock when its holder exits, however it exits, so
//! a lock left by a killed run is recovered by the next run automatically;
//! the file also records who holds it (pid, host, stage, start time) so a
//! refused run can name the holder. Sharded `sample` runs write disjoint
//! parts and share the lock; every other run holds it exclusively.

use anyhow::{Context, Result, bail};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Name of the lock file inside a data directory.
pub const LOCK_FILE: &str = ".nnqft.lock";

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct DirLock {
    file: File,
    path: PathBuf,
    /// What the previous, no longer running holder had written, if any.
    pub recovered_from: Option<String>,
}

fn holder_alive(info: &str) -> bool {
    // info: "pid=123 host=... stage=..."
    let pid = info.split_whitespace().find_map(|w| w.strip_prefix("pid=")).and_then(|p| p.parse::<u32>().ok());
    let host = info.split_whitespace().find_map(|w| w.strip_prefix("host="));
    match (pid, host) {
        (Some(pid), Some(h)) if h == hostname() => Path::new(&format!("/proc/{pid}")).exists(),
        _ => true, // another machine: cannot tell, assume alive
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "unknown".into())
}

impl DirLock {
    /// Locks `data` (created if missing) for `stage`; `shared` for sharded
    /// sampling. Fails at once, naming the holder, if another run holds it.
    pub fn acquire(data: &Path, stage: &str, shared: bool) -> Result<DirLock> {
        std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
        let path = data.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open lock {}", path.display()))?;
        let op = if shared { libc::LOCK_SH } else { libc::LOCK_EX } | libc::LOCK_NB;
        // SAFETY: flock on a valid open file descriptor.
        if unsafe { libc::flock(file.as_raw_fd(), op) } != 0 {
            let mut info = String::new();
            let _ = file.read_to_string(&mut info);
            let info = info.lines().last().unwrap_or("").trim().to_string();
            bail!(
                "{}: in use by another nnqft run ({}); wait for it to finish or use another --data",
                data.display(),
                if info.is_empty() { "holder unknown".to_string() } else { info }
            );
        }
        let mut previous = String::new();
        let _ = file.read_to_string(&mut previous);
        let me = format!(
            "pid={} host={} stage={} since={}",
            std::process::id(),
            hostname(),
            stage,
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
        );
        // Under a shared lock several holders append; the last line names one of them.
        let recovered_from = previous.lines().filter(|l| !l.trim().is_empty() && !holder_alive(l)).last().map(str::to_string);
        if !shared || recovered_from.is_some() {
            file.set_len(0)?;
            file.rewind()?;
        } else {
            file.seek(std::io::SeekFrom::End(0))?;
        }
        writeln!(file, "{me}")?;
        Ok(DirLock { file, path, recovered_from })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Clear our record (exclusive holders only: shared holders may overlap).
        // SAFETY: try to upgrade to exclusive without blocking; if others share it, leave the record.
        if unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            let _ = self.file.set_len(0);
        }
    }
}
