//! The `sample` stage: plan the work units of a pipeline, decide which are
//! already done (resume), draw the rest in parallel, write them atomically.
//!
//! A work unit is one part file: (arch, width, bag, part). Units are listed
//! in a canonical order (arch, width, bag, part); `--shard I/N` takes every
//! N-th unit starting at I-1, which spreads cheap and expensive widths evenly
//! over the shards. Each unit has its own random stream, so the bytes written
//! do not depend on threads, shards, order or interruptions.

pub mod plan;

use anyhow::{Context, Result, bail};
use nnqft_cli::{Progress, human};
use nnqft_core::rng::StreamKey;
use nnqft_core::deep::DeepSampler;
use nnqft_core::{NetSampler, Pipeline};
use nnqft_store::atomic::clean_stale_temps;
use nnqft_store::lock::DirLock;
pub use nnqft_store::plan::{State, WorkUnit, expected_meta, pending_units, plan, shard_units, state};
use nnqft_store::samples::{PartMeta, bag_dir, part_file_name, part_path, stale_entries, stale_message, write_part};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// How to run the stage.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `(I, N)`: do the I-th of N parts of the work (1-based).
    pub shard: Option<(u32, u32)>,
    /// Redo existing parts (also foreign ones) and remove stale files.
    pub force: bool,
    /// Read every existing part's data, not only its footer: checksum and
    /// finiteness (`--verify`); parts that fail are listed and redone.
    pub verify: bool,
}

/// What a finished run did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub parts_written: usize,
    pub nets_written: u64,
    pub parts_skipped: usize,
    pub parts_redone_corrupt: usize,
    pub stale_removed: usize,
    pub seconds: f64,
}

/// Free bytes on the file system holding `dir` (or its nearest existing ancestor).
fn free_bytes(dir: &Path) -> Option<u64> {
    let mut d = dir.to_path_buf();
    while !d.exists() {
        d = d.parent()?.to_path_buf();
        if d.as_os_str().is_empty() {
            d = PathBuf::from(".");
        }
    }
    let c = std::ffi::CString::new(d.as_os_str().as_encoded_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    Some(s.f_bavail as u64 * s.f_frsize as u64)
}

/// Runs the sample stage for `p`, writing under `data`.
pub fn run(p: &Pipeline, data: &Path, opts: &Options) -> Result<Report> {
    let mut report = Report::default();
    let lock = DirLock::acquire(data, "nnqft-sample", opts.shard.is_some())?;
    if let Some(prev) = &lock.recovered_from {
        eprintln!("nnqft-sample: note: {} was held by a run that is gone ({prev}); recovered", lock.path().display());
    }
    let stale = stale_entries(p, data)?;
    if !stale.is_empty() {
        if !opts.force {
            bail!("{}", stale_message(p, &stale, "rerun with --force to remove stale data"));
        }
        for s in &stale {
            let r = if s.is_dir() { std::fs::remove_dir_all(s) } else { std::fs::remove_file(s) };
            match r {
                Ok(()) => report.stale_removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("cannot remove stale {}", s.display())),
            }
        }
    }

    let (todo, skipped, redone) = pending(p, data, opts)?;
    report.parts_skipped = skipped;
    report.parts_redone_corrupt = redone;
    let units_len = todo.len() + skipped;

    let bytes = plan::disk_bytes(&todo);
    if let Some(free) = free_bytes(data)
        && bytes > free
    {
        bail!(
            "{}: this run needs about {} of disk but only {} is free; nothing was written",
            data.display(),
            human_bytes(bytes),
            human_bytes(free)
        );
    }

    let threads = rayon::current_num_threads() as u64;
    let per_thread = plan::memory_per_thread(p, &todo);
    if let Some(avail) = available_memory()
        && per_thread * threads > avail
    {
        bail!(
            "this run needs about {} of memory ({} per thread x {threads} threads) but only {} is available; lower the widths, nets_per_part or --threads",
            human_bytes(per_thread * threads),
            human_bytes(per_thread),
            human_bytes(avail)
        );
    }

    let work: f64 = todo.iter().map(|(u, m)| m.nets as f64 * u.width as f64 * m.inputs.len() as f64).sum();
    if work > LONG_RUN {
        eprint!("nnqft-sample: {}: estimated cost (`just plan {}` for what it resolves):\n{}", p.name, p.name, plan::cost_lines(p, &todo, report.parts_skipped, free_bytes(data), threads as usize));
    }
    nnqft_store::inputs::write_inputs(data, p)?;
    let total_nets: u64 = todo.iter().map(|(_, m)| m.nets).sum();
    let progress = Progress::new(&format!("sample {}", p.name), total_nets, "nets");
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let (written, done_before, total) = (written.clone(), report.parts_skipped, units_len);
        nnqft_cli::interrupt::set_status(move || {
            let n = done_before + written.load(std::sync::atomic::Ordering::SeqCst);
            format!("{n} of {total} parts written")
        });
    }
    let sampled = std::thread::scope(|scope| {
        let pool = Writers::spawn(scope, rayon::current_num_threads(), |job: Written| -> Result<()> {
            let u = job.unit;
            let (dir, name) = (bag_dir(data, &p.sample.arch[u.arch].name, u.width, u.bag), part_file_name(u.part));
            clean_stale_temps(&dir, Some(&name))?;
            write_part(&dir.join(&name), job.cols, job.meta)?;
            written.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            progress.inc(job.meta.nets);
            Ok(())
        });
        let sampled = todo.par_iter().try_for_each(|(u, meta)| -> Result<()> {
            pool.check()?;
            let arch = &p.sample.arch[u.arch];
            let key = StreamKey { seed: p.seed, arch: &arch.name, width: u.width, bag: u.bag, part: u.part };
            let cols = if arch.hidden_layers > 1 {
                DeepSampler::new(arch, u.width).sample_part(&mut key.stream(), meta.nets as usize)
            } else {
                NetSampler::new(arch, u.width).sample_part(&mut key.stream(), meta.nets as usize)
            };
            if let Some((j, r, v)) = nnqft_store::samples::first_non_finite(&cols) {
                bail!(
                    "{} width {} bag {} part {}: the network output in column {j} row {r} is {v}: the inputs or sigmas overflow single precision; nothing was written for this part",
                    arch.name, u.width, u.bag, u.part
                );
            }
            pool.send(Written { unit: *u, cols, meta })
        });
        pool.finish(sampled)
    });
    sampled?;
    let (nets, secs) = progress.finish();
    report.parts_written = todo.len();
    report.nets_written = nets;
    report.seconds = secs;
    println!(
        "nnqft-sample: {}: wrote {} parts ({} nets) in {:.1}s ({} nets/s); {} parts already done{}",
        p.name,
        report.parts_written,
        human(nets as f64),
        secs,
        human(nets as f64 / secs.max(1e-9)),
        report.parts_skipped,
        if opts.shard.is_some() { " (this shard)" } else { "" }
    );
    nnqft_report::write_section(data, "sample", &nnqft_report::sample_hash(p), &section(p))?;
    Ok(report)
}

