//! Error bars against the exact estimator variance (docs/physics.md §10),
//! through the binaries and the tables: the exact_stderr column against the
//! relu closed form, and the unreliable flags on the default pipeline.

use nnqft_testkit::{relu_sum_moments, run_stages, Pipe};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_nnqft-moments");

#[test]
fn exact_stderr_equals_the_relu_closed_form() {
    // relu, sb = 0, d = 1, x > 0: f(x) = sw^2 x F, Var X_t = prod (sw^2 x_a)^2 (E F^2n - (E F^n)^2).
    let xs = [0.2, 0.5, 0.9, 1.3];
    let sw: f64 = 1.1;
    let (bags, nets) = (4u32, 3000u64);
    let tmp = tempfile::tempdir().unwrap();
    let pipe = Pipe::new("relu-exact", 3, bags, nets, &[2, 5, 20], &[2, 4, 6])
        .arch("relu", "relu", sw, 0.0, &[&[xs[0]], &[xs[1]], &[xs[2]], &[xs[3]]])
        .write(tmp.path());
    let data = tmp.path().join("data");
    run_stages(Path::new(BIN), &["nnqft-sample", "nnqft-moments"], &pipe, &data);
    let p = nnqft_core::Pipeline::from_toml(&std::fs::read_to_string(&pipe).unwrap()).unwrap();
    let out = nnqft_moments::run(&p, &data, &Default::default()).unwrap();
    let mut checked = 0;
    for r in &out.rows {
        let ef = relu_sum_moments(r.width, 12);
        let n = r.order;
        let px2: f64 = r.tuple.iter().map(|&i| (sw * sw * xs[i]).powi(2)).product();
        let want = (px2 * (ef[2 * n] - ef[n] * ef[n]) / (bags as f64 * nets as f64)).sqrt();
        let rel = (r.exact_stderr - want).abs() / want;
        assert!(rel < 1e-10, "N = {} {:?}: exact_stderr {} vs closed form {want} ({rel:e})", r.width, r.tuple, r.exact_stderr);
        let bg = want * (bags as f64).sqrt() / r.gp.abs();
        assert!((r.exact_background - bg).abs() < 1e-10 * bg);
        checked += 1;
    }
    assert_eq!(checked, 3 * (10 + 35 + 84));
}

#[test]
fn gauss_six_point_is_flagged_and_relu_erf_are_not() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let quick = nnqft_testkit::repo().join("pipelines/quick.toml");
    run_stages(Path::new(BIN), &["nnqft-sample", "nnqft-moments"], &quick, &data);
    let p = nnqft_core::Pipeline::from_toml(&std::fs::read_to_string(&quick).unwrap()).unwrap();
    let out = nnqft_moments::run(&p, &data, &Default::default()).unwrap();
    let mut report = String::new();
    for s in &out.summary {
        report.push_str(&format!(
            "{} N={} n={}: measured/exact background {:.3e}, coverage {:.2}/{:.2}, unreliable {}/{}\n",
            s.arch, s.width, s.order, s.background_ratio, s.coverage_1, s.coverage_2, s.n_unreliable, s.n_tuples
        ));
    }
    eprintln!("{report}");
    for w in p.sample.widths.iter().copied() {
        let six: Vec<_> = out.rows.iter().filter(|r| r.arch == "gauss-d1" && r.order == 6 && r.width == w).collect();
        assert_eq!(six.len(), 462);
        assert!(six.iter().all(|r| r.unreliable.is_some()), "gauss-d1 N = {w}: some 6-point tuples not flagged\n{report}");
        let s = out.summary.iter().find(|s| s.arch == "gauss-d1" && s.order == 6 && s.width == w).unwrap();
        assert!(!s.resolved && s.background_ratio < 0.01, "{report}");
    }
    for arch in ["relu-d1", "erf-d1"] {
        // Each tuple is flagged with probability 1e-3 when its bags are Gaussian, and
        // correlated tuples of one (width, order) are flagged together: an unlucky
        // sample flags a group (34 of 6090 erf-d1 rows on one seed). A real failure of
        // the bag errors flags them all, as for gauss-d1 above.
        let rows = out.rows.iter().filter(|r| r.arch == arch).count();
        let flagged: Vec<_> = out.rows.iter().filter(|r| r.arch == arch && r.unreliable.is_some()).collect();
        assert!(flagged.len() * 50 < rows, "{arch}: {} of {rows} rows flagged, e.g. {:?}", flagged.len(), flagged.first().map(|r| (&r.tuple, &r.unreliable)));
        for s in out.summary.iter().filter(|s| s.arch == arch) {
            // 10 bags, strongly correlated tuples: the mean spread is within a factor 3 of exact
            // (measured 0.45 to 1.6); the gauss-net's is below 0.05 at order 4 and 1e-6 at order 6.
            assert!(s.background_ratio > 1.0 / 3.0 && s.background_ratio < 3.0, "{arch}: {report}");
        }
    }
    // relu-deep (4 layers of 32 at criticality): layer 1 is Gaussian and never
    // flagged; deeper layers may be, for the one honest reason that their E z^8 rests on
    // tails 10 x 50k nets do not sample (the next test), and for no other
    assert!(out.layers.iter().filter(|r| r.layer == 1).all(|r| r.unreliable.is_none()), "relu-deep layer 1 flagged");
    for r in out.layers.iter().filter(|r| r.unreliable.is_some()) {
        let why = r.unreliable.as_deref().unwrap_or_default();
        assert!(why.starts_with("E z^8") && why.contains("tails not sampled"), "relu-deep layer {} flagged: {why}", r.layer);
    }
    let section = std::fs::read_to_string(data.join("report/moments.md")).unwrap();
    assert!(section.contains("gauss-d1, n = 6: measured / exact background") && section.contains("2772 of 2772 tuples flagged unreliable"), "{section}");
}

