//! The sampler's fast activations against libm: dense grids and random
//! points over the whole real line, with the bounds documented in
//! `core/src/fastmath.rs`.

use nnqft_core::fastmath::{Block, Erf, Exp, Tanh, exp, exp_fused, tanh, tanh_fused};

/// Dense grid on [-lo, hi] plus pseudo-random points with heavy tails.
fn points(range: f64) -> Vec<f64> {
    let mut v: Vec<f64> = (0..=400_000).map(|i| -range + 2.0 * range * i as f64 / 400_000.0).collect();
    let mut s = 0x9e3779b97f4a7c15u64;
    for _ in 0..200_000 {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let u = (s >> 11) as f64 / (1u64 << 53) as f64;
        v.push((u - 0.5) * 2.0 * range * u * u);
    }
    v.extend([0.0, -0.0, 1.0, -1.0, 6.0, -6.0, 5.999999999, 0.999999999, 1e-300, -1e-300, 1e300, f64::INFINITY, f64::NEG_INFINITY]);
    v
}

#[test]
fn erf_within_1_5e_15_absolute() {
    let e = Erf::new();
    let mut worst = (0.0f64, 0.0);
    for x in points(40.0) {
        let err = (e.eval(x) - libm::erf(x)).abs();
        if err > worst.0 {
            worst = (err, x);
        }
    }
    eprintln!("erf: max abs error {:.3e} at x = {}", worst.0, worst.1);
    assert!(worst.0 < 1.5e-15, "erf max abs error {:.3e} at {}", worst.0, worst.1);
    // odd, and monotone across the piece boundaries
    for x in [0.3, 0.999999, 1.0, 1.000001, 5.999, 6.0, 7.0] {
        assert_eq!(e.eval(-x), -e.eval(x));
    }
    for w in [0.999999f64, 1.0, 1.000001].windows(2) {
        assert!(e.eval(w[0]) <= e.eval(w[1]));
    }
}

/// Both forms: [`exp`] (the generator's) and [`exp_fused`] (the sampler's).
#[test]
fn exp_within_3e_16_relative() {
    for (name, f) in [("exp", exp as fn(f64) -> f64), ("exp_fused", exp_fused)] {
        let mut worst = (0.0f64, 0.0);
        for x in points(700.0) {
            let want = x.exp();
            if want == 0.0 || want.is_infinite() || want < 1e-300 {
                continue;
            }
            let err = ((f(x) - want) / want).abs();
            if err > worst.0 {
                worst = (err, x);
            }
        }
        eprintln!("{name}: max rel error {:.3e} at x = {}", worst.0, worst.1);
        assert!(worst.0 < 3e-16, "{name} max rel error {:.3e} at {}", worst.0, worst.1);
        assert_eq!(f(0.0), 1.0);
        assert!(f(-1e9) < 1e-300 && f(-1e9) >= 0.0);
    }
}

#[test]
fn tanh_within_1e_15_absolute() {
    for (name, f) in [("tanh", tanh as fn(f64) -> f64), ("tanh_fused", tanh_fused)] {
        let mut worst = (0.0f64, 0.0);
        for x in points(50.0) {
            let err = (f(x) - x.tanh()).abs();
            if err > worst.0 {
                worst = (err, x);
            }
        }
        eprintln!("{name}: max abs error {:.3e} at x = {}", worst.0, worst.1);
        assert!(worst.0 < 1e-15, "{name} max abs error {:.3e} at {}", worst.0, worst.1);
        assert_eq!(f(f64::INFINITY), 1.0);
        assert_eq!(f(-0.0).to_bits(), (-0.0f64).to_bits());
    }
}

/// The block form the sampler uses is bit-identical to the scalar one.
#[test]
fn erf_block_equals_scalar() {
    let e = Erf::new();
    let xs = points(8.0);
    for c in xs.chunks_exact(8) {
        let mut b: [f64; 8] = c.try_into().unwrap();
        e.eval_block(&mut b);
        for (x, y) in c.iter().zip(&b) {
            assert_eq!(e.eval(*x).to_bits(), y.to_bits(), "x = {x}");
        }
    }
}

/// The AVX2 form of erf's 16-lane blocks (coefficients loaded in pairs
/// and unpacked, in place of gathers) gives the scalar bits, at every piece
/// boundary and next to it, 0, -0, 6, infinities and NaN.
#[cfg(target_arch = "x86_64")]
#[test]
fn erf_avx2_block_equals_scalar() {
    let e = Erf::new();
    let Some(e2) = nnqft_core::fastmath::ErfAvx2::new() else {
        eprintln!("no AVX2 + FMA on this CPU: nothing to compare");
        return;
    };
    for c in boundary_points().chunks(16) {
        let mut b = [0.5; 16];
        b[..c.len()].copy_from_slice(c);
        e2.eval_block(&mut b);
        for (x, y) in c.iter().zip(&b) {
            assert_eq!(e.eval(*x).to_bits(), y.to_bits(), "x = {x}");
        }
    }
}

/// [`points`] and erf's piece boundaries with their neighbours, NaN,
/// subnormals and the neighbours of 6.
fn boundary_points() -> Vec<f64> {
    let mut xs = points(8.0);
    for i in 0..=20 {
        let b = i as f64 * 0.375;
        xs.extend([b, -b, b.next_up(), b.next_down(), -b.next_down()]);
    }
    xs.extend([f64::NAN, -f64::NAN, 1e-310, -1e-310, 6.0f64.next_down(), 6.0f64.next_up()]);
    xs
}

