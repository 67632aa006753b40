//! Parameter means and several outputs (docs/physics.md §12): the unit
//! expectations with shifted pre-activations against closed forms and an
//! independent 2-d rule, and both samplers against the exact one- and
//! two-point functions and against explicit-weight networks.

use nnqft_core::deep::DeepSampler;
use nnqft_core::means::pair_mean;
use nnqft_core::quad::NormalRule;
use nnqft_core::normal::NormalStream;
use nnqft_core::rng::StreamKey;
use nnqft_core::{Activation, ArchSpec, NetSampler};
use rand_distr::{Distribution, StandardNormal};

fn norm_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// With zero means, `sw^2 E[h h]` is the closed-form (or reference-rule) kernel.
#[test]
fn pair_mean_at_zero_means_is_the_kernel() {
    let pts = [(vec![0.3], vec![0.3]), (vec![-1.0], vec![0.7]), (vec![2.0], vec![1.5]), (vec![0.0], vec![1.0])];
    for act in [Activation::Relu, Activation::Erf, Activation::Tanh, Activation::Gauss] {
        for sb in [0.0, 0.8] {
            let a = ArchSpec::single("t", act, 1.3, sb, vec![vec![0.0]]);
            for (x, y) in &pts {
                let want = a.kernel_w(x, y);
                let got = a.sigma_w * a.sigma_w * a.unit_pair_at(x, y);
                // tanh's reference is pairexp (within ~1e-11 of its panel rule)
                let tol = if act == Activation::Tanh { 3e-11 } else { 1e-12 };
                assert!((got - want).abs() < tol * want.abs().max(1.0), "{act:?} sb {sb} {x:?} {y:?}: {got} vs {want}");
            }
        }
    }
}

/// With means: relu on the diagonal has the closed form
/// `E relu(z)^2 = (m^2 + s^2) Phi(m/s) + m s phi(m/s)`; off the diagonal every
/// activation is checked against the reference panel rule (72 x 12 nodes per
/// axis) with the means added inside the integrand.
#[test]
fn pair_mean_with_means_matches_independent_rules() {
    for (m, s) in [(0.7, 1.1), (-1.3, 0.6), (2.5, 0.4), (0.0, 2.0)] {
        let t = m / s;
        let want = (m * m + s * s) * norm_cdf(t) + m * s * (-0.5 * t * t).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let got = pair_mean(Activation::Relu, m, m, s * s, s * s, s * s);
        assert!((got - want).abs() < 1e-13 * want, "relu diag m {m} s {s}: {got} vs {want}");
    }
    let rule = NormalRule::panels(9.0, 72, 12);
    let cases = [(0.4, -0.9, 1.2, 0.5, 0.8), (-1.5, 0.3, 0.6, -0.2, 2.0), (1.0, 1.0, 1.0, 0.99, 1.0), (0.2, -2.0, 3.0, 1.0, 0.5)];
    for act in [Activation::Relu, Activation::Erf, Activation::Tanh, Activation::Gauss] {
        let raw = |z: f64| match act {
            Activation::Relu => z.max(0.0),
            Activation::Erf => libm::erf(z),
            Activation::Tanh => z.tanh(),
            Activation::Gauss => z.exp(),
        };
        for &(m1, m2, s11, s12, s22) in &cases {
            let want = rule.expect2(s11, s12, s22, |a, b| raw(a + m1) * raw(b + m2));
            let got = pair_mean(act, m1, m2, s11, s12, s22);
            // the panel rule is exact to ~1e-12 for smooth integrands; relu's kinks cost it ~1e-6
            let tol = if act == Activation::Relu { 2e-6 } else { 1e-10 } * want.abs().max(1.0);
            assert!((got - want).abs() < tol, "{act:?} {:?}: {got} vs {want}", (m1, m2, s11, s12, s22));
        }
    }
}

