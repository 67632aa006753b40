//! What a run will cost and whether it will resolve anything, before it
//! starts (`nnqft-sample --plan`, docs/physics.md §10): disk, memory and
//! time from a short calibration of the sampler on this machine, and per
//! (arch, width, order) the exact deviation against the exact background
//! at the configured nets per bag.

use nnqft_cli::human;
use nnqft_core::deep::DeepSampler;
use nnqft_core::exact::{Accuracy, ExactTheory};
use nnqft_core::tuples::tuples;
use nnqft_core::variance::EstimatorVariance;
use nnqft_core::{ArchSpec, NetSampler, Pipeline};
use nnqft_store::plan::WorkUnit;
use nnqft_store::samples::{PartMeta, meta_column_names};
use rand::SeedableRng;
use rayon::prelude::*;
use std::fmt::Write;
use std::time::{Duration, Instant};

/// A deviation is resolved when its mean |exact m_n| is at least this many
/// times the mean exact background.
pub const RESOLVED_RATIO: f64 = 3.0;

/// How long each (arch, width) of the calibration samples for.
const CALIBRATION: Duration = Duration::from_millis(20);

fn columns(m: &PartMeta) -> u64 {
    meta_column_names(m).len() as u64
}

/// Bytes the parts of `todo` take on disk (f32 columns and a footer each).
pub fn disk_bytes(todo: &[(WorkUnit, PartMeta)]) -> u64 {
    todo.iter().map(|(_, m)| m.nets * columns(m) * 4 + 8192).sum()
}

/// Peak memory of one worker thread: the normals of one net, and the largest
/// part's columns four times: the part being drawn, one waiting in the
/// writers' queue, and one being written (f32 + the writer's buffers); there
/// are as many writers and queue places as sampling threads.
pub fn memory_per_thread(p: &Pipeline, todo: &[(WorkUnit, PartMeta)]) -> u64 {
    todo.iter()
        .map(|(u, m)| {
            let a = &p.sample.arch[u.arch];
            (((a.d_in + 2) * u.width + 1) * 8) as u64 + 4 * m.nets * columns(m) * 4
        })
        .max()
        .unwrap_or(0)
}

/// Nets per second of one thread for `arch` at `width`, measured by
/// sampling for about [`CALIBRATION`] (doubling batches, the first discarded
/// as warm-up).
pub fn nets_per_second(arch: &ArchSpec, width: usize) -> f64 {
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(0x5eed);
    // Built once, outside the clock: a sampler's tables (erf's) cost milliseconds.
    enum S {
        Deep(DeepSampler),
        Single(NetSampler),
    }
    let mut s = if arch.hidden_layers > 1 { S::Deep(DeepSampler::new(arch, width)) } else { S::Single(NetSampler::new(arch, width)) };
    let mut sample = |n: usize| {
        let start = Instant::now();
        let cols = match &mut s {
            S::Deep(d) => d.sample_part(&mut rng, n),
            S::Single(d) => d.sample_part(&mut rng, n),
        };
        std::hint::black_box(cols);
        start.elapsed()
    };
    sample(16);
    let mut n = 64usize;
    loop {
        let t = sample(n);
        if t >= CALIBRATION || n >= 1 << 22 {
            return n as f64 / t.as_secs_f64().max(1e-9);
        }
        n *= 2;
    }
}

/// Seconds the pending units take on `threads` threads, from one
/// calibration per (arch, width) (sampling only, perfect scaling assumed).
pub fn estimate_seconds(p: &Pipeline, todo: &[(WorkUnit, PartMeta)], threads: usize) -> f64 {
    let mut nets: std::collections::BTreeMap<(usize, usize), u64> = Default::default();
    for (u, m) in todo {
        *nets.entry((u.arch, u.width)).or_default() += m.nets;
    }
    let cpu: f64 = nets.iter().map(|(&(a, w), &n)| n as f64 / nets_per_second(&p.sample.arch[a], w)).sum();
    cpu / threads.max(1) as f64
}

