//! Crash-safe file replacement: write a temporary sibling, fsync it, rename it
//! over the target, fsync the directory. A reader sees the old file or the
//! new one, never a torn one; a killed writer leaves only a temporary file,
//! which no stage takes for output (its name starts with '.' and ends in
//! `.tmp-PID`).

use anyhow::{Context, Result};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The temporary name used while `path` is being written by this process.
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Writes `path` atomically: `write` fills a fresh temporary file, which is
/// then synced and renamed into place. Parent directories are created. On
/// error the temporary file is removed and `path` is untouched.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("a/b.txt");
/// nnqft_store::atomic::write_atomic(&p, |f| {
///     use std::io::Write;
///     Ok(f.write_all(b"hello")?)
/// }).unwrap();
/// assert_eq!(std::fs::read(&p).unwrap(), b"hello");
/// ```
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let dir = path.parent().context("output path has no parent directory")?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create directory {}", dir.display()))?;
    let tmp = temp_path(path);
    let result = (|| -> Result<()> {
        let mut f = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        write(&mut f)?;
        f.sync_all().with_context(|| format!("cannot sync {}", tmp.display()))?;
        drop(f);
        fs::rename(&tmp, path).with_context(|| format!("cannot rename into {}", path.display()))?;
        // Make the rename itself durable.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// Writes one record batch as a Parquet file, atomically (see [`write_atomic`]).
pub fn write_parquet(path: &Path, batch: &arrow::record_batch::RecordBatch, props: parquet::file::properties::WriterProperties) -> Result<()> {
    write_atomic(path, |f| {
        let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), Some(props))?;
        w.write(batch)?;
        w.close()?;
        Ok(())
    })
}

/// The writer pid recorded in a temporary file name (`.NAME.tmp-PID-N`).
fn temp_pid(file_name: &str) -> Option<u32> {
    let rest = &file_name[file_name.find(".tmp-")? + 5..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Is the writer of temporary file `file_name` still running on this machine?
fn writer_alive(file_name: &str) -> bool {
    temp_pid(file_name).is_some_and(|p| p == std::process::id() || Path::new(&format!("/proc/{p}")).exists())
}

/// Removes temporary files in `dir` left by killed writers: those of `name`
/// only, or every one with `name = None`. Files whose writer process still
/// runs on this machine are kept, so a concurrent writer is not disturbed.
pub fn clean_stale_temps(dir: &Path, name: Option<&str>) -> Result<usize> {
    let prefix = name.map(|n| format!(".{n}.tmp-"));
    let mut removed = 0;
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    for entry in entries {
        let entry = entry?;
        let fname = entry.file_name().to_string_lossy().into_owned();
        let ours = match &prefix {
            Some(p) => fname.starts_with(p.as_str()),
            None => is_temp_name(&fname),
        };
        if ours && !writer_alive(&fname) && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Is `file_name` one of our temporary files?
pub fn is_temp_name(file_name: &str) -> bool {
    file_name.starts_with('.') && file_name.contains(".tmp-")
}