/// Means and d_out at their defaults serialise as before, so every existing
/// config hash (and sample part) stays valid.
#[test]
fn default_means_and_outputs_do_not_change_the_arch_json() {
    let a = ArchSpec::single("t", Activation::Erf, 1.0, 1.0, vec![vec![1.0]]);
    let json = serde_json::to_string(&a).unwrap();
    for key in ["mu_w", "mu_b", "d_out"] {
        assert!(!json.contains(key), "{json}");
    }
    let mut b = a.clone();
    b.mu_w_out = 0.5;
    b.d_out = 3;
    let json = serde_json::to_string(&b).unwrap();
    assert!(json.contains("\"mu_w_out\":0.5") && json.contains("\"d_out\":3"), "{json}");
}

/// Per-bag means of `stats(net outputs)`: `draw(rng, normals, out)` draws
/// one net, from the sampler's normals or (explicit-weight nets, an
/// independent check) from rand_distr's on `rng`.
fn bag_means(
    key: &str,
    bags: u32,
    nets: usize,
    width: usize,
    mut draw: impl FnMut(&mut nnqft_core::rng::Stream, &mut NormalStream, &mut [f64]),
    per_net: usize,
    stats: &dyn Fn(&[f64]) -> Vec<f64>,
) -> Vec<Vec<f64>> {
    (0..bags)
        .map(|bag| {
            let mut rng = StreamKey { seed: 11, arch: key, width, bag, part: 0 }.stream();
            let mut normals = NormalStream::new(&mut StreamKey { seed: 11, arch: key, width, bag, part: 1 }.stream());
            let mut out = vec![0.0; per_net];
            let mut acc: Vec<f64> = Vec::new();
            for _ in 0..nets {
                draw(&mut rng, &mut normals, &mut out);
                let s = stats(&out);
                if acc.is_empty() {
                    acc = vec![0.0; s.len()];
                }
                acc.iter_mut().zip(&s).for_each(|(a, v)| *a += v);
            }
            acc.iter().map(|v| v / nets as f64).collect()
        })
        .collect()
}

/// Mean over bags and its standard error, per statistic.
fn mean_se(bags: &[Vec<f64>]) -> Vec<(f64, f64)> {
    let b = bags.len() as f64;
    (0..bags[0].len())
        .map(|i| {
            let m = bags.iter().map(|v| v[i]).sum::<f64>() / b;
            let var = bags.iter().map(|v| (v[i] - m).powi(2)).sum::<f64>() / (b - 1.0);
            (m, (var / b).sqrt())
        })
        .collect()
}

/// E f_c, then E f_c f_c' (c <= c') over a net's values.
fn moments12(out: &[f64]) -> Vec<f64> {
    let mut v = out.to_vec();
    for i in 0..out.len() {
        for j in i..out.len() {
            v.push(out[i] * out[j]);
        }
    }
    v
}

/// Exact E f_c and E f_c f_c' for output-major values `c = o k + a`.
fn exact12(a: &ArchSpec, n: Option<usize>) -> Vec<f64> {
    let k = a.k();
    let c = k * a.d_out;
    let mean = |c: usize| a.mean_fn(&a.inputs[c % k]);
    let mut v: Vec<f64> = (0..c).map(mean).collect();
    for i in 0..c {
        for j in i..c {
            let cov = a.covariance(&a.inputs[i % k], &a.inputs[j % k], n, i / k == j / k);
            v.push(cov + mean(i) * mean(j));
        }
    }
    v
}

/// max |z| and chi2 of measured (mean, se) against `want`.
fn compare(got: &[(f64, f64)], want: &[f64]) -> (f64, f64) {
    let z: Vec<f64> = got.iter().zip(want).map(|(&(m, se), w)| (m - w) / se).collect();
    (z.iter().fold(0.0f64, |a, v| a.max(v.abs())), z.iter().map(|v| v * v).sum())
}

