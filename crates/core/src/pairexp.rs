//! Fast bivariate Gaussian expectations `E[tanh(z1) tanh(z2)]` for the
//! tanh kernel at arbitrary variances: what the kernel integrals of the fit
//! and rg stages need (millions of kernel values, with pre-activation
//! variances from ~0 to ~10^10 across a box `[-L, L]^d`).
//!
//! Method. Order the two variables so that `z1` has the smaller variance
//! and condition on it: `z2 | z1 ~ N(beta z1, v)`, so
//!
//! ```text
//! E[tanh z1 tanh z2] = E_u[ tanh(a u) H(beta a u, sqrt v) ],   u ~ N(0, 1),  a = sqrt(s11)
//! H(m, s) = E[tanh(m + s w)],  w ~ N(0, 1)
//! ```
//!
//! The outer integrand is even in `u`; it is integrated by 32-node
//! Gauss-Hermite when it is smooth on the unit scale, else by composite
//! Gauss-Legendre on panels graded geometrically away from `u = 0`, where
//! both factors change fastest. The inner mean `H` uses 32-node Gauss-Hermite
//! for `s < 3/4` (tanh's poles at `+-i pi / 2` are then at least `2 pi / 3`
//! standard deviations away) and otherwise the split `tanh = sign + r`:
//!
//! ```text
//! H(m, s) = erf(m / (s sqrt 2)) + int_0^inf r(z) [N(z; m, s^2) - N(z; -m, s^2)] dz,   r(z) = tanh z - 1
//! ```
//!
//! where `r` decays like `2 e^{-2z}`: for `3/4 <= s < 6` the remainder is a
//! fixed rule on `(0, 17]` (equal panels, the Gaussian by a recurrence), for
//! `s >= 6` an exact series in `He_j(m / s) eta(j + 1) / (2 s)^j`. Measured
//! (tests in `tests/kernels.rs`): within 1.1e-11 absolute of a 1728 x 1728
//! panel rule (variances <= 25) and of an independent brute-force rule in
//! the pre-activation variables (variances 0.5 .. 1e10, correlations up to
//! 1 - 1e-12); 10-120 microseconds a value, the most where the conditional
//! standard deviation lies in [3/4, 6).
//!
//! ```
//! use nnqft_core::pairexp::tanh_pair;
//! // Independent variables: the mean of an odd function is 0.
//! assert!(tanh_pair(2.0, 0.0, 3.0).abs() < 1e-15);
//! // Very large variances: tanh -> sign, E[sign sign] = (2 / pi) asin(rho).
//! let rho: f64 = 0.5;
//! let big = tanh_pair(1e12, 0.5e12, 1e12);
//! assert!((big - 2.0 / std::f64::consts::PI * rho.asin()).abs() < 1e-5);
//! ```

use crate::quad::NormalRule;
use gauss_quad::GaussLegendre;
use std::num::NonZeroUsize;
use std::sync::OnceLock;

const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
const REM_H: f64 = 1.0;
const REM_PANELS: usize = 17;

/// `sum_p c[p] exp(-(z0 + p h - m)^2 / (2 s^2))`: the Gaussian at equally
/// spaced nodes by the recurrence `g_{p+1} = g_p A_p`, `A_{p+1} = A_p q`,
/// `q = exp(-h^2 / s^2)`, run outward from the node nearest the peak (so
/// nothing underflows before it is needed).
fn gauss_sum(c: &[f64], z0: f64, h: f64, m: f64, inv2s2: f64, q: f64) -> f64 {
    let n = c.len();
    let start = (((m - z0) / h).round().max(0.0) as usize).min(n - 1);
    let d = z0 + start as f64 * h - m;
    let g0 = (-d * d * inv2s2).exp();
    let mut total = c[start] * g0;
    let (mut g, mut a) = (g0, (-(2.0 * d * h + h * h) * inv2s2).exp());
    for &cp in &c[start + 1..] {
        g *= a;
        a *= q;
        total += cp * g;
    }
    let (mut g, mut b) = (g0, (-(-2.0 * d * h + h * h) * inv2s2).exp());
    for &cp in c[..start].iter().rev() {
        g *= b;
        b *= q;
        total += cp * g;
    }
    total
}

