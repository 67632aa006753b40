//! Deep networks (docs/physics.md §8): the layer recursion against its closed
//! forms, and the deep sampler against the exact relu kurtosis.

use nnqft_core::deep::{DeepSampler, recursion, relu_exact_kurtosis};
use nnqft_core::rng::StreamKey;
use nnqft_core::{Activation, ArchSpec};

/// relu: <sigma^2>_K = K/2, <sigma^4>_K = 3 K^2 / 2, chi_par = C_W / 2, so
/// K^(l+1) = C_b + C_W K / 2 and V^(l+1) = (5/4) C_W^2 K^2 + (C_W/2)^2 V.
#[test]
fn relu_recursion_matches_closed_forms() {
    for (c_w, c_b, k1) in [(2.0, 0.0, 1.3), (1.5, 0.0, 2.0), (2.5, 0.3, 0.7), (2.0, 0.1, 1.0)] {
        let r = recursion(Activation::Relu, c_w, c_b, k1, 10);
        let (mut k, mut v) = (k1, 0.0);
        for p in &r {
            assert!((p.k - k).abs() <= 1e-13 * k, "K at l = {}: {} vs {k}", p.layer, p.k);
            assert!((p.v - v).abs() <= 1e-12 * v.max(1e-300), "V at l = {}: {} vs {v}", p.layer, p.v);
            assert!((p.chi_par - c_w / 2.0).abs() < 1e-13, "chi_par {}", p.chi_par);
            v = 1.25 * c_w * c_w * k * k + (c_w / 2.0).powi(2) * v;
            k = c_b + c_w * k / 2.0;
        }
    }
    // at criticality the leading-order kurtosis is 15 (l - 1) / n, the
    // first-order expansion of the exact 3 [(1 + 5/n)^(l-1) - 1]
    let r = recursion(Activation::Relu, 2.0, 0.0, 1.0, 8);
    for p in &r {
        assert!((p.kurtosis(32) - 15.0 * (p.layer - 1) as f64 / 32.0).abs() < 1e-12);
        let exact = relu_exact_kurtosis(100_000, p.layer);
        assert!((p.kurtosis(100_000) - exact).abs() < 1e-3 * exact.max(1e-12) + 1e-15);
    }
    assert_eq!(relu_exact_kurtosis(32, 2), 0.46875);
    assert_eq!(relu_exact_kurtosis(32, 1), 0.0);
}

/// tanh at criticality (C_W = 1, C_b = 0): K^(l) -> 1 / (2 l) and the
/// kurtosis -> 2 l / n (docs/physics.md §8); the approach is logarithmically
/// slow, so the test checks the ratio tends to 1 monotonically.
#[test]
fn tanh_critical_kurtosis_tends_to_2l_over_n() {
    let n = 50;
    let r = recursion(Activation::Tanh, 1.0, 0.0, 1.0, 20_000);
    let ratio = |l: usize| r[l - 1].kurtosis(n) / (2.0 * l as f64 / n as f64);
    let ks = |l: usize| r[l - 1].k * 2.0 * l as f64;
    let ls = [10, 100, 1000, 10_000, 20_000];
    let rs: Vec<f64> = ls.iter().map(|&l| ratio(l)).collect();
    let kk: Vec<f64> = ls.iter().map(|&l| ks(l)).collect();
    eprintln!("tanh n kurtosis / 2l at l = {ls:?}: {rs:?}; 2 l K: {kk:?}");
    for w in rs.windows(2) {
        assert!((w[1] - 1.0).abs() < (w[0] - 1.0).abs(), "ratio not approaching 1: {rs:?}");
    }
    assert!((rs[4] - 1.0).abs() < 2e-3, "kurtosis / (2l/n) at l = 20000: {}", rs[4]);
    assert!((kk[4] - 1.0).abs() < 2e-3, "2 l K at l = 20000: {}", kk[4]);
}

/// Quadrature is converged: a finer rule changes nothing for tanh and erf.
#[test]
fn recursion_is_converged_for_smooth_activations() {
    for act in [Activation::Tanh, Activation::Erf] {
        let r = recursion(act, 1.7, 0.2, 0.9, 6);
        // closed form for erf: <erf(z)^2>_K = (2/pi) asin(2K / (1 + 2K))
        if act == Activation::Erf {
            for w in r.windows(2) {
                let k = w[0].k;
                let want = 0.2 + 1.7 * (2.0 / std::f64::consts::PI) * (2.0 * k / (1.0 + 2.0 * k)).asin();
                assert!((w[1].k - want).abs() < 1e-13, "erf K: {} vs {want}", w[1].k);
            }
        }
        assert!(r.iter().all(|p| p.v.is_finite() && p.v >= 0.0));
    }
}

