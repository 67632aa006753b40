//! `nnqft-bench`: throughput of the sampler, of a bare normal generator (the
//! bound a sampler cannot beat), and of the moments reduction, each at 1 and
//! 2 threads, measured in one process so ratios are robust on a shared
//! machine. Prints a table and writes `data/bench/bench.parquet`.

use anyhow::Result;
use nnqft_core::rng::StreamKey;
use nnqft_core::tuples::ProductTree;
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
    /// Widths to benchmark the sampler at.
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    widths: Vec<usize>,
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
    println!("{:<10} {:<6} {:>6} {:>7} {:>14} {:>10}", "bench", "act", "width", "threads", "rate", "vs rng");
    for &width in &args.widths {
        // d_in = 1: (d + 2) N + 1 normals per net.
        let normals = 3 * width + 1;
        let batch = (200_000 / width).max(20);
        let mut rng_rate = [0.0; 3];
        for threads in [1usize, 2] {
            let r = rate(secs, threads, &|| {
                let mut rng = StreamKey { seed: 1, arch: "bench", width, bag: 0, part: 0 }.stream();
                let mut buf = vec![0.0f64; normals];
                for _ in 0..batch {
                    for v in buf.iter_mut() {
                        *v = StandardNormal.sample(&mut rng);
                    }
                    black_box(&buf);
                }
                batch as u64
            });
            rng_rate[threads] = r;
            println!("{:<10} {:<6} {:>6} {:>7} {:>10.0} n/s {:>10}", "rng-only", "-", width, threads, r, "1.00");
            rows.push(Row { bench: "rng_only".into(), activation: "-".into(), width: width as u32, threads: threads as u32, value: r, unit: "nets/s", ratio_to_rng: 1.0 });
        }
        for act in [Activation::Erf, Activation::Relu, Activation::Gauss, Activation::Tanh] {
            let arch = ArchSpec::single(act.name(), act, 1.0, 1.0, inputs6());
            for threads in [1usize, 2] {
                let r = rate(secs, threads, &|| {
                    let mut s = NetSampler::new(&arch, width);
                    let mut rng = StreamKey { seed: 1, arch: act.name(), width, bag: 0, part: 0 }.stream();
                    black_box(s.sample_part(&mut rng, batch));
                    batch as u64
                });
                let ratio = r / rng_rate[threads];
                println!("{:<10} {:<6} {:>6} {:>7} {:>10.0} n/s {:>10.2}", "sample", act.name(), width, threads, r, ratio);
                rows.push(Row { bench: "sample".into(), activation: act.name().into(), width: width as u32, threads: threads as u32, value: r, unit: "nets/s", ratio_to_rng: ratio });
            }
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
        println!("{:<10} {:<6} {:>6} {:>7} {:>10.1} MB/s {:>8}", "moments", "-", "-", threads, r, "-");
        rows.push(Row { bench: "moments_reduce".into(), activation: "-".into(), width: 0, threads: threads as u32, value: r, unit: "MB/s", ratio_to_rng: f64::NAN });
    }
    let rss = peak_rss_mb();
    println!("peak RSS of this benchmark process: {rss:.0} MB");
    rows.push(Row { bench: "peak_rss".into(), activation: "-".into(), width: 0, threads: 0, value: rss, unit: "MB", ratio_to_rng: f64::NAN });

    let mut t = Table::default();
    t.utf8("bench", rows.iter().map(|r| r.bench.clone()).collect())
        .utf8("activation", rows.iter().map(|r| r.activation.clone()).collect())
        .u32("width", rows.iter().map(|r| r.width).collect())
        .u32("threads", rows.iter().map(|r| r.threads).collect())
        .f64("value", rows.iter().map(|r| r.value).collect())
        .utf8("unit", rows.iter().map(|r| r.unit.to_string()).collect())
        .f64("ratio_to_rng", rows.iter().map(|r| r.ratio_to_rng).collect());
    let footer = serde_json::json!({"stage": "bench", "version": nnqft_core::VERSION, "seconds_per_measurement": secs});
    t.write(&args.out, &footer)?;
    println!("-> {}", args.out.display());
    Ok(())
}