struct Rules {
    /// Gauss-Hermite (standard normal), 32 nodes: the positive half
    /// (nodes > 0, weights doubled) for even integrands, and all of it.
    gh_half: Vec<(f64, f64)>,
    gh_u: Vec<f64>,
    gh_w: Vec<f64>,
    /// Remainder rule on (0, REM_PANELS * REM_H]: equal panels, so node i of
    /// panel p is `rem_z0[i] + p REM_H`, with weight times r in `rem_c[i][p]`.
    rem_z0: Vec<f64>,
    rem_c: Vec<Vec<f64>>,
    /// Gauss-Legendre on [-1, 1], 10 nodes.
    gl: Vec<(f64, f64)>,
}

fn rules() -> &'static Rules {
    static R: OnceLock<Rules> = OnceLock::new();
    R.get_or_init(|| {
        let q = NormalRule::new(32);
        let gh_half = q.nodes.iter().zip(&q.weights).filter(|(u, _)| **u > 0.0).map(|(&u, &w)| (u, 2.0 * w)).collect();
        let gl: Vec<(f64, f64)> = GaussLegendre::new(NonZeroUsize::new(10).expect("10")).iter().map(|(t, w)| (*t, *w)).collect();
        // r(z) = -2 / (e^{2z} + 1) is analytic in |Im z| < pi / 2: panels of
        // width 1 resolve it and the Gaussian factor (s >= 3/4) with 10 nodes (r < 4e-15 past 17).
        let half = 0.5 * REM_H;
        let rem_z0: Vec<f64> = gl.iter().map(|&(t, _)| half + half * t).collect();
        let rem_c = gl
            .iter()
            .zip(&rem_z0)
            .map(|(&(_, w), &z0)| (0..REM_PANELS).map(|p| {
                let z = z0 + p as f64 * REM_H;
                half * w * (-2.0 / ((2.0 * z).exp() + 1.0))
            }).collect())
            .collect();
        Rules { gh_half, gh_u: q.nodes.clone(), gh_w: q.weights.clone(), rem_z0, rem_c, gl }
    })
}

/// Dirichlet eta `eta(j + 1)` for odd `j` = 1, 3, .., 79 (index `(j - 1) / 2`).
fn eta_even() -> &'static [f64; 40] {
    static E: OnceLock<[f64; 40]> = OnceLock::new();
    E.get_or_init(|| {
        let pi2 = std::f64::consts::PI * std::f64::consts::PI;
        let mut e = [0.0; 40];
        // eta(2n) = (1 - 2^(1 - 2n)) zeta(2n): closed forms for 2, 4, 6, 8; the
        // alternating sum converges below 1e-18 in 60 terms from 10 on.
        e[0] = pi2 / 12.0;
        e[1] = 7.0 * pi2 * pi2 / 720.0;
        e[2] = 31.0 * pi2 * pi2 * pi2 / 30240.0;
        e[3] = 127.0 * pi2 * pi2 * pi2 * pi2 / 1_209_600.0;
        for (i, v) in e.iter_mut().enumerate().skip(4) {
            let n = (2 * i + 2) as i32;
            *v = (1..=60).rev().map(|k| if k % 2 == 1 { 1.0 } else { -1.0 } / (k as f64).powi(n)).sum();
        }
        e
    })
}

