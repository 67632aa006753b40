//! `nnqft-bench`: throughput of the sampler, of its bare normal generator
//! (the bound a sampler cannot beat) and of the version-2 one (rand_distr's
//! ziggurat), of the version-1 and version-2 samplers (the baselines the
//! speed-ups are measured against, in this process), of a batched numpy
//! sampler (`bench/numpy_sampler.py`, one thread, run in the same benchmark),
//! of the sampler's activation pass alone (nets/s if a net cost only its
//! k N activations: with the generator's rate, where a net's time goes),
//! of the deep sampler (3 hidden layers), and of the moments reduction, at 1
//! and 2 threads; then the peak RSS of
//! `nnqft-sample` at 10^6 and 3 x 10^6 nets per bag. Prints a table and
//! writes `data/bench/bench.parquet`.

mod legacy;
mod legacy_v2;

use anyhow::Result;
use nnqft_core::normal::NormalStream;
use nnqft_core::rng::StreamKey;
use nnqft_core::tuples::ProductTree;
use nnqft_core::deep::DeepSampler;
use nnqft_core::{Activation, ArchSpec, NetSampler};
use nnqft_store::tables::Table;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

/// Throughput benchmarks of nnqft (no timed assertions: this only measures).
#[derive(clap::Parser)]
#[command(name = "nnqft-bench", version)]
struct Args {
    /// Seconds per measurement (each is repeated until it has run this long).
    #[arg(long, default_value_t = 0.5)]
    seconds: f64,
    /// Output table.
    #[arg(long, default_value = "data/bench/bench.parquet")]
    out: PathBuf,
    /// Skip the peak-RSS runs of nnqft-sample.
    #[arg(long)]
    no_rss: bool,
    /// Widths to benchmark the sampler at.
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    widths: Vec<usize>,
    /// Widths to benchmark the deep sampler at (3 hidden layers).
    #[arg(long, value_delimiter = ',', default_value = "10,100")]
    deep_widths: Vec<usize>,
}

/// Runs `work(threads)` (which returns the units it processed) until
/// `seconds` have passed; returns units per second.
fn rate(seconds: f64, threads: usize, work: &(dyn Fn() -> u64 + Sync)) -> f64 {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
    pool.install(|| {
        let start = Instant::now();
        let mut units = 0u64;
        while start.elapsed().as_secs_f64() < seconds {
            units += (0..threads).into_par_iter().map(|_| work()).sum::<u64>();
        }
        units as f64 / start.elapsed().as_secs_f64()
    })
}

fn inputs6() -> Vec<Vec<f64>> {
    [-1.0, -0.6, -0.2, 0.2, 0.6, 1.0].iter().map(|&x| vec![x]).collect()
}

struct Row {
    bench: String,
    activation: String,
    width: u32,
    threads: u32,
    value: f64,
    unit: &'static str,
    ratio_to_rng: f64,
    ratio_to_numpy: f64,
    ratio_to_v1: f64,
    ratio_to_v2: f64,
}

impl Row {
    fn new(bench: &str, activation: &str, width: usize, threads: usize, value: f64, unit: &'static str) -> Self {
        Row {
            bench: bench.into(),
            activation: activation.into(),
            width: width as u32,
            threads: threads as u32,
            value,
            unit,
            ratio_to_rng: f64::NAN,
            ratio_to_numpy: f64::NAN,
            ratio_to_v1: f64::NAN,
            ratio_to_v2: f64::NAN,
        }
    }
}

/// nets/s of `bench/numpy_sampler.py` (one thread), or NaN with a warning.
fn numpy_rate(act: Activation, width: usize, seconds: f64) -> f64 {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/numpy_sampler.py");
    let out = std::process::Command::new("python3").arg(&script).arg(act.name()).arg(width.to_string()).arg(seconds.to_string()).output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().parse().unwrap_or(f64::NAN),
        Ok(o) => {
            eprintln!("nnqft-bench: warning: numpy baseline failed (pip install -r bench/requirements.txt): {}", String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or(""));
            f64::NAN
        }
        Err(e) => {
            eprintln!("nnqft-bench: warning: cannot run python3 for the numpy baseline: {e}");
            f64::NAN
        }
    }
}

