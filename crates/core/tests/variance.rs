//! The exact estimator variance (docs/physics.md §10): the relu closed form
//! by an independent computation, the exact G against the section-4 formulas,
//! quadrature convergence, and Monte Carlo over explicit nets.

use nnqft_core::exact::{Accuracy, ExactTheory};
use nnqft_core::tuples::tuples;
use nnqft_core::variance::EstimatorVariance;
use nnqft_core::{Activation, ArchSpec, NetSampler};
use rand::SeedableRng;
use nnqft_testkit::relu_sum_moments;
use rayon::prelude::*;

fn arch(act: Activation, sw: f64, sb: f64, inputs: Vec<Vec<f64>>) -> ArchSpec {
    ArchSpec::single(act.name(), act, sw, sb, inputs)
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-300)
}

#[test]
fn relu_sb0_d1_variance_equals_closed_form() {
    let xs = [0.2, 0.4, 0.6, 0.8, 1.0, 1.2];
    let sw = 1.3;
    let a = arch(Activation::Relu, sw, 0.0, xs.iter().map(|&x| vec![x]).collect());
    let ev = EstimatorVariance::new(&a, &[2, 4, 6], Accuracy::default());
    for n in [2usize, 5, 20] {
        let ef = relu_sum_moments(n, 12);
        let w = ev.at_width(n);
        for order in [2usize, 4, 6] {
            let mut worst: f64 = 0.0;
            for t in tuples(6, order) {
                // f(x) = sw^2 x F
                let px2: f64 = t.iter().map(|&i| (sw * sw * xs[i]).powi(2)).product();
                let want = px2 * (ef[2 * order] - ef[order] * ef[order]);
                worst = worst.max(rel(w.var(&t), want));
            }
            assert!(worst < 1e-10, "N = {n}, order {order}: relative error {worst:e}");
        }
    }
}

#[test]
fn exact_g_matches_the_section4_formulas() {
    // The cumulant recursion gives G itself; its G - G_GP must equal section 4's kappa4 / kappa6 sums.
    let xs: Vec<Vec<f64>> = [-1.0, -0.3, 0.4, 1.0].iter().map(|&x| vec![x]).collect();
    let cases = [
        arch(Activation::Erf, 1.0, 1.0, xs.clone()),
        arch(Activation::Relu, 1.0, 0.5, xs.clone()),
        arch(Activation::Tanh, 1.2, 0.3, xs.clone()),
        arch(Activation::Gauss, 1.0, 1.0, xs.iter().map(|x| vec![x[0] * 0.3]).collect()),
    ];
    for a in &cases {
        let th = ExactTheory::new(a, Accuracy::default());
        let ev = EstimatorVariance::new(a, &[2, 4, 6], Accuracy::default());
        for n in [2usize, 7, 100] {
            let w = ev.at_width(n);
            for order in [2usize, 4, 6] {
                for t in tuples(4, order) {
                    let want = th.gp(&t) + th.delta(&t, n);
                    let got = w.g(&t);
                    assert!(rel(got, want) < 1e-6, "{} N={n} {t:?}: G {got} vs section 4 {want}", a.name);
                }
            }
        }
    }
}

#[test]
fn quadrature_of_the_order_12_moments_converges() {
    // Each case against a rule with 1/2 to 2/3 of the nodes per dimension (the budget
    // scale that gives it), and relu's sphere rule at 24 against 48 nodes per arc.
    let line = |x: &[f64]| -> Vec<Vec<f64>> { x.iter().map(|&x| vec![x]).collect() };
    let corners2 = vec![vec![-1.0, -1.0], vec![-1.0, 1.0], vec![1.0, -1.0], vec![1.0, 1.0]];
    let corners3 = vec![vec![-1.0, -1.0, -1.0], vec![1.0, 1.0, -1.0], vec![-1.0, 1.0, 1.0], vec![1.0, -1.0, 1.0]];
    let pts = [-1.0, -0.2, 0.6, 1.0];
    let base = Accuracy::default();
    let cases = [
        (arch(Activation::Erf, 1.0, 1.0, line(&pts)), Accuracy { budget_scale: 4.9e-3, ..base }, 1e-6),
        (arch(Activation::Erf, 1.0, 1.0, corners2), Accuracy { budget_scale: 0.125, ..base }, 1e-5),
        (arch(Activation::Erf, 1.0, 1.0, corners3), Accuracy { budget_scale: 0.16, ..base }, 1e-3),
        (arch(Activation::Tanh, 1.0, 0.0, line(&pts)), Accuracy { budget_scale: 4.32e-4, ..base }, 1e-12),
        (arch(Activation::Tanh, 1.0, 0.5, line(&pts)), Accuracy { budget_scale: 0.2, ..base }, 1e-12),
        (arch(Activation::Relu, 1.0, 0.5, line(&pts)), Accuracy { relu_nodes: 24, ..base }, 1e-12),
        (arch(Activation::Relu, 1.0, 0.5, vec![vec![0.5, 0.5], vec![0.5, 1.0], vec![1.0, -0.5], vec![-1.0, 1.0]]), Accuracy { relu_nodes: 24, ..base }, 1e-8),
    ];
    for (a, coarse_acc, tol) in &cases {
        let fine_acc = Accuracy { relu_nodes: 48, ..base };
        let start = std::time::Instant::now();
        let fine = EstimatorVariance::new(a, &[2, 4, 6], fine_acc);
        let secs = start.elapsed().as_secs_f64();
        let coarse = EstimatorVariance::new(a, &[2, 4, 6], *coarse_acc);
        let mut worst: f64 = 0.0;
        for n in [2usize, 20] {
            let (c, f) = (coarse.at_width(n), fine.at_width(n));
            for order in [2usize, 4, 6] {
                for t in tuples(4, order) {
                    worst = worst.max(rel(c.var(&t), f.var(&t)));
                }
            }
        }
        eprintln!(
            "{} d_in={} sb={}: Var X_t, coarse vs fine rule: max relative difference {worst:.1e} ({} unit moments, {secs:.2} s)",
            a.name,
            a.d_in,
            a.sigma_b,
            fine.n_moments()
        );
        assert!(worst < *tol, "{} d_in={}: {worst:e}", a.name, a.d_in);
    }
}

