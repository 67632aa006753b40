//! The cutoff flow (lambda_bar against L) and the sigma_W flow (u4, u6).

use crate::*;
use anyhow::{anyhow, Result};
use nnqft_core::boxint::{quartic_integrals, Propagator, Templates};
use nnqft_core::tuples::tuples;
use nnqft_core::{Activation, ArchSpec};
use nnqft_deviations::{seed001_estimates, Deviations, Estimate};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// docs/physics.md §7's asymptotic cutoff slope.
pub(crate) fn cutoff_asymptotic(arch: &ArchSpec, prop: Propagator) -> f64 {
    let d = arch.d_in as f64;
    match (arch.activation, prop) {
        (Activation::Relu, _) if arch.sigma_b == 0.0 => -(d + 4.0),
        (Activation::Gauss, Propagator::Weight) => 0.0,
        (Activation::Gauss | Activation::Erf, Propagator::Full) => -d,
        _ => f64::NAN,
    }
}

/// lambda_bar(L) of one arch and propagator at every cutoff, for every width.
pub struct CutoffResult {
    pub flow: Vec<FlowRow>,
    pub slopes: Vec<SlopeRow>,
}

/// The cutoff flow of one arch and propagator (docs/physics.md §7).
pub fn cutoff_flow(arch: &ArchSpec, prop: Propagator, cutoffs: &[f64], devs: &[(usize, &Deviations)]) -> Result<CutoffResult> {
    let ts = tuples(arch.k(), 4);
    let integrals: Vec<(Vec<f64>, f64)> =
        cutoffs.par_iter().map(|&l| quartic_integrals(arch, l, prop)).collect::<Result<_, String>>().map_err(|e| anyhow!("{}: {e}", arch.name))?;
    let mut flow = Vec::new();
    let mut slopes = Vec::new();
    let d = arch.d_in as f64;
    for &(width, dev) in devs {
        let mut ests = Vec::new();
        for (li, &l) in cutoffs.iter().enumerate() {
            let (den, qerr) = &integrals[li];
            // lambda_m is undefined only where a denominator vanishes.
            let defined = den.iter().all(|&v| v != 0.0);
            let e = Estimate::of(dev, &[4], |dd| {
                if !defined {
                    return f64::NAN;
                }
                ts.iter().enumerate().map(|(i, _)| -dd[0][i] / (24.0 * den[i])).sum::<f64>() / ts.len() as f64
            });
            flow.push(FlowRow {
                arch: arch.name.clone(),
                d_in: arch.d_in,
                width,
                kind: "cutoff",
                propagator: prop.name(),
                scale: l,
                coupling: "lambda_bar",
                value: e.mean,
                stderr: e.stderr(),
                exact: e.exact,
                quad_rel_err: *qerr,
                n_unreliable: 0,
            });
            ests.push(e);
        }
        let base = SlopeRow {
            arch: arch.name.clone(),
            d_in: arch.d_in,
            width,
            kind: "cutoff",
            propagator: prop.name(),
            coupling: "lambda_bar",
            quantity: "slope",
            range: "all",
            slope: f64::NAN,
            stderr: f64::NAN,
            exact: f64::NAN,
            asymptotic: cutoff_asymptotic(arch, prop),
            seed_claim: if arch.activation == Activation::Relu { -(d + 4.0) } else { f64::NAN },
            n_points: 0,
            note: None,
        };
        // A denominator that changes sign between cutoffs crosses zero: lambda_m
        // has a pole there. Fit only above the last such cutoff.
        let last = integrals.len() - 1;
        let crossing = (0..last).rev().find(|&i| integrals[i].0.iter().zip(&integrals[last].0).any(|(a, b)| a.signum() != b.signum()));
        let start = crossing.map_or(0, |i| i + 1);
        let mut s = log_slope(&cutoffs[start..], &ests[start..]);
        if let Some(i) = crossing {
            let n = (0..ts.len()).filter(|&t| (0..=i).any(|j| integrals[j].0[t].signum() != integrals[last].0[t].signum())).count();
            let msg = format!(
                "int prod {} changes sign for {n} of {} tuples at L <= {}: lambda_bar passes through poles there and is fitted only for L > {}",
                prop.name(),
                ts.len(),
                cutoffs[i],
                cutoffs[i]
            );
            s.note = Some(s.note.map_or(msg.clone(), |n| format!("{msg}; {n}")));
        }
        slopes.extend(slope_rows(&base, &s));
        if arch.activation == Activation::Relu && arch.sigma_b == 0.0 {
            // The data-dependent part: N lambda_bar L^(d+4), constant in L.
            let amp: Vec<Estimate> = cutoffs
                .iter()
                .zip(&ests)
                .map(|(&l, e)| {
                    let f = width as f64 * l.powf(d + 4.0);
                    Estimate { mean: e.mean * f, bags: e.bags.iter().map(|b| b * f).collect(), exact: e.exact * f }
                })
                .collect();
            let n = amp.len() as f64;
            let mean = amp.iter().map(|a| a.mean).sum::<f64>() / n;
            let bags: Vec<f64> = (0..dev.bags()).map(|b| amp.iter().map(|a| a.bags[b]).sum::<f64>() / n).collect();
            let exact = amp.iter().map(|a| a.exact).sum::<f64>() / n;
            let closed = -12.5 / arch.sigma_w.powi(8);
            let note = if arch.d_in == 1 && arch.inputs.iter().all(|x| x[0] > 0.0) {
                format!("N lambda_bar L^{}; closed form (d = 1, x > 0): -12.5 / sw^8 = {closed}", d + 4.0)
            } else {
                format!("N lambda_bar L^{}, averaged over the cutoffs", d + 4.0)
            };
            slopes.push(SlopeRow {
                quantity: "amplitude",
                slope: mean,
                stderr: nnqft_stats::stderr(&bags),
                exact,
                asymptotic: f64::NAN,
                seed_claim: f64::NAN,
                n_points: amp.len(),
                note: Some(note),
                ..base.clone()
            });
        }
    }
    Ok(CutoffResult { flow, slopes })
}