/// The single-layer sampler with hidden and output means and three outputs
/// reproduces the exact finite-N one- and two-point functions (each value
/// within 4 se; 18 + 171 correlated values) including the `(mu_w_out^2 / N)
/// Cov(h)` term, which also correlates different outputs. Power: the GP-limit
/// covariance (without that term) is rejected by more than 10 se.
#[test]
fn single_layer_sampler_with_means_matches_exact_moments() {
    let n = 4;
    for act in [Activation::Erf, Activation::Relu, Activation::Tanh] {
        let mut a = ArchSpec::single("m", act, 1.2, 0.4, vec![vec![0.5, -1.0], vec![1.5, 0.3]]);
        (a.mu_w, a.mu_b, a.mu_w_out, a.mu_b_out, a.d_out) = (0.7, -0.3, 2.0, 0.25, 3);
        let mut s = NetSampler::new(&a, n);
        let per = s.outputs_per_net();
        let bags = bag_means("m", 20, 20_000, n, |_, z, out| s.sample_net(z, out), per, &moments12);
        let got = mean_se(&bags);
        let want = exact12(&a, Some(n));
        let (zmax, _) = compare(&got, &want);
        assert!(zmax < 4.0, "{act:?}: max |z| {zmax:.2} against the exact finite-N moments");
        let (zgp, _) = compare(&got, &exact12(&a, None));
        eprintln!("{act:?}: max |z| {zmax:.2} (exact), {zgp:.1} (GP)");
        assert!(zgp > 10.0, "{act:?}: the GP covariance should be rejected (max |z| {zgp:.2})");
    }
}

fn normal(rng: &mut nnqft_core::rng::Stream) -> f64 {
    StandardNormal.sample(rng)
}

/// An explicit-weight deep net with means: every weight matrix drawn.
fn explicit_deep(a: &ArchSpec, n: usize, rng: &mut nnqft_core::rng::Stream, out: &mut [f64], wrong_scale: bool) {
    let k = a.k();
    let act = |z: f64| match a.activation {
        Activation::Relu => z.max(0.0),
        Activation::Tanh => z.tanh(),
        Activation::Erf => libm::erf(z),
        Activation::Gauss => unreachable!(),
    };
    let widths = a.layer_widths(n);
    let mut h: Vec<Vec<f64>> = a.inputs.clone();
    let mut fan_in = a.d_in;
    for l in 0..=a.hidden_layers {
        let units = if l == a.hidden_layers { a.d_out } else { widths[l] };
        let (mu_w, mu_b) = if l == a.hidden_layers { (a.mu_w_out, a.mu_b_out) } else { (a.mu_w, a.mu_b) };
        let mean_w = if wrong_scale { mu_w } else { mu_w / fan_in as f64 };
        let mut z = vec![vec![0.0; units]; k];
        for i in 0..units {
            let w: Vec<f64> = (0..fan_in).map(|_| mean_w + a.sigma_w / (fan_in as f64).sqrt() * normal(rng)).collect();
            let b = mu_b + a.sigma_b * normal(rng);
            for x in 0..k {
                z[x][i] = b + w.iter().zip(&h[x]).map(|(w, h)| w * h).sum::<f64>();
            }
        }
        if l == a.hidden_layers {
            for o in 0..a.d_out {
                for x in 0..k {
                    out[(a.hidden_layers + o) * k + x] = z[x][o];
                }
            }
        } else {
            for x in 0..k {
                out[l * k + x] = z[x][0];
            }
            h = z.iter().map(|r| r.iter().map(|&v| act(v)).collect()).collect();
            fan_in = units;
        }
    }
}