/// Per-tuple sums of x, x^2, x^3, x^4 over `nets` explicit nets.
fn sample_products(a: &ArchSpec, width: usize, nets: usize, ts: &[Vec<usize>]) -> Vec<[f64; 5]> {
    let chunks = 40;
    let per = nets / chunks;
    (0..chunks)
        .into_par_iter()
        .map(|c| {
            let mut rng = nnqft_core::normal::NormalStream::new(&mut rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(20261203 + c as u64));
            let mut s = NetSampler::new(a, width);
            let mut f = vec![0.0; a.k()];
            let mut acc = vec![[0.0f64; 5]; ts.len()];
            for _ in 0..per {
                s.sample_net(&mut rng, &mut f);
                for (t, acc) in ts.iter().zip(acc.iter_mut()) {
                    let x: f64 = t.iter().map(|&i| f[i]).product();
                    let x2 = x * x;
                    acc[0] += 1.0;
                    acc[1] += x;
                    acc[2] += x2;
                    acc[3] += x2 * x;
                    acc[4] += x2 * x2;
                }
            }
            acc
        })
        .reduce(
            || vec![[0.0; 5]; ts.len()],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    for i in 0..5 {
                        x[i] += y[i];
                    }
                }
                a
            },
        )
}

/// The sample variance of the products and its standard error
/// sqrt((mu4 - s^4) / n), from the raw sums.
fn variance_and_stderr(s: &[f64; 5]) -> (f64, f64) {
    let n = s[0];
    let m = s[1] / n;
    let (r2, r3, r4) = (s[2] / n, s[3] / n, s[4] / n);
    let var = (r2 - m * m) * n / (n - 1.0);
    let mu4 = r4 - 4.0 * m * r3 + 6.0 * m * m * r2 - 3.0 * m.powi(4);
    (var, ((mu4 - var * var) / n).sqrt())
}

#[test]
fn monte_carlo_variance_of_the_products_matches_exact() {
    // 3 inputs: 6 + 15 + 28 tuples of orders 2, 4, 6; 10^7 nets per case.
    let xs: Vec<Vec<f64>> = [-1.0, 0.2, 1.0].iter().map(|&x| vec![x]).collect();
    let nets = 10_000_000;
    let mut report = String::new();
    for a in [arch(Activation::Erf, 1.0, 1.0, xs.clone()), arch(Activation::Tanh, 1.0, 0.5, xs.clone())] {
        let ev = EstimatorVariance::new(&a, &[2, 4, 6], Accuracy::default());
        for width in [2usize, 5] {
            let ts: Vec<Vec<usize>> = [2, 4, 6].iter().flat_map(|&o| tuples(3, o)).collect();
            let sums = sample_products(&a, width, nets, &ts);
            let exact = ev.at_width(width);
            let gp = ev.at_width(1 << 40); // N -> infinity: the Gaussian process's variance (wrong at finite N)
            let (mut chi2, mut chi2_gp, mut worst) = (0.0, 0.0, 0.0f64);
            for (t, s) in ts.iter().zip(&sums) {
                let (v, se) = variance_and_stderr(s);
                let z = (v - exact.var(t)) / se;
                chi2 += z * z;
                chi2_gp += ((v - gp.var(t)) / se).powi(2);
                worst = worst.max(z.abs());
            }
            let n = ts.len() as f64;
            report.push_str(&format!(
                "{} N={width}: chi2/n vs exact Var X_t {:.2} (max |z| {worst:.2}), vs the GP's {:.1}\n",
                a.name,
                chi2 / n,
                chi2_gp / n
            ));
            // Tuples share the nets, and each se comes from the fourth moment of a product of up to
            // 6 outputs (heavy-tailed), so chi2/n has a long tail even when the law is exact:
            // measured over about 100 runs of these four cases at 10^7 nets (independent seeds,
            // sampler versions 4 and 5), it ranged 0.13-5.96 with max |z| up to 4.96 (an earlier
            // bound of 3 failed at 5-10 % per run). A loose bound on the agreement and a strict
            // one on the power: the GP's variance gives chi2/n >= 117 in the same runs.
            assert!(chi2 / n < 8.0 && worst < 6.0, "{report}");
            assert!(chi2_gp / n > 20.0, "no power against the GP's variance\n{report}");
        }
    }
    eprintln!("{report}");
}
