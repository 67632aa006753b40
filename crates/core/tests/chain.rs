//! The exact single-input chain of deep nets (docs/physics.md §11) against the
//! relu closed forms, against itself at twice the atoms, and the leading-order
//! recursions (kurtosis, c6, c8, the NLO kernel) against the chain as n grows.

use nnqft_core::chain::{ChainLayer, chain, default_atoms, relu_closed_form, relu_r_moment};
use nnqft_core::deep::layer_theory;
use nnqft_core::{Activation, ArchSpec};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

fn assert_layers_close(got: &[ChainLayer], want: &[ChainLayer], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        for (name, a, b) in [("mu2", g.mu2, w.mu2), ("kurtosis", g.kurtosis, w.kurtosis), ("c6", g.c6, w.c6), ("c8", g.c8, w.c8)] {
            assert!(close(a, b, tol), "{what} l = {}: {name} {a:.15e} vs {b:.15e}", g.layer);
        }
        for (m, (a, b)) in g.g_moments.iter().zip(&w.g_moments).enumerate() {
            assert!((a - b).abs() <= tol * b.abs(), "{what} l = {}: E G^{} {a:.15e} vs {b:.15e}", g.layer, m + 1);
        }
    }
}

#[test]
fn relu_chain_equals_the_closed_form() {
    assert_eq!(relu_r_moment(2.0, 32, 3), 1.51171875);
    assert_eq!(relu_r_moment(2.0, 4, 4), 32.90625);
    for n in [2usize, 5, 16, 100] {
        assert!(close(relu_r_moment(2.0, n, 2), 1.0 + 5.0 / n as f64, 1e-14));
        let nf = n as f64;
        assert!(close(relu_r_moment(2.0, n, 3), 1.0 + 15.0 / nf + 44.0 / (nf * nf), 1e-14));
    }
    let cases: Vec<(f64, f64, Vec<usize>)> = vec![
        (2.0, 1.0, vec![4; 8]),
        (2.0, 1.0, vec![8; 8]),
        (2.0, 1.0, vec![32; 8]),
        (2.0, 0.7, vec![8, 4, 16, 32, 4]),
        (1.5, 2.0, vec![4, 8, 8, 4, 32, 32]),
    ];
    for (c_w, k1, widths) in cases {
        let exact = relu_closed_form(c_w, k1, &widths);
        let got = chain(Activation::Relu, c_w, 0.0, k1, &widths, 16);
        assert_layers_close(&got, &exact, 1e-10, &format!("relu C_W {c_w} widths {widths:?}"));
    }
    let c = chain(Activation::Relu, 2.0, 0.0, 1.0, &[32, 32], 16);
    assert!((c[1].c6 - 0.64453125).abs() < 1e-12, "c6 at n = 32, l = 2: {}", c[1].c6);
    assert!((c[1].kurtosis - 15.0 / 32.0).abs() < 1e-12);
    // kurtosis 3 [(1 + 5/n)^(l-1) - 1]
    assert!((c[2].kurtosis - 3.0 * ((1.0 + 5.0 / 32.0f64).powi(2) - 1.0)).abs() < 1e-12);
}

/// The default atoms against more: the stated accuracy of the module docs.
#[test]
fn chain_is_converged_in_the_atoms() {
    for (act, c_w, c_b, more, tol_small_n) in [
        (Activation::Tanh, 1.0, 0.0, 32, 1e-5),
        (Activation::Tanh, 1.5, 0.1, 32, 1e-10),
        (Activation::Erf, 1.2, 0.05, 32, 1e-10),
        (Activation::Erf, 1.0, 0.0, 32, 1e-5),
        (Activation::Relu, 2.0, 0.3, 20, 1e-10),
    ] {
        for n in [4usize, 8, 32] {
            let widths = vec![n; 8];
            let a = chain(act, c_w, c_b, 1.0, &widths, default_atoms(act));
            let b = chain(act, c_w, c_b, 1.0, &widths, more);
            let tol = if n >= 32 { 1e-10 } else { tol_small_n };
            let worst = a
                .iter()
                .zip(&b)
                .flat_map(|(x, y)| [(x.mu2, y.mu2), (x.kurtosis, y.kurtosis), (x.c6, y.c6), (x.c8, y.c8)])
                .map(|(p, q)| (p - q).abs() / q.abs().max(1e-300))
                .fold(0.0, f64::max);
            eprintln!("{act:?} C_W {c_w} C_b {c_b} n {n}: default vs {more} atoms {worst:.1e}");
            assert!(worst < tol, "{act:?} C_W {c_w} C_b {c_b} n {n}: {worst:.2e} >= {tol:.0e}");
        }
    }
}