/// The deep sampler (layers from their conditional laws, with means) against
/// explicit-weight networks: the first and second moments of every recorded
/// value (pre-activations of unit 0 at each layer and both outputs) agree
/// within 4 combined se; explicit nets whose weight means lack the 1 / fan-in
/// are rejected.
#[test]
fn deep_sampler_with_means_matches_explicit_weights() {
    let n = 3;
    for act in [Activation::Relu, Activation::Tanh] {
        let mut a = ArchSpec::single("d", act, 1.1, 0.3, vec![vec![0.8], vec![-0.4]]);
        (a.hidden_layers, a.mu_w, a.mu_b, a.mu_w_out, a.mu_b_out, a.d_out) = (2, 1.5, 0.2, -1.0, 0.3, 2);
        let mut s = DeepSampler::new(&a, n);
        let per = s.outputs_per_net();
        let deep = mean_se(&bag_means("d", 20, 20_000, n, |_, z, out| s.sample_net(z, out), per, &moments12));
        let explicit = |wrong| mean_se(&bag_means("e", 20, 20_000, n, |r, _, out| explicit_deep(&a, n, r, out, wrong), per, &moments12));
        let z = |other: &[(f64, f64)]| {
            deep.iter().zip(other).map(|(&(m1, s1), &(m2, s2))| ((m1 - m2) / (s1 * s1 + s2 * s2).sqrt()).abs()).fold(0.0f64, f64::max)
        };
        let (right, wrong) = (z(&explicit(false)), z(&explicit(true)));
        eprintln!("{act:?}: max |z| {right:.2} (explicit), {wrong:.1} (unscaled means)");
        assert!(right < 4.0, "{act:?}: max |z| {right:.2} against explicit weights");
        assert!(wrong > 8.0, "{act:?}: unscaled weight means should be rejected (max |z| {wrong:.2})");
    }
}

/// With centred parameters the cumulant construction of `MeanTheory`
/// reproduces `ExactTheory` (orders 4 and 6, every tuple, four activations)
/// to 1e-12 relative, gives K at order 2 and 0 at odd orders.
#[test]
fn mean_theory_at_zero_means_is_the_exact_theory() {
    use nnqft_core::exact::{Accuracy, ExactTheory};
    use nnqft_core::means::MeanTheory;
    use nnqft_core::tuples::tuples;
    for (act, sb) in [(Activation::Erf, 1.0), (Activation::Relu, 0.0), (Activation::Relu, 0.5), (Activation::Tanh, 0.3), (Activation::Gauss, 1.0)] {
        let a = ArchSpec::single("z", act, 1.1, sb, vec![vec![-0.5], vec![0.3], vec![0.9]]);
        let ex = ExactTheory::for_orders(&a, &[2, 4, 6], Accuracy::default());
        let mt = MeanTheory::new(&a, &[6], Accuracy::default());
        for n in [2, 7] {
            for order in 1..=6 {
                for t in tuples(3, order) {
                    let (got, gp) = (mt.moment(&t, n), mt.gp(&t));
                    if order % 2 == 1 {
                        assert!(got.abs() < 1e-14 && gp == 0.0, "{act:?} odd {t:?}: {got}, {gp}");
                        continue;
                    }
                    let want = ex.gp(&t) + ex.delta(&t, n);
                    assert!((got - want).abs() < 1e-12 * want.abs() + 1e-14, "{act:?} sb {sb} n {n} {t:?}: {got} vs {want}");
                    assert!((gp - ex.gp(&t)).abs() < 1e-12 * ex.gp(&t).abs() + 1e-14, "GP {t:?}");
                }
            }
        }
    }
}

/// With hidden and output means (erf, relu, tanh; N = 3, two inputs) every
/// moment of orders 1-4 (14 values, odd ones included) is within 4 se of
/// `MeanTheory` over 20 bags of 25000 nets; the GP is rejected by > 5 se.
#[test]
fn mean_theory_matches_monte_carlo_with_means() {
    use nnqft_core::exact::Accuracy;
    use nnqft_core::means::MeanTheory;
    use nnqft_core::tuples::tuples;
    let n = 3;
    for act in [Activation::Erf, Activation::Relu, Activation::Tanh] {
        let mut a = ArchSpec::single("mt", act, 1.3, 0.4, vec![vec![0.6], vec![-1.1]]);
        (a.mu_w, a.mu_b, a.mu_w_out, a.mu_b_out) = (0.8, -0.4, 1.5, 0.2);
        let th = MeanTheory::new(&a, &[4], Accuracy::default());
        let ts: Vec<Vec<usize>> = (1..=4).flat_map(|o| tuples(2, o)).collect();
        let mut s = NetSampler::new(&a, n);
        let per = s.outputs_per_net();
        let stats = |out: &[f64]| ts.iter().map(|t| t.iter().map(|&i| out[i]).product()).collect();
        let got = mean_se(&bag_means("mt", 20, 25_000, n, |_, z, out| s.sample_net(z, out), per, &stats));
        let exact: Vec<f64> = ts.iter().map(|t| th.moment(t, n)).collect();
        let gp: Vec<f64> = ts.iter().map(|t| th.gp(t)).collect();
        let (zmax, _) = compare(&got, &exact);
        let (zgp, _) = compare(&got, &gp);
        eprintln!("{act:?}: MeanTheory max |z| {zmax:.2}, GP {zgp:.1}");
        assert!(zmax < 4.0, "{act:?}: max |z| {zmax:.2}");
        assert!(zgp > 5.0, "{act:?}: GP max |z| {zgp:.2}");
    }
}