/// A sampled part on its way to the disk.
struct Written<'a> {
    unit: WorkUnit,
    cols: Vec<Vec<f32>>,
    meta: &'a PartMeta,
}

/// Threads that write the sampled parts, so that the sampling threads do
/// not wait on the disk: a part's write is mostly the kernel copying it
/// and `fsync` waiting for the device, time in which a sampler could draw
/// the next part. With one writer per sampler and a queue as deep, a
/// sampler blocks only when every writer is busy and the queue full, and
/// at most `2 x threads` parts beyond the ones being drawn are held in
/// memory ([`plan::memory_per_thread`] counts them). The samplers hold
/// this handle.
struct Writers<'scope, T> {
    tx: Option<std::sync::mpsc::SyncSender<T>>,
    failed: std::sync::Arc<std::sync::Mutex<Option<anyhow::Error>>>,
    handles: Vec<std::thread::ScopedJoinHandle<'scope, ()>>,
}

impl<'scope, T: Send + 'scope> Writers<'scope, T> {
    /// Starts `threads` writers in `scope`; each runs `write` on parts
    /// until the queue closes or a write fails. The first failure stops the
    /// others after their current part and makes [`Writers::send`] and
    /// [`Writers::check`] fail, so the samplers stop too.
    fn spawn<'env>(scope: &'scope std::thread::Scope<'scope, 'env>, threads: usize, write: impl Fn(T) -> Result<()> + Send + Sync + 'scope) -> Self {
        let threads = threads.max(1);
        let (tx, rx) = std::sync::mpsc::sync_channel::<T>(threads);
        // Each writer holds the receiver; when the last one stops it is
        // dropped, so a sampler blocked on a full queue gets an error
        // instead of waiting forever.
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let failed = std::sync::Arc::new(std::sync::Mutex::new(None::<anyhow::Error>));
        let write = std::sync::Arc::new(write);
        let handles = (0..threads)
            .map(|_| {
                let (rx, failed, write) = (rx.clone(), failed.clone(), write.clone());
                scope.spawn(move || {
                    loop {
                        if failed.lock().map(|f| f.is_some()).unwrap_or(true) {
                            return;
                        }
                        let Ok(job) = rx.lock().map_err(|_| ()).and_then(|r| r.recv().map_err(|_| ())) else { return };
                        if let Err(e) = write(job) {
                            if let Ok(mut f) = failed.lock() {
                                f.get_or_insert(e);
                            }
                            return;
                        }
                    }
                })
            })
            .collect();
        Writers { tx: Some(tx), failed, handles }
    }

    /// An error if a writer has failed (the samplers then stop early).
    fn check(&self) -> Result<()> {
        match self.failed.lock() {
            Ok(f) if f.is_none() => Ok(()),
            _ => bail!("stopped: a part could not be written"),
        }
    }

    /// Queues a part, waiting while every writer is busy and the queue full.
    fn send(&self, job: T) -> Result<()> {
        let tx = self.tx.as_ref().expect("the queue is open until finish");
        tx.send(job).map_err(|_| anyhow::anyhow!("stopped: a part could not be written"))
    }

    /// Closes the queue, waits for the writers to write what is queued, and
    /// returns the first write error, else `sampled` (the samplers' result).
    fn finish(mut self, sampled: Result<()>) -> Result<()> {
        drop(self.tx.take());
        for h in self.handles.drain(..) {
            if let Err(panic) = h.join() {
                std::panic::resume_unwind(panic);
            }
        }
        match self.failed.lock().ok().and_then(|mut f| f.take()) {
            Some(e) => Err(e),
            None => sampled,
        }
    }
}