fn deep(act: Activation, c_w: f64, c_b: f64, layers: usize) -> ArchSpec {
    let mut a = ArchSpec::single("deep", act, c_w.sqrt(), c_b.sqrt(), vec![vec![1.0]]);
    a.hidden_layers = layers;
    a
}

/// The leading-order recursions are the first terms of the chain's 1/n
/// expansion: their relative error falls as 1/n (ratio 2 per doubling), and the
/// NLO kernel's error as 1/n^2 (ratio 4), while the infinite-width K's falls as 1/n.
#[test]
fn leading_orders_are_the_chains_large_n_limit() {
    let ns = [128usize, 256, 512];
    for (act, c_w, c_b) in [(Activation::Tanh, 1.0, 0.0), (Activation::Erf, 1.3, 0.1), (Activation::Relu, 2.0, 0.2), (Activation::Tanh, 1.5, 0.0)] {
        let arch = deep(act, c_w, c_b, 5);
        let errs: Vec<Vec<[f64; 5]>> = ns
            .iter()
            .map(|&n| {
                let ex = nnqft_core::chain::exact_chain(&arch, &[1.0], n, default_atoms(act));
                let lo = layer_theory(&arch, &[1.0], n);
                ex.iter()
                    .zip(&lo)
                    .skip(1)
                    .map(|(e, t)| {
                        [
                            (e.kurtosis - t.kurtosis).abs() / t.kurtosis.abs(),
                            (e.c6 - t.c6).abs() / t.c6.abs(),
                            (e.c8 - t.c8).abs() / t.c8.abs(),
                            (e.mu2 - t.k).abs(),
                            (e.mu2 - t.k_nlo).abs(),
                        ]
                    })
                    .collect()
            })
            .collect();
        for l in 0..errs[0].len() {
            let r = |i: usize, j: usize| errs[j][l][i] / errs[j + 1][l][i];
            for (i, name, lo, hi) in [(0, "kurtosis", 1.5, 2.5), (1, "c6", 1.5, 2.5), (2, "c8", 1.5, 2.5), (4, "K_nlo", 3.4, 4.6)] {
                for j in 0..ns.len() - 1 {
                    let ratio = r(i, j);
                    // relu's K and K_nlo are exact (F is linear): nothing to scale
                    if act == Activation::Relu && i == 4 {
                        assert!(errs[j][l][i] < 1e-12, "relu K_nlo error {}", errs[j][l][i]);
                        continue;
                    }
                    // layer 2's cumulants are exact at leading order: G^(1) is
                    // a sum of iid terms around a fixed G^(0)
                    if l == 0 {
                        assert!(errs[j][l][i] < 1e-10 * errs[j][l][3].max(1.0), "{act:?} layer 2 {name}: LO should be exact, error {}", errs[j][l][i]);
                        continue;
                    }
                    assert!(
                        (lo..hi).contains(&ratio),
                        "{act:?} C_W {c_w} l = {}: {name} error ratio {ratio:.3} between n = {} and {} (errors {:?})",
                        l + 2,
                        ns[j],
                        ns[j + 1],
                        errs.iter().map(|e| e[l][i]).collect::<Vec<_>>()
                    );
                }
            }
            if act != Activation::Relu && l > 0 {
                let k_ratio = r(3, 0);
                assert!((1.7..2.3).contains(&k_ratio), "{act:?} l = {}: infinite-width K error ratio {k_ratio}", l + 2);
            }
        }
        eprintln!(
            "{act:?} C_W {c_w}: relative LO errors at n = {}, layer 3 [kurt, c6, c8, |K|, |K_nlo|]: {:?}",
            ns[0], errs[0][1]
        );
    }
}