/// Peak RSS (MB) of `nnqft-sample` drawing one bag of `nets` relu nets of
/// width 100 (6 inputs) on 2 threads, measured by wait4 on the child.
fn sample_rss_mb(nets: u64) -> Result<f64> {
    let tmp = tempfile::tempdir()?;
    let pipe = tmp.path().join("rss.toml");
    std::fs::write(
        &pipe,
        format!(
            "name = \"rss\"\nseed = 1\n[sample]\nbags = 2\nnets_per_bag = {nets}\nwidths = [100]\n[[sample.arch]]\nname = \"relu\"\nactivation = \"relu\"\nd_in = 1\nsigma_w = 1.0\nsigma_b = 0.0\ninputs = [[0.2], [0.4], [0.6], [0.8], [1.0], [1.2]]\n"
        ),
    )?;
    let bin = std::env::current_exe()?.with_file_name("nnqft-sample");
    let child = std::process::Command::new(&bin)
        .args(["--pipeline", pipe.to_str().unwrap(), "--data", tmp.path().join("d").to_str().unwrap(), "--threads", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("{}: {e}", bin.display()))?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    anyhow::ensure!(pid > 0 && status == 0, "nnqft-sample failed (status {status})");
    Ok(ru.ru_maxrss as f64 / 1024.0)
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let args: Args = nnqft_cli::parse_args("nnqft-bench");
    nnqft_cli::run_main("nnqft-bench", || run(&args));
}

fn run(args: &Args) -> Result<()> {
    let secs = args.seconds;
    let mut rows: Vec<Row> = Vec::new();
    println!("{:<10} {:<6} {:>6} {:>7} {:>14} {:>10} {:>9} {:>8} {:>8}", "bench", "act", "width", "threads", "rate", "vs rng", "vs numpy", "vs v1", "vs v2");
    for &width in &args.widths {
        // d_in = 1: (d + 2) N + 1 normals per net.
        let normals_per_net = 3 * width + 1;
        let batch = (200_000 / width).max(20);
        // nets per generator call, as the sampler draws them
        let per_call = (nnqft_core::sampler::NORMALS_PER_CALL / normals_per_net).max(1);
        let mut rng_rate = [0.0; 3];
        for threads in [1usize, 2] {
            let r = rate(secs, threads, &|| {
                // as the sampler draws them: the normals of several nets per call
                let mut normals = NormalStream::new(&mut StreamKey { seed: 1, arch: "bench", width, bag: 0, part: 0 }.stream());
                let mut buf = vec![0.0f64; per_call * normals_per_net];
                for _ in 0..batch.div_ceil(per_call) {
                    normals.fill(&mut buf);
                    black_box(&buf);
                }
                (batch.div_ceil(per_call) * per_call) as u64
            });
            rng_rate[threads] = r;
            println!("{:<10} {:<6} {:>6} {:>7} {:>10.0} n/s {:>10}", "rng-only", "-", width, threads, r, "1.00");
            rows.push(Row { ratio_to_rng: 1.0, ..Row::new("rng_only", "-", width, threads, r, "nets/s") });
        }
        // version 2's generator: rand_distr's scalar ziggurat on one stream
        let r = rate(secs, 1, &|| {
            let mut rng = StreamKey { seed: 1, arch: "bench", width, bag: 0, part: 0 }.stream();
            let mut buf = vec![0.0f64; normals_per_net];
            for _ in 0..batch {
                for v in buf.iter_mut() {
                    *v = StandardNormal.sample(&mut rng);
                }
                black_box(&buf);
            }
            batch as u64
        });
        println!("{:<10} {:<6} {:>6} {:>7} {:>10.0} n/s {:>10.2}", "rng-v2", "-", width, 1, r, r / rng_rate[1]);
        rows.push(Row { ratio_to_rng: r / rng_rate[1], ..Row::new("rng_only_v2", "-", width, 1, r, "nets/s") });
        // pre-activations for the activation pass alone, in rows as the
        // sampler forms them (all the pre-activations of a call's nets below
        // ROW_BY_ROW = 256 units, one input's N values above)
        let pre = {
            let len = if width >= 256 { width } else { 6 * width * per_call };
            let mut pre = vec![0.0f64; len];
            NormalStream::new(&mut StreamKey { seed: 1, arch: "bench", width, bag: 0, part: 0 }.stream()).fill(&mut pre);
            pre
        };
        let isa = nnqft_core::sampler::Isa::detect();
        for act in [Activation::Erf, Activation::Relu, Activation::Gauss, Activation::Tanh] {
            let arch = ArchSpec::single(act.name(), act, 1.0, 1.0, inputs6());
            let numpy = numpy_rate(act, width, secs.max(0.5));
            rows.push(Row::new("numpy", act.name(), width, 1, numpy, "nets/s"));
            let v1 = rate(secs, 1, &|| {
                let mut s = legacy::LegacySampler::new(&arch, width);
                let mut rng = StreamKey { seed: 1, arch: act.name(), width, bag: 0, part: 0 }.stream();
                black_box(s.sample_part(&mut rng, batch));
                batch as u64
            });
            rows.push(Row { ratio_to_rng: v1 / rng_rate[1], ratio_to_numpy: v1 / numpy, ..Row::new("sample_v1", act.name(), width, 1, v1, "nets/s") });
            println!("{:<10} {:<6} {:>6} {:>7} {:>10.0} n/s {:>10.2} {:>9.2} {:>8}", "numpy", act.name(), width, 1, numpy, numpy / rng_rate[1], 1.0, "-");
            println!("{:<10} {:<6} {:>6} {:>7} {:>10.0} n/s {:>10.2} {:>9.2} {:>8.2}", "sample-v1", act.name(), width, 1, v1, v1 / rng_rate[1], v1 / numpy, 1.0);
            let v2 = rate(secs, 1, &|| {
                let mut s = legacy_v2::V2Sampler::new(&arch, width);
                let mut rng = StreamKey { seed: 1, arch: act.name(), width, bag: 0, part: 0 }.stream();
                black_box(s.sample_part(&mut rng, batch));
                batch as u64
            });
            rows.push(Row { ratio_to_rng: v2 / rng_rate[1], ratio_to_numpy: v2 / numpy, ratio_to_v1: v2 / v1, ratio_to_v2: 1.0, ..Row::new("sample_v2", act.name(), width, 1, v2, "nets/s") });
            println!("{:<10} {:<6} {:>6} {:>7} {:>10.0} n/s {:>10.2} {:>9.2} {:>8.2} {:>8.2}", "sample-v2", act.name(), width, 1, v2, v2 / rng_rate[1], v2 / numpy, v2 / v1, 1.0);
            // the activation pass alone, from a copy of the pre-activations
            // (the copy included: ~0.15 ns a value)
            let act_rate = rate(secs, 1, &|| {
                let mut z = pre.clone();
                let reps = (batch * 6 * width).div_ceil(pre.len());
                for _ in 0..reps {
                    z.copy_from_slice(&pre);
                    nnqft_core::sampler::activate(act, isa, &mut z);
                    black_box(&z);
                }
                (reps * pre.len() / (6 * width)) as u64
            });
            println!("{:<10} {:<6} {:>6} {:>7} {:>10.0} n/s {:>10.2}", "act-only", act.name(), width, 1, act_rate, act_rate / rng_rate[1]);
            rows.push(Row { ratio_to_rng: act_rate / rng_rate[1], ..Row::new("activation_only", act.name(), width, 1, act_rate, "nets/s") });
            for threads in [1usize, 2] {
                let r = rate(secs, threads, &|| {
                    let mut s = NetSampler::new(&arch, width);
                    let mut rng = StreamKey { seed: 1, arch: act.name(), width, bag: 0, part: 0 }.stream();
                    black_box(s.sample_part(&mut rng, batch));
                    batch as u64
                });
                let ratio = r / rng_rate[threads];
                let (vs_np, vs_v1, vs_v2) = if threads == 1 { (r / numpy, r / v1, r / v2) } else { (f64::NAN, f64::NAN, f64::NAN) };
                println!("{:<10} {:<6} {:>6} {:>7} {:>10.0} n/s {:>10.2} {:>9.2} {:>8.2} {:>8.2}", "sample", act.name(), width, threads, r, ratio, vs_np, vs_v1, vs_v2);
                rows.push(Row { ratio_to_rng: ratio, ratio_to_numpy: vs_np, ratio_to_v1: vs_v1, ratio_to_v2: vs_v2, ..Row::new("sample", act.name(), width, threads, r, "nets/s") });
            }
        }
    }
    // The deep sampler: 3 hidden layers of one width, d_in = 1, 6 inputs, one
    // thread; "vs rng" against v3's generator drawing its k (3 N + 1) normals.
    for &width in &args.deep_widths {
        let normals_per_net = 6 * (3 * width + 1);
        let batch = (100_000 / width).max(20);
        let bound = rate(secs, 1, &|| {
            let mut normals = NormalStream::new(&mut StreamKey { seed: 1, arch: "bench", width, bag: 0, part: 0 }.stream());
            let mut buf = vec![0.0f64; normals_per_net];
            for _ in 0..batch {
                normals.fill(&mut buf);
                black_box(&buf);
            }
            batch as u64
        });
        println!("{:<10} {:<6} {:>6} {:>7} {:>10.0} n/s {:>10}", "rng-deep", "-", width, 1, bound, "1.00");
        rows.push(Row { ratio_to_rng: 1.0, ..Row::new("rng_only_deep", "-", width, 1, bound, "nets/s") });
        for act in Activation::ALL {
            let mut arch = ArchSpec::single(act.name(), act, 1.0, 1.0, inputs6());
            arch.hidden_layers = 3;
            let r = rate(secs, 1, &|| {
                let mut s = DeepSampler::new(&arch, width);
                let mut rng = StreamKey { seed: 1, arch: act.name(), width, bag: 0, part: 0 }.stream();
                black_box(s.sample_part(&mut rng, batch));
                batch as u64
            });
            println!("{:<10} {:<6} {:>6} {:>7} {:>10.0} n/s {:>10.2}", "sample-L3", act.name(), width, 1, r, r / bound);
            rows.push(Row { ratio_to_rng: r / bound, ..Row::new("sample_deep_l3", act.name(), width, 1, r, "nets/s") });
        }
    }
    // The moments reduction: one part of 65536 nets x 6 inputs, orders 2, 4, 6.
    let arch = ArchSpec::single("relu", Activation::Relu, 1.0, 0.0, inputs6());
    let mut s = NetSampler::new(&arch, 10);
    let mut rng = StreamKey { seed: 2, arch: "relu", width: 10, bag: 0, part: 0 }.stream();
    let cols = s.sample_part(&mut rng, 1 << 16);
    let tree = ProductTree::new(6, &[2, 4, 6]);
    let bytes = (cols.len() * cols[0].len() * 4) as u64;
    for threads in [1usize, 2] {
        let r = rate(secs, threads, &|| {
            let refs: Vec<&[f32]> = cols.iter().map(|c| c.as_slice()).collect();
            black_box(tree.sums(&refs, None));
            bytes
        }) / 1e6;
        println!("{:<10} {:<6} {:>6} {:>7} {:>10.1} MB/s", "moments", "-", "-", threads, r);
        rows.push(Row::new("moments_reduce", "-", 0, threads, r, "MB/s"));
    }
    if !args.no_rss {
        for nets in [1_000_000u64, 3_000_000] {
            let mb = sample_rss_mb(nets)?;
            println!("{:<10} {:<6} {:>6} {:>7} {:>10.0} MB   (nnqft-sample, one bag of {nets} relu nets, N = 100, 6 inputs)", "sample-rss", "relu", 100, 2, mb);
            rows.push(Row::new(&format!("sample_peak_rss_{nets}"), "relu", 100, 2, mb, "MB"));
        }
    }
    let rss = peak_rss_mb();
    println!("peak RSS of this benchmark process: {rss:.0} MB");
    rows.push(Row::new("bench_peak_rss", "-", 0, 0, rss, "MB"));

    let mut t = Table::default();
    t.utf8("bench", rows.iter().map(|r| r.bench.clone()).collect())
        .utf8("activation", rows.iter().map(|r| r.activation.clone()).collect())
        .u32("width", rows.iter().map(|r| r.width).collect())
        .u32("threads", rows.iter().map(|r| r.threads).collect())
        .f64("value", rows.iter().map(|r| r.value).collect())
        .utf8("unit", rows.iter().map(|r| r.unit.to_string()).collect())
        .f64("ratio_to_rng", rows.iter().map(|r| r.ratio_to_rng).collect())
        .f64("ratio_to_numpy", rows.iter().map(|r| r.ratio_to_numpy).collect())
        .f64("ratio_to_v1", rows.iter().map(|r| r.ratio_to_v1).collect())
        .f64("ratio_to_v2", rows.iter().map(|r| r.ratio_to_v2).collect());
    let footer = serde_json::json!({"stage": "bench", "version": nnqft_core::VERSION, "seconds_per_measurement": secs});
    t.write(&args.out, &footer)?;
    println!("-> {}", args.out.display());
    Ok(())
}
