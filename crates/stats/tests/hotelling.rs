//! The Hotelling test is calibrated (its 99 % band and p-values hold under
//! the null hypothesis, including correlated coordinates and exact linear
//! identities) and has power against a shift of a fraction of a standard error.

use nnqft_stats::hotelling;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

/// `bags` vectors of dimension 6: correlated Gaussian coordinates, the last
/// one an exact combination of two others (an identity the test must drop),
/// with `shift` added to coordinate 0.
fn draw(rng: &mut Xoshiro256PlusPlus, bags: usize, shift: f64) -> Vec<Vec<f64>> {
    (0..bags)
        .map(|_| {
            let z: Vec<f64> = (0..5).map(|_| StandardNormal.sample(&mut *rng)).collect();
            let x = vec![z[0] + shift, 0.9 * z[0] + 0.3 * z[1], 1e3 * z[2], z[3] - z[2], 1e-3 * z[4]];
            let mut v = x.clone();
            v.push(x[0] - 2.0 * x[1]);
            v
        })
        .collect()
}

#[test]
fn hotelling_is_calibrated_and_has_power() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let reps = 4000;
    let (mut outside, mut small_p) = (0usize, 0usize);
    for _ in 0..reps {
        let h = hotelling(&draw(&mut rng, 20, 0.0));
        assert_eq!(h.rank, 5, "the exact identity is dropped");
        outside += usize::from(h.per_dof < h.band99.0 || h.per_dof > h.band99.1);
        small_p += usize::from(h.p_value < 0.05);
    }
    // binomial: expected 1 % outside the band and 5 % below p = 0.05, within 4 se
    let check = |count: usize, rate: f64, what: &str| {
        let se = (rate * (1.0 - rate) / reps as f64).sqrt();
        let got = count as f64 / reps as f64;
        assert!((got - rate).abs() < 4.0 * se, "{what}: {got} (expected {rate} +- {se})");
    };
    check(outside, 0.01, "outside the 99 % band");
    check(small_p, 0.05, "p < 0.05");
    // power: a shift of one unit over 20 bags (4.5 standard errors of the mean) is found
    let rejected = (0..200).filter(|_| hotelling(&draw(&mut rng, 20, 1.0)).p_value < 0.01).count();
    assert!(rejected > 150, "rejected {rejected} of 200");
}