/// The sigma_W flow of u4 and u6 (docs/physics.md §6) over `archs` (same
/// family, different sigma_W) at one width.
pub fn sigma_w_flow(archs: &[&ArchSpec], width: usize, devs: &[&Deviations], six: bool) -> Result<(Vec<FlowRow>, Vec<SlopeRow>)> {
    let scales: Vec<f64> = archs.iter().map(|a| a.sigma_w).collect();
    scale_flow("sigma_w", archs, &scales, width, devs, six)
}

/// The passive flow (docs/physics.md §14): u4 and u6 against the input scale
/// s of `archs` (the same ensemble at inputs `s x`, `scales[i]` for arch i)
/// at one width, and the check that scaling the inputs is scaling sigma_W:
/// u_n(s x; sw) = s^(n - d) u_n(x; s sw) for n = 4 (and 6 when measured), the
/// right side from the exact theory of the first arch's inputs with
/// sigma_W = s sw (a "quantity = identity" row per coupling).
pub fn input_scale_flow(archs: &[&ArchSpec], scales: &[f64], width: usize, devs: &[&Deviations], six: bool) -> Result<(Vec<FlowRow>, Vec<SlopeRow>)> {
    let (flow, mut slopes) = scale_flow("input_scale", archs, scales, width, devs, six)?;
    // the base inputs x: those of the arch at scale 1, or the first arch's divided by its scale
    let base = archs[0];
    let x: Vec<Vec<f64>> = base.inputs.iter().map(|p| p.iter().map(|v| v / scales[0]).collect()).collect();
    let d = base.d_in as f64;
    // the exact [u4, u6] of the unscaled inputs at sigma_W = s sw, per scale
    let at_scaled_sigma: Vec<[Option<f64>; 2]> = scales
        .par_iter()
        .map(|&s| {
            let mut v = base.clone();
            v.inputs = x.clone();
            v.sigma_w = base.sigma_w * s;
            v.mu_w = base.mu_w * s;
            exact_seed001(&v, width, six)
        })
        .collect::<Result<_>>()?;
    for (c, (coupling, n)) in [("u4", 4.0), ("u6", 6.0)].into_iter().enumerate() {
        let (mut max_z, mut max_rel, mut points): (f64, f64, usize) = (0.0, 0.0, 0);
        for (i, &s) in scales.iter().enumerate() {
            let (Some(exact), Some(row)) = (at_scaled_sigma[i][c], flow.iter().find(|r| r.coupling == coupling && r.arch == archs[i].name)) else { continue };
            let want = s.powf(n - d) * exact;
            max_z = max_z.max(((row.value - want) / row.stderr).abs());
            max_rel = max_rel.max(((row.exact - want) / want).abs());
            points += 1;
        }
        if points == 0 {
            continue;
        }
        slopes.push(SlopeRow {
            arch: base.name.clone(),
            d_in: base.d_in,
            width,
            kind: "input_scale",
            propagator: "K_W",
            coupling,
            quantity: "identity",
            range: "all",
            slope: max_z,
            stderr: f64::NAN,
            exact: max_rel,
            asymptotic: f64::NAN,
            seed_claim: f64::NAN,
            n_points: points,
            note: Some(format!(
                "{coupling}(s x; sw) = s^({n}-d) {coupling}(x; s sw): measured = the largest |measured {coupling} at inputs s x - s^({n}-d) exact {coupling} at sigma_W = s sw| / stderr over the scales ({}), exact = the largest relative difference of the two exact sides ({})",
                nnqft_cli::fmt_g(max_z),
                nnqft_cli::fmt_g(max_rel)
            )),
        });
    }
    Ok((flow, slopes))
}