/// Deep relu at n = 8, L = 6 (C_W = 2): the higher moments of the deep layers
/// are carried by events too rare for 20k nets per bag, so their bags spread
/// far less than the exact chain says (or one bag, the one that caught such an
/// event, dominates) and those rows are flagged; the rows left unflagged agree
/// with the chain (chi2 per row of kurtosis and c6 below 3; every |z| < 4),
/// and layer 1 (Gaussian) is never flagged. Which moment trips first depends
/// on the draws. Measured (seed 5): with sampler version 4's normals, layers
/// 3..7 flagged on E z^8, its bags' spread down to 1e-4 of the exact one;
/// with version 5's, layers 3..5 on E z^6 (spread 0.42-0.50 of exact) and
/// layers 6, 7 on one dominating bag of E z^4 (Grubbs 3.33 and 3.60 > 3.31),
/// E z^8's spread down to 1e-3.
#[test]
fn deep_heavy_tails_are_flagged_against_the_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let pipe = Pipe::new("deep-tails", 5, 20, 20_000, &[8], &[2])
        .arch_with("relu-n8", "relu", 2f64.sqrt(), 0.0, &[&[1.0]], "hidden_layers = 6\n")
        .write(tmp.path());
    let data = tmp.path().join("data");
    run_stages(Path::new(BIN), &["nnqft-sample", "nnqft-moments"], &pipe, &data);
    let p = nnqft_core::Pipeline::from_toml(&std::fs::read_to_string(&pipe).unwrap()).unwrap();
    let out = nnqft_moments::run(&p, &data, &Default::default()).unwrap();
    let flagged: Vec<_> = out.layers.iter().filter(|r| r.unreliable.is_some()).collect();
    for r in &out.layers {
        eprintln!("l = {}: spread ratio {:.3}, z {:.2}, z_c6 {:.2}, z_c8 {:.2}, {:?}", r.layer, r.spread_ratio, r.z, (r.c6 - r.c6_exact) / r.c6_stderr, (r.c8 - r.c8_exact) / r.c8_stderr, r.unreliable);
    }
    assert!(flagged.iter().any(|r| r.unreliable.as_deref().is_some_and(|w| w.contains("tails not sampled"))), "no row flagged for unsampled tails");
    for r in &flagged {
        let why = r.unreliable.as_deref().unwrap_or_default();
        assert!(why.contains("tails not sampled") || why.contains("one bag dominates"), "layer {} flagged for another reason: {why}", r.layer);
    }
    assert!(flagged.iter().all(|r| r.layer > 1), "the Gaussian layer 1 is flagged");
    let ok: Vec<_> = out.layers.iter().filter(|r| r.unreliable.is_none()).collect();
    assert!(ok.len() >= 2, "too few unflagged rows to check: {}", ok.len());
    let chi2 = |f: &dyn Fn(&nnqft_moments::layers::LayerRow) -> f64| ok.iter().map(|r| f(r).powi(2)).sum::<f64>() / ok.len() as f64;
    let (ck, c6) = (chi2(&|r| r.z), chi2(&|r| (r.c6 - r.c6_exact) / r.c6_stderr));
    assert!(ck < 3.0 && c6 < 3.0, "unflagged rows: chi2 per row kurtosis {ck:.2}, c6 {c6:.2}");
    assert!(ok.iter().all(|r| r.z.abs() < 4.0), "an unflagged kurtosis more than 4 se from the chain");
}