/// The units of this run still to write (parts missing, corrupt, or with
/// `--force` every one), with the counts of those done and of the corrupt
/// ones redone. Reads footers only; a part of another config is an error.
fn pending(p: &Pipeline, data: &Path, opts: &Options) -> Result<(Vec<(WorkUnit, PartMeta)>, usize, usize)> {
    let units = shard_units(&plan(p), opts.shard);
    let states: Vec<(WorkUnit, PartMeta, State)> = units
        .par_iter()
        .map(|u| {
            let want = expected_meta(p, u);
            let st = state(&part_path(data, &want.arch.name, u.width, u.bag, u.part), &want, opts.verify);
            (*u, want, st)
        })
        .collect();

    let (mut skipped, mut redone) = (0, 0);
    let mut todo = Vec::new();
    let mut foreign = Vec::new();
    for (u, want, st) in states {
        match st {
            State::Done if !opts.force => skipped += 1,
            State::Done | State::Missing => todo.push((u, want)),
            State::Corrupt(why) => {
                eprintln!("nnqft-sample: warning: {why}; redoing it");
                redone += 1;
                todo.push((u, want));
            }
            State::Foreign(why) if opts.force => {
                eprintln!("nnqft-sample: warning: {why}; --force: redoing it");
                todo.push((u, want));
            }
            State::Foreign(why) => foreign.push(why),
        }
    }
    if let Some(first) = foreign.first() {
        bail!(
            "{first}; {} part(s) like this. Nothing was overwritten: use another --data, or --force to redo them",
            foreign.len()
        );
    }
    Ok((todo, skipped, redone))
}

/// A run of more than this many net-units (nets x width x inputs) prints its
/// cost estimate before it starts.
const LONG_RUN: f64 = 2e10;

/// `--plan`: what the run would cost and resolve, writing nothing.
pub fn print_plan(p: &Pipeline, data: &Path, opts: &Options) -> Result<()> {
    let (todo, skipped, _) = if data.join("samples").is_dir() {
        pending(p, data, &Options { verify: false, ..opts.clone() })?
    } else {
        (shard_units(&plan(p), opts.shard).into_iter().map(|u| (u, expected_meta(p, &u))).collect(), 0, 0)
    };
    println!("nnqft-sample: plan for {} (nothing is written){}", p.name, if opts.shard.is_some() { ", this shard" } else { "" });
    print!("{}", plan::cost_lines(p, &todo, skipped, free_bytes(data), rayon::current_num_threads()));
    print!("{}", plan::format_resolution(p, &plan::resolution(p)));
    Ok(())
}