/// The exact [u4, u6] (u6 only when `six`) of `arch` at `width` (docs/physics.md §6),
/// through the same estimator as the measurement, fed the exact deviations
/// of §4 (for an arch that is computed, not sampled).
fn exact_seed001(arch: &ArchSpec, width: usize, six: bool) -> Result<[Option<f64>; 2]> {
    let orders: &[usize] = if six { &[4, 6] } else { &[4] };
    let th = nnqft_core::exact::ExactTheory::for_orders(arch, orders, nnqft_core::exact::Accuracy::default());
    let mut dev = Deviations { per_bag: BTreeMap::new(), exact: BTreeMap::new(), unreliable: BTreeMap::new() };
    for &o in orders {
        let ex: Vec<f64> = tuples(arch.k(), o).iter().map(|t| th.delta(t, width)).collect();
        dev.per_bag.insert(o, vec![ex.clone()]);
        dev.exact.insert(o, ex);
    }
    let w = Templates::new(arch, f64::INFINITY, Propagator::Weight, six).map_err(|e| anyhow!("{e}"))?;
    let (e4, e6) = seed001_estimates(arch, &dev, &w);
    Ok([Some(e4.exact), e6.map(|e| e.exact)])
}

/// u4 and u6 over a family of archs at the given scales (sigma_W or input
/// scale), with their log-log slopes.
fn scale_flow(kind: &'static str, archs: &[&ArchSpec], scales: &[f64], width: usize, devs: &[&Deviations], six: bool) -> Result<(Vec<FlowRow>, Vec<SlopeRow>)> {
    let whole: Vec<Templates> = archs
        .par_iter()
        .map(|a| Templates::new(a, f64::INFINITY, Propagator::Weight, six))
        .collect::<Result<_, String>>()
        .map_err(|e| anyhow!("{e}"))?;
    let mut order: Vec<usize> = (0..archs.len()).collect();
    order.sort_by(|&a, &b| scales[a].total_cmp(&scales[b]));
    let mut flow = Vec::new();
    let mut series: BTreeMap<&'static str, Vec<Estimate>> = BTreeMap::new();
    let sorted: Vec<f64> = order.iter().map(|&i| scales[i]).collect();
    for &i in &order {
        let (e4, e6) = seed001_estimates(archs[i], devs[i], &whole[i]);
        for (name, e) in [("u4", Some(e4)), ("u6", e6)] {
            let Some(e) = e else { continue };
            flow.push(FlowRow {
                arch: archs[i].name.clone(),
                d_in: archs[i].d_in,
                width,
                kind,
                propagator: "K_W",
                scale: scales[i],
                coupling: name,
                value: e.mean,
                stderr: e.stderr(),
                exact: e.exact,
                quad_rel_err: whole[i].max_rel_err(),
                n_unreliable: 0,
            });
            series.entry(name).or_default().push(e);
        }
    }
    let d = archs[0].d_in as f64;
    let mut slopes = Vec::new();
    for (name, ests) in &series {
        let (claim, asym) = match (kind, *name) {
            ("sigma_w", "u4") => (4.0 - d, d - 4.0),
            ("sigma_w", _) => (6.0 - 2.0 * d, d - 6.0),
            // slope in s = (n - d) + slope in sigma_W at s sw (docs/physics.md §14): (n - d) + (d - n)
            _ => (f64::NAN, 0.0),
        };
        let base = SlopeRow {
            arch: archs[order[0]].name.clone(),
            d_in: archs[0].d_in,
            width,
            kind,
            propagator: "K_W",
            coupling: name,
            quantity: "slope",
            range: "all",
            slope: f64::NAN,
            stderr: f64::NAN,
            exact: f64::NAN,
            asymptotic: asym,
            seed_claim: claim,
            n_points: 0,
            note: None,
        };
        let mut fit = log_slope(&sorted, ests);
        // a log-slope through values that the bags do not resolve from zero is noise
        let unresolved: Vec<String> = sorted.iter().zip(ests).filter(|(_, e)| !(e.mean.abs() > 2.0 * e.stderr())).map(|(s, _)| nnqft_cli::fmt_g(*s)).collect();
        if !unresolved.is_empty() {
            let msg = format!("{name} is within 2 stderr of 0 at scale {}: the measured slope there is noise (more nets per bag resolve it)", unresolved.join(", "));
            fit.note = Some(fit.note.map_or(msg.clone(), |n| format!("{msg}; {n}")));
        }
        slopes.extend(slope_rows(&base, &fit));
    }
    Ok((flow, slopes))
}