/// The AVX-512 form of erf's 32-lane blocks (coefficients picked from
/// registers by `vpermt2pd` in place of gathers) gives the scalar bits, at
/// every piece boundary and next to it, 0, -0, 6, infinities and NaN.
#[cfg(target_arch = "x86_64")]
#[test]
fn erf_avx512_block_equals_scalar() {
    let e = Erf::new();
    let Some(e2) = nnqft_core::fastmath::ErfAvx512::new() else {
        eprintln!("no AVX-512F on this CPU: nothing to compare");
        return;
    };
    for c in boundary_points().chunks(32) {
        let mut b = [0.5; 32];
        b[..c.len()].copy_from_slice(c);
        e2.eval_block(&mut b);
        for (x, y) in c.iter().zip(&b) {
            assert_eq!(e.eval(*x).to_bits(), y.to_bits(), "x = {x}");
        }
    }
}

/// exp and tanh in the sampler's blocks (32 lanes, and an odd 13) give the
/// scalar functions' bits lane by lane, infinities included; NaN gives NaN
/// (its sign may differ: a fused multiply-add in software and in hardware
/// propagate a NaN's sign differently, and Rust leaves it unspecified).
#[test]
fn exp_and_tanh_blocks_equal_scalar() {
    fn check<const L: usize>(f: impl Block<L>, scalar: fn(f64) -> f64, range: f64) {
        let mut xs = points(range);
        xs.extend([f64::NAN, -f64::NAN, 709.5, -708.5, 1e-310]);
        for c in xs.chunks(L) {
            let mut b = [0.25; L];
            b[..c.len()].copy_from_slice(c);
            f.eval_block(&mut b);
            for (x, y) in c.iter().zip(&b) {
                if x.is_nan() {
                    assert!(y.is_nan() && scalar(*x).is_nan(), "x = {x}");
                } else {
                    assert_eq!(scalar(*x).to_bits(), y.to_bits(), "x = {x}");
                }
            }
        }
    }
    check::<32>(Exp, exp_fused, 750.0);
    check::<13>(Exp, exp_fused, 750.0);
    check::<32>(Tanh, tanh_fused, 30.0);
    check::<13>(Tanh, tanh_fused, 30.0);
    // where -2|z| passes exp's lower clamp (-708), which tanh's block applies alone
    check::<32>(Tanh, tanh_fused, 800.0);
}

/// The sampler's activation pass, compiled for each instruction set this
/// CPU has (AVX-512's 64-lane and AVX2's 32-lane blocks included), gives the
/// scalar functions' bits value by value (erf's NaN gives +-1 as the scalar
/// erf does; tanh's and exp's NaN give NaN, whose sign may differ).
#[test]
fn activation_passes_equal_scalar_on_every_isa() {
    use nnqft_core::Activation;
    use nnqft_core::sampler::{Isa, activate};
    let erf = |x: f64| Erf::new().eval(x);
    for (act, scalar, range) in [(Activation::Tanh, tanh_fused as fn(f64) -> f64, 800.0), (Activation::Gauss, exp_fused, 750.0), (Activation::Erf, erf, 8.0)] {
        let mut xs = points(range);
        xs.extend([f64::NAN, -f64::NAN, 709.5, -708.5, 354.0, -354.0, 354.5, -354.5, 1e-310]);
        // whole blocks and a remainder
        if xs.len() % 64 == 0 {
            xs.push(0.5);
        }
        for isa in [Isa::Generic, Isa::Avx2, Isa::Avx512].into_iter().filter(|i| i.available()) {
            let mut z = xs.clone();
            activate(act, isa, &mut z);
            for (x, y) in xs.iter().zip(&z) {
                let want = scalar(*x);
                if want.is_nan() {
                    assert!(y.is_nan(), "{act:?} {isa:?} x = {x}");
                } else {
                    assert_eq!(want.to_bits(), y.to_bits(), "{act:?} {isa:?} x = {x}");
                }
            }
        }
    }
}

/// erf is exactly odd and vanishes at 0 (since SAMPLER_VERSION 3; before,
/// erf(0) came out as ~1e-15 from the first interval's midpoint expansion), so an
/// erf net with sb = 0 has f(0) = 0 exactly.
#[test]
fn erf_is_exactly_odd_and_zero_at_zero() {
    let e = Erf::new();
    assert_eq!(e.eval(0.0).to_bits(), 0.0f64.to_bits());
    assert_eq!(e.eval(-0.0).to_bits(), (-0.0f64).to_bits());
    let mut b = [0.0, -0.0, 1e-300, -1e-300, 0.01, -0.01, 3.0, -3.0];
    e.eval_block(&mut b);
    assert_eq!(b[0], 0.0);
    assert_eq!(b[1], 0.0);
    for x in points(8.0) {
        assert_eq!(e.eval(-x).to_bits(), (-e.eval(x)).to_bits(), "x = {x}");
    }
    // near 0 the relative error is that of the first piece's linear
    // coefficient, 1.9e-15 (an interpolant on [0, 3/8], not 2 / sqrt(pi))
    for x in [1e-300, 1e-10, 1e-3] {
        let rel = (e.eval(x) - libm::erf(x)).abs() / libm::erf(x);
        assert!(rel < 2.5e-15, "x = {x}: relative error {rel:e}");
    }
    let arch = nnqft_core::ArchSpec::single("erf", nnqft_core::Activation::Erf, 1.0, 0.0, vec![vec![0.0], vec![0.5]]);
    let mut s = nnqft_core::NetSampler::new(&arch, 10);
    let cols = s.sample_part(&mut nnqft_core::rng::StreamKey { seed: 1, arch: "erf", width: 10, bag: 0, part: 0 }.stream(), 100);
    assert!(cols[0].iter().all(|v| *v == 0.0), "f(0) of an erf net with sb = 0");
    assert!(cols[1].iter().any(|v| *v != 0.0));
}