/// tanh at criticality (C_W = 1, C_b = 0), n = 8, L = 6, 4e6 nets of the deep
/// sampler: the measured kurtosis and c6 of every layer are within 3 standard
/// errors of the exact chain, while the leading-order recursion is more than
/// 3 se off at some layer (the chain is needed at this width).
#[test]
fn tanh_n8_measured_against_chain_and_leading_order() {
    use nnqft_core::deep::DeepSampler;
    use nnqft_core::rng::StreamKey;
    use rayon::prelude::*;
    let arch = deep(Activation::Tanh, 1.0, 0.0, 6);
    let (n, bags, nets) = (8usize, 20usize, 200_000usize);
    let layers = arch.hidden_layers + 1;
    // per bag, per layer: E z^2, E z^4, E z^6
    let per_bag: Vec<Vec<[f64; 3]>> = (0..bags)
        .into_par_iter()
        .map(|b| {
            let mut s = DeepSampler::new(&arch, n);
            let mut rng = nnqft_core::normal::NormalStream::new(&mut StreamKey { seed: 8, arch: "tanh-n8", width: n, bag: b as u32, part: 0 }.stream());
            let mut out = vec![0.0; layers];
            let mut m = vec![[0.0; 3]; layers];
            for _ in 0..nets {
                s.sample_net(&mut rng, &mut out);
                for (acc, &z) in m.iter_mut().zip(&out) {
                    let z2 = z * z;
                    acc[0] += z2;
                    acc[1] += z2 * z2;
                    acc[2] += z2 * z2 * z2;
                }
            }
            m.iter().map(|a| a.map(|v| v / nets as f64)).collect()
        })
        .collect();
    let exact = nnqft_core::chain::exact_chain(&arch, &[1.0], n, default_atoms(Activation::Tanh));
    let lo = layer_theory(&arch, &[1.0], n);
    // delete-one-bag jackknife of the pooled statistic
    let stat = |l: usize, f: &dyn Fn([f64; 3]) -> f64| {
        let pooled = |skip: Option<usize>| {
            let keep: Vec<usize> = (0..bags).filter(|&b| Some(b) != skip).collect();
            let mut m = [0.0; 3];
            for &b in &keep {
                for i in 0..3 {
                    m[i] += per_bag[b][l][i] / keep.len() as f64;
                }
            }
            f(m)
        };
        let full = pooled(None);
        let loo: Vec<f64> = (0..bags).map(|b| pooled(Some(b))).collect();
        let mean = loo.iter().sum::<f64>() / bags as f64;
        let var = (bags - 1) as f64 / bags as f64 * loo.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
        (bags as f64 * full - (bags - 1) as f64 * mean, var.sqrt())
    };
    let kurt = |m: [f64; 3]| m[1] / (m[0] * m[0]) - 3.0;
    let c6 = |m: [f64; 3]| (m[2] - 15.0 * m[1] * m[0] + 30.0 * m[0].powi(3)) / m[0].powi(3);
    let mut lo_worst: f64 = 0.0;
    for l in 1..layers {
        let (k, kse) = stat(l, &kurt);
        let (c, cse) = stat(l, &c6);
        let (zk, zc) = ((k - exact[l].kurtosis) / kse, (c - exact[l].c6) / cse);
        let (zk_lo, zc_lo) = ((k - lo[l].kurtosis) / kse, (c - lo[l].c6) / cse);
        eprintln!(
            "l = {}: kurtosis {k:.4} +- {kse:.4} (chain {:.4}, z {zk:.2}; LO {:.4}, z {zk_lo:.2}); c6 {c:.3} +- {cse:.3} (chain {:.3}, z {zc:.2}; LO {:.3}, z {zc_lo:.2})",
            l + 1,
            exact[l].kurtosis,
            lo[l].kurtosis,
            exact[l].c6,
            lo[l].c6
        );
        assert!(zk.abs() < 3.0 && zc.abs() < 3.0, "layer {}: measured vs chain z = {zk:.2} (kurtosis), {zc:.2} (c6)", l + 1);
        lo_worst = lo_worst.max(zk_lo.abs()).max(zc_lo.abs());
    }
    assert!(lo_worst > 3.0, "the leading order is within 3 se everywhere (worst {lo_worst:.2}): the test does not separate it from the chain");
}