fn deep_arch(act: Activation, c_w: f64, c_b: f64, layers: usize, inputs: Vec<Vec<f64>>) -> ArchSpec {
    let mut a = ArchSpec::single("deep", act, c_w.sqrt(), c_b.sqrt(), inputs);
    a.hidden_layers = layers;
    a
}

/// Per-bag excess kurtosis of a column: mean and standard error over bags.
fn kurtosis_over_bags(values: &[Vec<f64>]) -> (f64, f64) {
    let ks: Vec<f64> = values
        .iter()
        .map(|v| {
            let n = v.len() as f64;
            let m2 = v.iter().map(|x| x * x).sum::<f64>() / n;
            let m4 = v.iter().map(|x| x.powi(4)).sum::<f64>() / n;
            m4 / (m2 * m2) - 3.0
        })
        .collect();
    let b = ks.len() as f64;
    let mean = ks.iter().sum::<f64>() / b;
    let var = ks.iter().map(|k| (k - mean).powi(2)).sum::<f64>() / (b - 1.0);
    (mean, (var / b).sqrt())
}

/// The deep sampler reproduces the exact relu kurtosis 3 [(1 + 5/n)^(l-1) - 1]
/// at every layer (n = 8, so the effect is large), and K^(l) = K^(1) at
/// criticality; 20 bags of 20000 nets, within 3.5 standard errors.
#[test]
fn deep_sampler_relu_kurtosis_is_exact() {
    let (n, layers) = (8, 4);
    let arch = deep_arch(Activation::Relu, 2.0, 0.0, layers, vec![vec![0.7], vec![-1.1]]);
    let mut s = DeepSampler::new(&arch, n);
    assert_eq!(s.normals_per_net(), (layers * n + 1) * 2);
    let bags: Vec<Vec<Vec<f32>>> = (0..20u32)
        .map(|bag| s.sample_part(&mut StreamKey { seed: 5, arch: "deep", width: n, bag, part: 0 }.stream(), 20_000))
        .collect();
    // file order: f0, f1, then l1_f0, l1_f1, l2_f0, ...
    for l in 1..=layers + 1 {
        for a in 0..2 {
            let col = if l == layers + 1 { a } else { 2 + (l - 1) * 2 + a };
            let vals: Vec<Vec<f64>> = bags.iter().map(|b| b[col].iter().map(|&x| x as f64).collect()).collect();
            let (k, se) = kurtosis_over_bags(&vals);
            let exact = relu_exact_kurtosis(n, l);
            eprintln!("l = {l} input {a}: kurtosis {k:.4} +- {se:.4}, exact {exact:.4}");
            assert!((k - exact).abs() < 3.5 * se + 1e-3, "l = {l}, input {a}: {k} +- {se} vs {exact}");
            let x2 = [0.49, 1.21][a] * 2.0;
            let m2: f64 = vals.iter().flatten().map(|x| x * x).sum::<f64>() / (20.0 * 20_000.0);
            assert!((m2 / x2 - 1.0).abs() < 0.03, "K at l = {l}: {m2} vs {x2}");
        }
    }
}

/// Cross-input structure: relu with C_b = 0 is positively homogeneous, so
/// at inputs x and 2x every layer's pre-activation doubles exactly (the
/// rank-deficient Gram matrix is handled); and the result is deterministic.
#[test]
fn deep_sampler_homogeneity_and_determinism() {
    let arch = deep_arch(Activation::Relu, 2.0, 0.0, 3, vec![vec![0.5], vec![1.0], vec![-0.3]]);
    let key = StreamKey { seed: 9, arch: "deep", width: 6, bag: 0, part: 0 };
    let a = DeepSampler::new(&arch, 6).sample_part(&mut key.stream(), 500);
    let b = DeepSampler::new(&arch, 6).sample_part(&mut key.stream(), 500);
    assert_eq!(a, b);
    for g in 0..4 {
        for (x, y) in a[3 * g].iter().zip(&a[3 * g + 1]) {
            assert!((y - 2.0 * x).abs() <= 1e-5 * (1.0 + x.abs()), "layer group {g}: {y} vs 2 x {x}");
        }
    }
}

