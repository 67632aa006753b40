//! # nnqft-stats
//!
//! The statistics the stages share. Every error bar in nnqft comes from the
//! spread over independent bags of nets: [`stderr`] of a per-bag quantity, or
//! the delete-one-bag [`jackknife`] of a non-linear one (a slope, a ratio).
//! No I/O; distribution functions from statrs.

/// Mean and standard deviation (ddof 1; NaN for one value).
///
/// ```
/// let (m, s) = nnqft_stats::mean_std(&[1.0, 2.0, 3.0]);
/// assert_eq!((m, s), (2.0, 1.0));
/// ```
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// Standard error of the mean, `std(v, ddof = 1) / sqrt(len)` (NaN below two values).
///
/// ```
/// let se = nnqft_stats::stderr(&[1.0, 2.0, 3.0]);
/// assert!((se - 1.0 / 3f64.sqrt()).abs() < 1e-15);
/// assert!(nnqft_stats::stderr(&[1.0]).is_nan());
/// ```
pub fn stderr(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    if v.len() < 2 {
        return f64::NAN;
    }
    let m = v.iter().sum::<f64>() / n;
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)).sqrt() / n.sqrt()
}

/// Delete-one-bag jackknife of a statistic `t` of the bags in `keep`:
/// (bias-corrected estimate, standard error). NaN error below two bags.
///
/// ```
/// use nnqft_stats::jackknife;
/// let x = [1.0, 2.0, 4.0, 5.0];
/// let (m, se) = jackknife(4, |keep| keep.iter().map(|&b| x[b]).sum::<f64>() / keep.len() as f64);
/// assert!((m - 3.0).abs() < 1e-12);
/// assert!((se - 1.8257418583505538 / 2.0).abs() < 1e-12); // std / sqrt(B) for a mean
/// ```
pub fn jackknife(bags: usize, t: impl Fn(&[usize]) -> f64) -> (f64, f64) {
    let all: Vec<usize> = (0..bags).collect();
    let full = t(&all);
    if bags < 2 {
        return (full, f64::NAN);
    }
    let loo: Vec<f64> = (0..bags).map(|j| t(&all.iter().copied().filter(|&b| b != j).collect::<Vec<_>>())).collect();
    let b = bags as f64;
    let mean = loo.iter().sum::<f64>() / b;
    let var = (b - 1.0) / b * loo.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
    (b * full - (b - 1.0) * mean, var.sqrt())
}

/// Pooled (m2, m4) over the bags in `keep` (bags have equal sizes).
///
/// ```
/// assert_eq!(nnqft_stats::pooled(&[(1.0, 3.0), (3.0, 5.0)], &[0, 1]), (2.0, 4.0));
/// ```
pub fn pooled(bags: &[(f64, f64)], keep: &[usize]) -> (f64, f64) {
    let n = keep.len() as f64;
    keep.iter().fold((0.0, 0.0), |(a, b), &i| (a + bags[i].0 / n, b + bags[i].1 / n))
}

/// Excess kurtosis `m4 / m2^2 - 3` (0 for a Gaussian).
///
/// ```
/// assert_eq!(nnqft_stats::kurtosis((1.0, 3.0)), 0.0);
/// ```
pub fn kurtosis((m2, m4): (f64, f64)) -> f64 {
    m4 / (m2 * m2) - 3.0
}

/// `[mu_2, c4, c6, c8]` of a symmetric variable from its even moments
/// `[mu_2, mu_4, mu_6, mu_8]`: `c_2m = kappa_2m / mu_2^m` (c4 is the excess kurtosis).
///
/// ```
/// // a standard normal: every higher cumulant vanishes
/// assert_eq!(nnqft_stats::normalised_cumulants([1.0, 3.0, 15.0, 105.0]), [1.0, 0.0, 0.0, 0.0]);
/// ```
pub fn normalised_cumulants([m2, m4, m6, m8]: [f64; 4]) -> [f64; 4] {
    [
        m2,
        m4 / (m2 * m2) - 3.0,
        (m6 - 15.0 * m4 * m2 + 30.0 * m2.powi(3)) / m2.powi(3),
        (m8 - 28.0 * m6 * m2 - 35.0 * m4 * m4 + 420.0 * m4 * m2 * m2 - 630.0 * m2.powi(4)) / m2.powi(4),
    ]
}

/// Least-squares slope of y against x.
///
/// ```
/// assert!((nnqft_stats::ols_slope(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 2.0).abs() < 1e-15);
/// ```
pub fn ols_slope(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    sxy / sxx
}