/// Several outputs: every moment of orders 1-4 over the 6 variables
/// (output o of 3, input a of 2; 209 values, mixed outputs and odd orders
/// included) is within 5.2 se of `MeanTheory::moment_outputs`, with output
/// means (which correlate the outputs) and without them (where mixed
/// correlators follow the pairing tensors). With 20 bags each z is Student-t
/// with 19 dof, and the largest of 209 exceeds 4 in about one sample of ten
/// (measured over 24 seeds x 3 cases: 8 of 72 runs with the sampler's
/// generator, 7 of 72 with rand_distr's); 5.2 is the t_19 bound at a 1 % family-wise rate
/// (Bonferroni). Power: treating the outputs as independent (the product of
/// single-output moments over distinct outputs) is rejected by more than
/// 8 se with the means.
#[test]
fn output_index_moments_match_monte_carlo() {
    use nnqft_core::exact::Accuracy;
    use nnqft_core::means::MeanTheory;
    use nnqft_core::tuples::tuples;
    let n = 3;
    for (act, means) in [(Activation::Erf, true), (Activation::Relu, true), (Activation::Erf, false)] {
        let mut a = ArchSpec::single("mo", act, 1.1, 0.5, vec![vec![0.6], vec![-0.9]]);
        a.d_out = 3;
        if means {
            (a.mu_w, a.mu_b, a.mu_w_out, a.mu_b_out) = (0.5, 0.1, 1.5, -0.3);
        }
        let th = MeanTheory::new(&a, &[4], Accuracy::default());
        let k = a.k();
        // variable v = o k + a is the sampler's output slot
        let ts: Vec<Vec<usize>> = (1..=4).flat_map(|o| tuples(3 * k, o)).collect();
        let mut s = NetSampler::new(&a, n);
        let per = s.outputs_per_net();
        let stats = |out: &[f64]| ts.iter().map(|t| t.iter().map(|&i| out[i]).product()).collect();
        let got = mean_se(&bag_means("mo", 20, 25_000, n, |_, z, out| s.sample_net(z, out), per, &stats));
        let split = |t: &[usize]| -> (Vec<usize>, Vec<usize>) { (t.iter().map(|v| v % k).collect(), t.iter().map(|v| v / k).collect()) };
        let exact: Vec<f64> = ts.iter().map(|t| { let (i, o) = split(t); th.moment_outputs(&i, &o, n) }).collect();
        let (zmax, _) = compare(&got, &exact);
        let independent: Vec<f64> = ts
            .iter()
            .map(|t| (0..3).map(|o| { let ins: Vec<usize> = t.iter().filter(|v| *v / k == o).map(|v| v % k).collect(); th.moment(&ins, n) }).product())
            .collect();
        let (zind, _) = compare(&got, &independent);
        eprintln!("{act:?} means {means}: max |z| {zmax:.2} (exact), {zind:.1} (independent outputs)");
        assert!(zmax < 5.2, "{act:?} means {means}: max |z| {zmax:.2}");
        if means {
            assert!(zind > 8.0, "{act:?}: independent outputs should be rejected (max |z| {zind:.2})");
        }
    }
}
