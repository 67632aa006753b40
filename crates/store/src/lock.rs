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

/// The current time as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, proleptic Gregorian).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    utc(secs)
}

fn utc(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(super::utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::utc(1_796_200_000), "2026-12-02T08:26:40Z");
    }
}

/// A data directory may be missing, but not something else.
fn not_a_file(data: &Path) -> Result<()> {
    if data.exists() && !data.is_dir() {
        bail!("--data {}: exists and is not a directory", data.display());
    }
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "unknown".into())
}

impl DirLock {
    /// Locks `data` (created if missing) for `stage`; `shared` for sharded
    /// sampling. Fails at once, naming the holder, if another run holds it.
    pub fn acquire(data: &Path, stage: &str, shared: bool) -> Result<DirLock> {
        not_a_file(data)?;
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
            utc_now()
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

    /// Locks an existing data directory for a stage that reads `input`
    /// (a file inside it): if the input is missing nothing is created, and
    /// the error says which stage makes it.
    pub fn acquire_for_input(data: &Path, stage: &str, input: &str, made_by: &str) -> Result<DirLock> {
        not_a_file(data)?;
        if !data.join(input).is_file() {
            bail!("{}: {input} is missing; run {made_by} first", data.display());
        }
        DirLock::acquire(data, stage, false)
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