/// The cost lines (parts, disk, memory, time) of a run of `todo`.
pub fn cost_lines(p: &Pipeline, todo: &[(WorkUnit, PartMeta)], done: usize, free: Option<u64>, threads: usize) -> String {
    let mut s = String::new();
    let nets: u64 = todo.iter().map(|(_, m)| m.nets).sum();
    let bytes = disk_bytes(todo);
    let per_thread = memory_per_thread(p, todo);
    let _ = writeln!(s, "  work:   {} parts to write ({} nets), {done} already done", todo.len(), human(nets as f64));
    let free = free.map(|f| format!(" ({}B free)", human(f as f64))).unwrap_or_default();
    let _ = writeln!(s, "  disk:   about {}B{free}", human(bytes as f64));
    let _ = writeln!(s, "  memory: about {}B ({}B per thread x {threads} threads)", human((per_thread * threads as u64) as f64), human(per_thread as f64));
    if !todo.is_empty() {
        let start = Instant::now();
        let secs = estimate_seconds(p, todo, threads);
        let _ = writeln!(
            s,
            "  time:   about {} on {threads} threads (sampling rates measured here for {:.1} s; writing adds a little)",
            duration(secs),
            start.elapsed().as_secs_f64()
        );
    }
    s
}

/// `1 h 23 min`, `4 min 10 s`, `12 s`.
pub fn duration(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{:.0} s", secs.max(1.0)),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// One (arch, width, order) of the plan.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanRow {
    pub arch: String,
    pub width: usize,
    pub order: usize,
    /// Mean over tuples of |exact G - G_GP| / |G_GP|.
    pub mean_abs_exact_m: f64,
    /// Mean over tuples of the exact background at the configured nets per bag.
    pub exact_background: f64,
    /// Whether mean_abs_exact_m >= RESOLVED_RATIO exact_background.
    pub resolved: bool,
    /// Nets per bag at which it would be (None for order 2: m_2 is exactly 0).
    pub nets_to_resolve: Option<f64>,
}

/// The resolution rows of every single-hidden-layer arch (deep archs have no exact variance).
pub fn resolution(p: &Pipeline) -> Vec<PlanRow> {
    let nets = p.sample.nets_per_bag as f64;
    let shallow: Vec<&ArchSpec> = p.sample.arch.iter().filter(|a| a.hidden_layers == 1).collect();
    shallow
        .par_iter()
        .flat_map_iter(|a| {
            let th = ExactTheory::for_orders(a, &p.moments.orders, Accuracy::default());
            let ev = EstimatorVariance::new(a, &p.moments.orders, Accuracy::default());
            let mut rows = Vec::new();
            for &w in p.widths_of(a).iter() {
                let at = ev.at_width(w);
                for &order in &p.moments.orders {
                    let ts = tuples(a.k(), order);
                    let n = ts.len() as f64;
                    let (mut m, mut bg) = (0.0, 0.0);
                    for t in &ts {
                        let gp = th.gp(t);
                        m += (th.delta(t, w) / gp).abs();
                        bg += (at.var(t) / nets).sqrt() / gp.abs();
                    }
                    let (m, bg) = (m / n, bg / n);
                    let nets_to_resolve = (order > 2).then(|| nets * (RESOLVED_RATIO * bg / m).powi(2));
                    rows.push(PlanRow {
                        arch: a.name.clone(),
                        width: w,
                        order,
                        mean_abs_exact_m: m,
                        exact_background: bg,
                        resolved: order > 2 && m >= RESOLVED_RATIO * bg,
                        nets_to_resolve,
                    });
                }
            }
            rows
        })
        .collect()
}

/// The resolution table as printed by `--plan`.
pub fn format_resolution(p: &Pipeline, rows: &[PlanRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  resolution at {} nets per bag (exact theory, docs/physics.md §10; resolved = mean |exact m| >= {RESOLVED_RATIO} x exact background):",
        human(p.sample.nets_per_bag as f64)
    );
    let _ = writeln!(s, "  {:<14} {:>6} {:>5} {:>13} {:>13} {:>9}  {}", "arch", "width", "order", "mean|exact m|", "exact bg", "resolved", "nets per bag to resolve");
    for r in rows {
        let (verdict, need) = match r.nets_to_resolve {
            None => ("-", "m_2 = 0 exactly: nothing to resolve".to_string()),
            Some(_) if r.resolved => ("yes", String::new()),
            Some(n) => ("NO", format!("{n:.1e} ({:.0}x the configured)", n / p.sample.nets_per_bag as f64)),
        };
        let _ = writeln!(
            s,
            "  {:<14} {:>6} {:>5} {:>13.3e} {:>13.3e} {:>9}  {}",
            r.arch, r.width, r.order, r.mean_abs_exact_m, r.exact_background, verdict, need
        );
    }
    for a in p.deep_archs() {
        let _ = writeln!(s, "  {}: deep net (hidden_layers = {}): no exact variance; the moments stage flags heavy tails from the data", a.name, a.hidden_layers);
    }
    s
}
