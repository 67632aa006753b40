//! Output symmetries (docs/physics.md §12): the rotations are Haar, the
//! decomposition separates invariant from non-invariant tensors, and the
//! exact output-index 4-point function of a D = 3 net matches Monte Carlo.

use nnqft_core::exact::{Accuracy, ExactTheory};
use nnqft_core::rng::StreamKey;
use nnqft_core::symmetry::{decompose, index_tuples, rotate_outputs, rotation};
use nnqft_core::{Activation, ArchSpec, NetSampler};

fn key(bag: u32) -> nnqft_core::rng::Stream {
    StreamKey { seed: 3, arch: "sym", width: 0, bag, part: 0 }.stream()
}

/// Haar on SO(D): det +1, E R_11 = 0 and E R_11^2 = 1 / D, E R_11 R_22 = [D = 2] / 2
/// within 4 se over 20000 draws (D = 2, 3, 5).
#[test]
fn rotations_are_haar() {
    for d in [2usize, 3, 5] {
        let mut rng = key(d as u32);
        let draws = 20_000;
        let (mut s1, mut s2, mut s4, mut c, mut c2) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for _ in 0..draws {
            let r = rotation(d, &mut rng);
            let m = nalgebra::DMatrix::from_row_slice(d, d, &r);
            assert!((m.determinant() - 1.0).abs() < 1e-12);
            let x = r[0];
            (s1, s2, s4) = (s1 + x, s2 + x * x, s4 + x.powi(4));
            let y = r[0] * r[d + 1];
            (c, c2) = (c + y, c2 + y * y);
        }
        let n = draws as f64;
        let z_mean = (s1 / n) / (s2 / n / n).sqrt();
        let var2 = s4 / n - (s2 / n).powi(2);
        let z_sq = (s2 / n - 1.0 / d as f64) / (var2 / n).sqrt();
        let want_c = if d == 2 { 0.5 } else { 0.0 };
        let z_c = (c / n - want_c) / ((c2 / n - (c / n).powi(2)) / n).sqrt().max(1e-300);
        assert!(z_mean.abs() < 4.0 && z_sq.abs() < 4.0 && z_c.abs() < 4.0, "D = {d}: z = {z_mean:.2}, {z_sq:.2}, {z_c:.2}");
    }
}

/// An invariant tensor is all coefficients and stays so when rotated; a
/// non-invariant one (e_1 x e_1 x e_1 x e_1) leaves a residual that rotation changes.
#[test]
fn decomposition_separates_invariant_tensors() {
    let d = 3;
    let idx = index_tuples(4, d);
    let inv: Vec<f64> = idx
        .iter()
        .map(|i| 1.5 * f64::from(u8::from(i[0] == i[1] && i[2] == i[3])) - 0.25 * f64::from(u8::from(i[0] == i[3] && i[1] == i[2])))
        .collect();
    let e1: Vec<f64> = idx.iter().map(|i| f64::from(u8::from(i.iter().all(|&v| v == 0)))).collect();
    let r = rotation(d, &mut key(99));
    let rot4 = |t: &[f64]| -> Vec<f64> {
        idx.iter()
            .map(|i| {
                idx.iter()
                    .map(|j| (0..4).map(|s| r[i[s] * d + j[s]]).product::<f64>() * t[j.iter().fold(0, |acc, &v| acc * d + v)])
                    .sum()
            })
            .collect()
    };
    assert!(decompose(&inv, 4, d).residual_rms() < 1e-14);
    let ri = rot4(&inv);
    assert!(ri.iter().zip(&inv).all(|(a, b)| (a - b).abs() < 1e-12), "an invariant tensor is unchanged by rotation");
    let de = decompose(&e1, 4, d);
    assert!(de.residual_rms() > 0.05, "e1^4 is not invariant: residual {}", de.residual_rms());
    assert!(rot4(&e1).iter().zip(&e1).any(|(a, b)| (a - b).abs() > 0.05));
    // the residual's norm is rotation invariant (the projection commutes with O(D))
    assert!((decompose(&rot4(&e1), 4, d).residual_rms() - de.residual_rms()).abs() < 1e-12);
    assert!(decompose(&e1[..27], 3, d).coefficients.is_empty());
}

/// D = 3, centred parameters, N = 4: E f_i(x_a) f_j(x_b) f_k(x_c) f_l(x_d)
/// for the index patterns iiii, iijj, ijij (and ijkk = 0) at inputs (0, 1, 0, 1)
/// and (0, 0, 1, 1), measured over 40 bags of 25000 nets, against the GP plus
/// the exact output-index connected function: within 3 se each. Power: the GP
/// alone is rejected by > 5 se on a pattern with a connected part.
#[test]
fn output_index_four_point_function_matches_monte_carlo() {
    let n = 4;
    for (act, sw, sb) in [(Activation::Erf, 1.5, 0.3), (Activation::Relu, 1.0, 0.5)] {
        let mut a = ArchSpec::single("sym", act, sw, sb, vec![vec![0.4], vec![1.2]]);
        a.d_out = 3;
        let th = ExactTheory::for_orders(&a, &[4], Accuracy::default());
        let cases: Vec<([usize; 4], [usize; 4])> = [[0, 1, 0, 1], [0, 0, 1, 1]]
            .into_iter()
            .flat_map(|t| [[0, 0, 0, 0], [1, 1, 2, 2], [0, 2, 0, 2], [0, 1, 2, 2]].into_iter().map(move |o| (t, o)))
            .collect();
        let mut s = NetSampler::new(&a, n);
        let mut out = vec![0.0; s.outputs_per_net()];
        let mut rot = vec![0.0; out.len()];
        let r = rotation(3, &mut key(7));
        let bags: Vec<Vec<f64>> = (0..40)
            .map(|b| {
                let mut rng = nnqft_core::normal::NormalStream::new(&mut key(100 + b));
                let mut acc = vec![0.0; 2 * cases.len()];
                for _ in 0..25_000 {
                    s.sample_net(&mut rng, &mut out);
                    rotate_outputs(&r, &out, 2, &mut rot);
                    for (c, (t, o)) in cases.iter().enumerate() {
                        acc[c] += (0..4).map(|q| out[o[q] * 2 + t[q]]).product::<f64>();
                        acc[cases.len() + c] += (0..4).map(|q| rot[o[q] * 2 + t[q]]).product::<f64>();
                    }
                }
                acc.iter().map(|v| v / 25_000.0).collect()
            })
            .collect();
        let mut gp_worst = 0.0f64;
        for (c, (t, o)) in cases.iter().enumerate() {
            for (image, col) in [("f", c), ("R f", cases.len() + c)] {
                let vals: Vec<f64> = bags.iter().map(|v| v[col]).collect();
                let m = vals.iter().sum::<f64>() / 40.0;
                let se = (vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / 39.0 / 40.0).sqrt();
                let gp = th.gp_outputs(t, o);
                let exact = gp + th.kappa4_outputs(t, o, n);
                let z = (m - exact) / se;
                eprintln!("{act:?} {image} t {t:?} o {o:?}: z = {z:.2}, GP z = {:.2}", (m - gp) / se);
                assert!(z.abs() < 3.0, "{act:?} {image} t {t:?} o {o:?}: {m} +- {se}, exact {exact} (GP {gp}): z = {z:.2}");
                gp_worst = gp_worst.max(((m - gp) / se).abs());
            }
        }
        assert!(gp_worst > 5.0, "{act:?}: the GP alone should be rejected (max |z| {gp_worst:.2})");
    }
}