/// Weighted least-squares slope of y against x.
///
/// ```
/// let s = nnqft_stats::wls_slope(&[0.0, 1.0, 2.0], &[1.0, 3.0, 5.0], &[1.0, 1.0, 1.0]);
/// assert!((s - 2.0).abs() < 1e-12);
/// ```
pub fn wls_slope(x: &[f64], y: &[f64], w: &[f64]) -> f64 {
    wls_line(x, y, w).0
}

/// Weighted least-squares line of y against x: (slope, intercept, chi2).
///
/// ```
/// let (s, c, chi2) = nnqft_stats::wls_line(&[0.0, 1.0], &[1.0, 3.0], &[1.0, 4.0]);
/// assert!((s - 2.0).abs() < 1e-12 && (c - 1.0).abs() < 1e-12 && chi2 < 1e-24);
/// ```
pub fn wls_line(x: &[f64], y: &[f64], w: &[f64]) -> (f64, f64, f64) {
    let sw: f64 = w.iter().sum();
    let mx = x.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() / sw;
    let my = y.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() / sw;
    let sxy: f64 = x.iter().zip(y).zip(w).map(|((a, b), c)| c * (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().zip(w).map(|(a, c)| c * (a - mx) * (a - mx)).sum();
    let slope = sxy / sxx;
    let icpt = my - slope * mx;
    let chi2 = x.iter().zip(y).zip(w).map(|((a, b), c)| c * (b - icpt - slope * a).powi(2)).sum();
    (slope, icpt, chi2)
}

/// Lower-tail probability that `bags` Gaussian bag means show a sample
/// standard deviation at most `ratio` times their true one:
/// `P(chi2_{B-1} <= (B-1) ratio^2)`. NaN below two bags.
///
/// ```
/// // 10 bags: a spread below half the true one happens 1.3 % of the time (chi2_9 <= 2.25).
/// let p = nnqft_stats::low_spread_p(0.5, 10);
/// assert!((p - 0.0131306).abs() < 1e-6);
/// ```
pub fn low_spread_p(ratio: f64, bags: usize) -> f64 {
    use statrs::distribution::{ChiSquared, ContinuousCDF};
    if bags < 2 || !ratio.is_finite() {
        return f64::NAN;
    }
    let dof = (bags - 1) as f64;
    ChiSquared::new(dof).expect("dof > 0").cdf(dof * ratio * ratio)
}

/// `P(chi2_dof > x)`, the p-value of a chi-square statistic (NaN for `dof = 0`
/// or a non-finite `x`).
///
/// ```
/// assert!((nnqft_stats::chi2_sf(3.841458820694124, 1) - 0.05).abs() < 1e-12);
/// ```
pub fn chi2_sf(x: f64, dof: usize) -> f64 {
    use statrs::distribution::{ChiSquared, ContinuousCDF};
    if dof == 0 || !x.is_finite() {
        return f64::NAN;
    }
    ChiSquared::new(dof as f64).expect("dof > 0").sf(x)
}

/// Grubbs' outlier statistic of a sample, `max_i |x_i - mean| / std`, and
/// its critical value at significance `alpha` for a Gaussian sample of this
/// size (two-sided): a larger statistic says one value (one bag) dominates
/// the spread, the mark of heavy tails. NaN below three values.
///
/// ```
/// let (g, crit) = nnqft_stats::grubbs(&[0.1, -0.2, 0.05, 0.0, 0.15, -0.1, 0.02, -0.05, 0.08, 9.0], 1e-3);
/// assert!(g > crit);
/// let (g, crit) = nnqft_stats::grubbs(&[0.1, -0.2, 0.05, 0.0, 0.15, -0.1, 0.02, -0.05, 0.08, 0.3], 1e-3);
/// assert!(g < crit);
/// ```
pub fn grubbs(v: &[f64], alpha: f64) -> (f64, f64) {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let n = v.len();
    if n < 3 {
        return (f64::NAN, f64::NAN);
    }
    let (m, s) = mean_std(v);
    let g = v.iter().map(|x| (x - m).abs()).fold(0.0, f64::max) / s;
    let nf = n as f64;
    let t = StudentsT::new(0.0, 1.0, nf - 2.0).expect("dof > 0").inverse_cdf(1.0 - alpha / (2.0 * nf));
    let crit = (nf - 1.0) / nf.sqrt() * (t * t / (nf - 2.0 + t * t)).sqrt();
    (g, crit)
}

/// A one-sample Hotelling test that iid vectors (one per bag) have mean
/// zero: `T^2 = B dbar^T S^+ dbar` with `S` the covariance over the `B`
/// bags. Directions in which the vectors do not vary at all (exact
/// identities, e.g. a rotation-invariant combination) carry no test and
/// are dropped: `rank` is the number kept, the test's degrees of freedom.
/// For Gaussian bags `(B - r) / (r (B - 1)) T^2 ~ F(r, B - r)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Hotelling {
    pub t2: f64,
    pub rank: usize,
    pub bags: usize,
    /// `T^2 / rank`: near 1 under the null hypothesis when bags >> rank.
    pub per_dof: f64,
    /// The central 99 % range of `per_dof` under the null hypothesis.
    pub band99: (f64, f64),
    /// `P(T^2 >= observed)` under the null hypothesis.
    pub p_value: f64,
}

/// An eigenvalue of the bags' correlation matrix below this (times its
/// dimension) counts as zero: an exact linear identity between coordinates.
const RANK_TOL: f64 = 1e-12;

/// The [`Hotelling`] test of `rows` (one vector per bag, all of one length);
/// NaN statistics when there are not more bags than kept directions.
///
/// ```
/// // bags scattered around zero: no evidence against mean zero
/// let rows: Vec<Vec<f64>> = (0..30).map(|b| vec![((b * 7 % 11) as f64 - 5.0) * 0.1, ((b * 5 % 13) as f64 - 6.0) * 0.1]).collect();
/// let h = nnqft_stats::hotelling(&rows);
/// assert_eq!(h.rank, 2);
/// assert!(h.p_value > 0.01 && h.band99.0 < h.per_dof && h.per_dof < h.band99.1);
/// // shifted by one unit: rejected
/// let shifted: Vec<Vec<f64>> = rows.iter().map(|r| vec![r[0] + 1.0, r[1]]).collect();
/// assert!(nnqft_stats::hotelling(&shifted).p_value < 1e-10);
/// ```
pub fn hotelling(rows: &[Vec<f64>]) -> Hotelling {
    use statrs::distribution::{ContinuousCDF, FisherSnedecor};
    let b = rows.len();
    let p = rows.first().map_or(0, |r| r.len());
    let nan = |rank| Hotelling { t2: f64::NAN, rank, bags: b, per_dof: f64::NAN, band99: (f64::NAN, f64::NAN), p_value: f64::NAN };
    if b < 2 || p == 0 {
        return nan(0);
    }
    let bf = b as f64;
    let mean: Vec<f64> = (0..p).map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / bf).collect();
    let cov = |i: usize, j: usize| rows.iter().map(|r| (r[i] - mean[i]) * (r[j] - mean[j])).sum::<f64>() / (bf - 1.0);
    // standardised coordinates (the test is scale invariant; the rank cut then is too);
    // a coordinate that does not vary carries no test
    let keep: Vec<usize> = (0..p).filter(|&j| cov(j, j) > 0.0).collect();
    let sd: Vec<f64> = keep.iter().map(|&j| cov(j, j).sqrt()).collect();
    let q = keep.len();
    let corr = nalgebra::DMatrix::from_fn(q, q, |i, j| cov(keep[i], keep[j]) / (sd[i] * sd[j]));
    let z: Vec<f64> = keep.iter().zip(&sd).map(|(&j, s)| mean[j] / s).collect();
    let eig = corr.symmetric_eigen();
    let mut t2 = 0.0;
    let mut rank = 0;
    for (k, &l) in eig.eigenvalues.iter().enumerate() {
        if l > RANK_TOL * q as f64 {
            let proj: f64 = eig.eigenvectors.column(k).iter().zip(&z).map(|(u, d)| u * d).sum();
            t2 += bf * proj * proj / l;
            rank += 1;
        }
    }
    if rank == 0 || b <= rank {
        return nan(rank);
    }
    let (r, rest) = (rank as f64, (b - rank) as f64);
    let f = FisherSnedecor::new(r, rest).expect("dof > 0");
    let scale = (bf - 1.0) / rest;
    Hotelling {
        t2,
        rank,
        bags: b,
        per_dof: t2 / r,
        band99: (scale * f.inverse_cdf(0.005), scale * f.inverse_cdf(0.995)),
        p_value: f.sf(t2 / (r * scale)),
    }
}
