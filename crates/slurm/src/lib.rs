//! # nnqft-slurm
//!
//! Runs a pipeline on a Slurm cluster with Slurm itself: a job array of
//! `nnqft-sample --shard $SLURM_ARRAY_TASK_ID/N`, then `nnqft-moments` as a
//! job that starts after every shard succeeded (`afterok`). Resubmitting
//! submits only the shards that still have missing parts; resume makes any
//! rerun correct.

use anyhow::{Context, Result, bail};
use nnqft_core::Pipeline;
use nnqft_store::atomic::write_atomic;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the scripts, the frozen pipeline and the logs go: `DATA/slurm`.
pub fn slurm_dir(data: &Path) -> PathBuf {
    data.join("slurm")
}

/// Single-quotes `s` for bash.
fn sh(s: &Path) -> String {
    format!("'{}'", s.display().to_string().replace('\'', r"'\''"))
}

/// The sbatch script of one stage. `shards` is Some(N) for the sample array.
///
/// ```
/// use std::path::Path;
/// let p = nnqft_core::Pipeline::from_toml(nnqft_core::pipeline::DEFAULT_PIPELINE_TOML).unwrap();
/// let s = nnqft_slurm::script(&p, "sample", Path::new("/b/nnqft-sample"), Path::new("/d/slurm/pipeline.toml"), Path::new("/d"), Some(8));
/// assert!(s.contains("#SBATCH --cpus-per-task=2"));
/// assert!(s.contains("--shard \"${SLURM_ARRAY_TASK_ID}/8\""));
/// ```
pub fn script(p: &Pipeline, stage: &str, bin: &Path, pipeline: &Path, data: &Path, shards: Option<u32>) -> String {
    let sl = &p.slurm;
    let logs = slurm_dir(data).join("logs");
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!("#SBATCH --job-name=nnqft-{stage}-{}\n", p.name));
    s.push_str(&format!("#SBATCH --cpus-per-task={}\n#SBATCH --mem={}\n#SBATCH --time={}\n", sl.cpus_per_task, sl.mem, sl.time));
    if let Some(part) = &sl.partition {
        s.push_str(&format!("#SBATCH --partition={part}\n"));
    }
    let log = if shards.is_some() { format!("{stage}-%A_%a.log") } else { format!("{stage}-%j.log") };
    s.push_str(&format!("#SBATCH --output={}\n", logs.join(log).display()));
    s.push_str("set -euo pipefail\n");
    let shard = shards.map_or(String::new(), |n| format!(" --shard \"${{SLURM_ARRAY_TASK_ID}}/{n}\""));
    s.push_str(&format!(
        "exec {} --pipeline {} --data {} --threads \"${{SLURM_CPUS_PER_TASK:-{}}}\"{shard}\n",
        sh(bin),
        sh(pipeline),
        sh(data),
        sl.cpus_per_task
    ));
    s
}

/// What [`prepare`] wrote and found.
#[derive(Debug)]
pub struct Prepared {
    pub sample_script: PathBuf,
    pub moments_script: PathBuf,
    pub shards: u32,
    /// Shards (1-based) that still have missing parts.
    pub pending: Vec<u32>,
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    write_atomic(path, |f| {
        use std::io::Write;
        Ok(f.write_all(text.as_bytes())?)
    })
}

/// Writes `DATA/slurm/{pipeline.toml, sample.sbatch, moments.sbatch}` and
/// `logs/`, and finds the shards with work left. The pipeline text is frozen
/// next to the scripts, so the jobs run exactly what was submitted.
pub fn prepare(p: &Pipeline, pipeline_text: &str, data: &Path, bin_dir: &Path, shards: u32) -> Result<Prepared> {
    let data = std::path::absolute(data).context("absolute data path")?;
    let dir = slurm_dir(&data);
    std::fs::create_dir_all(dir.join("logs")).with_context(|| format!("cannot create {}", dir.join("logs").display()))?;
    let frozen = dir.join("pipeline.toml");
    write_file(&frozen, pipeline_text)?;
    let mut scripts = Vec::new();
    for (stage, array) in [("sample", Some(shards)), ("moments", None)] {
        let bin = bin_dir.join(format!("nnqft-{stage}"));
        if !bin.is_file() {
            bail!("{}: not found; build the binaries first (just build)", bin.display());
        }
        let path = dir.join(format!("{stage}.sbatch"));
        write_file(&path, &script(p, stage, &bin, &frozen, &data, array))?;
        scripts.push(path);
    }
    let pending = (1..=shards).filter(|&i| nnqft_store::plan::pending_units(p, &data, Some((i, shards))) > 0).collect();
    Ok(Prepared { sample_script: scripts[0].clone(), moments_script: scripts[1].clone(), shards, pending })
}

/// `1,3,5-7` for sbatch `--array`.
///
/// ```
/// assert_eq!(nnqft_slurm::array_spec(&[1, 2, 3, 5, 7, 8]), "1-3,5,7-8");
/// ```
pub fn array_spec(ids: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        out.push(if i == j { ids[i].to_string() } else { format!("{}-{}", ids[i], ids[j]) });
        i = j + 1;
    }
    out.join(",")
}

/// Runs `sbatch --parsable ARGS` and returns the job id.
fn sbatch(args: &[String]) -> Result<String> {
    let out = Command::new("sbatch").arg("--parsable").args(args).output().context("cannot run sbatch (is Slurm installed and SLURM_CONF set?)")?;
    if !out.status.success() {
        bail!("sbatch {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim().replace('\n', " "));
    }
    let id = String::from_utf8_lossy(&out.stdout).trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() {
        bail!("sbatch {} printed no job id", args.join(" "));
    }
    Ok(id)
}

/// Submitted job ids.
#[derive(Debug)]
pub struct Submitted {
    pub sample: Option<String>,
    pub moments: String,
}

/// Submits the pending shards as an array, then moments after them.
pub fn submit(prep: &Prepared) -> Result<Submitted> {
    let sample = if prep.pending.is_empty() {
        None
    } else {
        Some(sbatch(&[format!("--array={}", array_spec(&prep.pending)), prep.sample_script.display().to_string()])?)
    };
    let mut args = Vec::new();
    if let Some(id) = &sample {
        args.push(format!("--dependency=afterok:{id}"));
        args.push("--kill-on-invalid-dep=yes".to_string());
    }
    args.push(prep.moments_script.display().to_string());
    Ok(Submitted { sample, moments: sbatch(&args)? })
}