/// Per-layer widths: the leading-order theory with equal widths is the
/// recursion's 3 V / (n K^2), and the sampler reproduces the exact relu
/// kurtosis 3 [prod_{m < l} (1 + 5 / n_m) - 1] with widths 6, 12, 4.
#[test]
fn per_layer_widths() {
    use nnqft_core::deep::{layer_theory, relu_exact_kurtosis_widths};
    let mut tanh = deep_arch(Activation::Tanh, 1.3, 0.1, 5, vec![vec![0.8]]);
    let rec = recursion(Activation::Tanh, 1.3, 0.1, 0.8 * 0.8 * 1.3 + 0.1, 5);
    for (t, r) in layer_theory(&tanh, &[0.8], 20).iter().zip(&rec) {
        assert!((t.kurtosis - r.kurtosis(20)).abs() < 1e-14, "{} vs {}", t.kurtosis, r.kurtosis(20));
        assert!(t.exact.is_nan());
    }
    tanh.layer_width_ratios = Some(vec![1.0, 2.0, 1.0, 1.0, 1.0]);
    let t = layer_theory(&tanh, &[0.8], 20);
    assert!(t[2].kurtosis < rec[2].kurtosis(20), "a wider layer 2 lowers the kurtosis of layer 3");

    let (n, layers) = (8, 3);
    let mut arch = deep_arch(Activation::Relu, 2.0, 0.0, layers, vec![vec![1.0]]);
    arch.layer_width_ratios = Some(vec![0.75, 1.5, 0.5]);
    let widths = arch.layer_widths(n);
    assert_eq!(widths, [6, 12, 4]);
    let mut s = DeepSampler::new(&arch, n);
    assert_eq!(s.normals_per_net(), 6 + 12 + 4 + 1);
    let bags: Vec<Vec<Vec<f32>>> = (0..20u32)
        .map(|bag| s.sample_part(&mut StreamKey { seed: 6, arch: "deep", width: n, bag, part: 0 }.stream(), 20_000))
        .collect();
    let th = layer_theory(&arch, &[1.0], n);
    for l in 1..=layers + 1 {
        let col = if l == layers + 1 { 0 } else { l };
        let vals: Vec<Vec<f64>> = bags.iter().map(|b| b[col].iter().map(|&x| x as f64).collect()).collect();
        let (k, se) = kurtosis_over_bags(&vals);
        let exact = relu_exact_kurtosis_widths(&widths, l);
        assert_eq!(th[l - 1].exact, exact);
        eprintln!("widths {widths:?} l = {l}: kurtosis {k:.4} +- {se:.4}, exact {exact:.4}");
        assert!((k - exact).abs() < 3.5 * se + 1e-3, "l = {l}: {k} +- {se} vs {exact}");
    }
}

/// The bits of every column (a deep gauss net's exp can overflow to inf
/// and then NaN, which `==` would call different from itself).
fn bits(cols: &[Vec<f32>]) -> Vec<Vec<u32>> {
    cols.iter().map(|c| c.iter().map(|v| v.to_bits()).collect()).collect()
}

/// The deep sampler's instruction-set paths give the same bits: every path
/// this CPU has against the generic one, every activation, widths that leave
/// remainders in the activation blocks, with means and two outputs.
#[test]
fn deep_sampler_same_bits_on_every_instruction_set() {
    use nnqft_core::sampler::Isa;
    let isas: Vec<Isa> = [Isa::Avx512, Isa::Avx2].into_iter().filter(|i| i.available()).collect();
    eprintln!("compared with the generic path: {isas:?}");
    for act in Activation::ALL {
        let mut a = deep_arch(act, 1.7, 0.2, 3, vec![vec![-1.0], vec![0.3], vec![2.0]]);
        let mut b = a.clone();
        (b.mu_w, b.mu_b, b.mu_w_out, b.d_out) = (0.4, -0.1, 0.3, 2);
        a.name = format!("{}-plain", act.name());
        for arch in [a, b] {
            for width in [1usize, 5, 17, 40] {
                let key = StreamKey { seed: 4, arch: &arch.name, width, bag: 0, part: 0 };
                let generic = DeepSampler::new(&arch, width).sample_part_with(Isa::Generic, &mut key.stream(), 200);
                for &isa in &isas {
                    let got = DeepSampler::new(&arch, width).sample_part_with(isa, &mut key.stream(), 200);
                    assert!(bits(&got) == bits(&generic), "{} N = {width}: {isa:?} differs from generic", arch.name);
                }
                assert!(bits(&DeepSampler::new(&arch, width).sample_part(&mut key.stream(), 200)) == bits(&generic));
                // and the comparison has power: another part's stream differs
                let other = DeepSampler::new(&arch, width).sample_part_with(Isa::Generic, &mut StreamKey { part: 1, ..key }.stream(), 200);
                assert!(bits(&other) != bits(&generic));
            }
        }
    }
}