/// `int_0^inf r(z) [N(z; m, s^2) - N(z; -m, s^2)] dz` for `s >= 6` by its
/// Taylor expansion at `z = 0`: with `x = m / s`,
/// `-(2 phi(x) / s) sum_{j odd} He_j(x) eta(j + 1) / (2 s)^j`
/// (`int_0^inf z^j r(z) dz = -2 j! eta(j + 1) / 2^(j + 1)`). The terms shrink
/// geometrically while `|x| + sqrt(j) < s`, so the caller uses it for
/// `|x| < s - 4.5`; where `|x| > 8.5 + 19 / s` the Gaussian is below
/// `phi(8.5)` on `(0, 19]` and the remainder (< 2e-17) is taken as 0.
fn remainder_series(m: f64, s: f64) -> f64 {
    let x = m / s;
    if x.abs() > 8.5 + 19.0 / s {
        return 0.0;
    }
    let eta = eta_even();
    let inv = 1.0 / (2.0 * s);
    // He_j by the recurrence He_{j+1} = x He_j - j He_{j-1}; odd j only summed.
    let (mut h_prev, mut h) = (1.0, x); // He_0, He_1
    let mut pow = inv; // (2 s)^-j
    let mut total = 0.0;
    for i in 0..40 {
        let j = 2 * i + 1;
        let term = h * eta[i] * pow;
        total += term;
        if term.abs() < 1e-18 * total.abs().max(1e-300) && i > 2 {
            break;
        }
        // advance two steps: He_{j+1}, He_{j+2}
        let h1 = x * h - j as f64 * h_prev;
        let h2 = x * h1 - (j + 1) as f64 * h;
        h_prev = h1;
        h = h2;
        pow *= inv * inv;
    }
    -2.0 * INV_SQRT_2PI * (-0.5 * x * x).exp() / s * total
}

/// `E[tanh(m + s w)]`, `w ~ N(0, 1)`, `s >= 0`.
pub fn tanh_mean(m: f64, s: f64) -> f64 {
    let r = rules();
    if s == 0.0 {
        return crate::fastmath::tanh(m);
    }
    if s < 0.75 {
        return r.gh_u.iter().zip(&r.gh_w).map(|(&u, &w)| w * crate::fastmath::tanh(m + s * u)).sum();
    }
    let x = (m / s).abs();
    let rem = if s >= 6.0 && (x < s - 4.5 || x > 8.5 + 19.0 / s) {
        remainder_series(m, s)
    } else {
        let inv2s2 = 0.5 / (s * s);
        let q = (-REM_H * REM_H * 2.0 * inv2s2).exp();
        let sum: f64 = r
            .rem_z0
            .iter()
            .zip(&r.rem_c)
            .map(|(&z0, c)| gauss_sum(c, z0, REM_H, m, inv2s2, q) - gauss_sum(c, z0, REM_H, -m, inv2s2, q))
            .sum();
        sum * INV_SQRT_2PI / s
    };
    libm::erf(m / (s * std::f64::consts::SQRT_2)) + rem
}

/// `E[tanh(z1) tanh(z2)]` for a centred bivariate normal with covariance
/// `[[s11, s12], [s12, s22]]` (see the module docs for the method and its
/// accuracy).
pub fn tanh_pair(s11: f64, s12: f64, s22: f64) -> f64 {
    let (s11, s22) = if s11 <= s22 { (s11, s22) } else { (s22, s11) };
    if !(s11 > 0.0) {
        return 0.0; // z1 = 0 almost surely and tanh(0) = 0
    }
    let a = s11.sqrt();
    let beta = s12 / s11;
    let sv = (s22 - s12 * s12 / s11).max(0.0).sqrt();
    let g = |u: f64| crate::fastmath::tanh(a * u) * tanh_mean(beta * a * u, sv);
    // Rate of change of the outer integrand in u: tanh(a u) on the scale 1/a,
    // H(beta a u, sv) on the scale max(1, sv) / |beta a|.
    let c = a.max((beta * a).abs() / sv.max(1.0));
    let r = rules();
    if c <= 0.5 {
        return r.gh_half.iter().map(|&(u, w)| w * g(u)).sum();
    }
    // Graded panels on [0, 9]: the first of width 0.4 / c, each 1.8x the last.
    let (mut lo, mut width, mut total) = (0.0f64, 0.4 / c, 0.0);
    while lo < 9.0 {
        let hi = (lo + width).min(9.0);
        let (mid, half) = (0.5 * (lo + hi), 0.5 * (hi - lo));
        for &(t, w) in &r.gl {
            let u = mid + half * t;
            total += half * w * 2.0 * INV_SQRT_2PI * (-0.5 * u * u).exp() * g(u);
        }
        lo = hi;
        width *= 1.8;
    }
    total
}