/// The sample stage's section of the run report: the ensembles as drawn.
pub fn section(p: &Pipeline) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "## Ensembles (sample)
");
    let _ = writeln!(
        s,
        "Every (arch, width) has {} bags of {} nets (parts of at most {} nets), drawn by sampler version {} from \
         seed {}: each part's random stream is keyed by (seed, arch, width, bag, part), so the samples are the same \
         on any machine and thread count. \
         Weights W ~ N(0, sigma_w^2 / fan_in), biases b ~ N(0, sigma_b^2) \
         (docs/physics.md §1).\n",
        p.sample.bags,
        p.sample.nets_per_bag,
        p.sample.nets_per_part,
        nnqft_core::sampler::SAMPLER_VERSION,
        p.seed
    );
    s.push_str(&nnqft_report::table(
        &["arch", "activation", "d_in", "hidden layers", "sigma_w", "sigma_b", "widths", "inputs", "nets per width"],
        p.sample.arch.iter().map(|a| {
            let widths: Vec<String> = p.widths_of(a).iter().map(|w| w.to_string()).collect();
            let inputs: Vec<String> = a.inputs.iter().map(|x| format!("{x:?}")).collect();
            vec![
                a.name.clone(),
                a.activation.to_string(),
                a.d_in.to_string(),
                a.hidden_layers.to_string(),
                a.sigma_w.to_string(),
                a.sigma_b.to_string(),
                widths.join(", "),
                inputs.join(" "),
                human(p.sample.bags as f64 * p.sample.nets_per_bag as f64),
            ]
        }),
    ));
    s
}

/// MemAvailable from /proc/meminfo, in bytes.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = text.lines().find(|l| l.starts_with("MemAvailable:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn human_bytes(b: u64) -> String {
    format!("{}B", human(b as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Runs `jobs` samplers (rayon, 2 threads) sending to a 2-writer pool
    /// whose `write` sleeps a little and fails on job `write_fails_at`;
    /// returns the pool's result and the jobs sent and written, sorted.
    fn run_pool(jobs: usize, write_fails_at: Option<usize>, sample_fails_at: Option<usize>) -> (Result<()>, Vec<usize>, Vec<usize>) {
        let (sent, written) = (Mutex::new(Vec::new()), Mutex::new(Vec::new()));
        let rayon = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let result = std::thread::scope(|scope| {
            let pool = Writers::spawn(scope, 2, |j: usize| -> Result<()> {
                std::thread::sleep(std::time::Duration::from_micros(200));
                if Some(j) == write_fails_at {
                    bail!("cannot write job {j}");
                }
                written.lock().unwrap().push(j);
                Ok(())
            });
            let sampled = rayon.install(|| {
                (0..jobs).into_par_iter().try_for_each(|j| {
                    pool.check()?;
                    if Some(j) == sample_fails_at {
                        bail!("cannot sample job {j}");
                    }
                    pool.send(j)?;
                    sent.lock().unwrap().push(j);
                    Ok(())
                })
            });
            pool.finish(sampled)
        });
        let sorted = |m: Mutex<Vec<usize>>| {
            let mut v = m.into_inner().unwrap();
            v.sort();
            v
        };
        (result, sorted(sent), sorted(written))
    }

    #[test]
    fn every_part_sent_is_written() {
        let (r, sent, written) = run_pool(500, None, None);
        r.unwrap();
        assert_eq!(sent, (0..500).collect::<Vec<_>>());
        assert_eq!(written, sent);
    }

    /// A failed write is the run's error, the samplers stop early instead of
    /// drawing everything, and nobody waits forever on the queue.
    #[test]
    fn a_failed_write_stops_the_samplers_with_its_error() {
        let (r, sent, written) = run_pool(100_000, Some(40), None);
        assert_eq!(format!("{:#}", r.unwrap_err()), "cannot write job 40");
        assert!(sent.contains(&40) && !written.contains(&40));
        assert!(sent.len() < 1000, "stopped early: {} sent", sent.len());
    }

    /// A sampler's error is the run's error, and every part queued before it
    /// is still written (the work done is kept).
    #[test]
    fn a_failed_sample_keeps_what_was_queued() {
        let (r, sent, written) = run_pool(300, None, Some(150));
        assert_eq!(format!("{:#}", r.unwrap_err()), "cannot sample job 150");
        assert!(!sent.is_empty() && !sent.contains(&150));
        assert_eq!(written, sent);
    }
}
