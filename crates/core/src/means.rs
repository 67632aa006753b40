//! Ensembles whose parameters have means (docs/physics.md §12): the
//! Gaussian expectations of one hidden unit with a shifted pre-activation,
//! and the one- and two-point functions of a single-hidden-layer net.
//!
//! With a weight `N(mu_w / d, sw^2 / d)` and a bias `N(mu_b, sb^2)`, a
//! first-layer pre-activation is `z(x) ~ N(m(x), S(x, x))` with
//! `m(x) = mu_b + mu_w sum_j x_j / d` ([`ArchSpec::pre_mean`]); its covariance
//! is unchanged. The output `f = b + sum_i W_i h_i` with `W_i ~ N(mu_w_out /
//! N, sw^2 / N)`, `b ~ N(mu_b_out, sb^2)` then has, exactly at every width N,
//!
//! ```text
//! E f(x)           = mu_b_out + mu_w_out E h(x)
//! Cov(f_i(x), f_j(y)) = delta_ij (sb^2 + sw^2 E[h(x) h(y)]) + (mu_w_out^2 / N) Cov(h(x), h(y))
//! ```
//!
//! (the GP keeps the first term; the last, shared by all outputs, is
//! what an output-weight mean adds at finite width). How the expectations are computed:
//! `E h(z)` in closed form (relu: `m Phi(m/s) + s phi(m/s)`; erf:
//! `erf(m / sqrt(1 + 2 s^2))`; gauss: `exp(m + s^2 / 2)`; tanh by
//! [`crate::pairexp::tanh_mean`]). `E[h(z1) h(z2)]` conditions on `z1`:
//! `z2 | z1` is normal, its `E h` is the closed form above, and the outer
//! integral over `z1` is composite Gauss-Legendre on `[-12, 12]` standard
//! deviations (48 panels of 16 nodes, split at relu's kink), measured in
//! `tests/means.rs` against the zero-mean closed forms (to 1e-13) and an
//! independent brute-force 2-d rule with means.

use crate::{Activation, ArchSpec};
use gauss_quad::GaussLegendre;
use std::sync::OnceLock;

const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// `Phi(x)`, the standard normal distribution function.
fn norm_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// `E[act(m + s w)]`, `w ~ N(0, 1)`, `s >= 0` (the raw activation, without
/// the gauss-net's normalisation).
///
/// ```
/// use nnqft_core::{Activation, means::unit_mean};
/// // E relu(z) for z ~ N(0, 1.25): sqrt(1.25 / (2 pi))
/// let want = (1.25f64 / (2.0 * std::f64::consts::PI)).sqrt();
/// assert!((unit_mean(Activation::Relu, 0.0, 1.25f64.sqrt()) - want).abs() < 1e-15);
/// assert_eq!(unit_mean(Activation::Erf, 0.0, 2.0), 0.0);
/// ```
pub fn unit_mean(act: Activation, m: f64, s: f64) -> f64 {
    match act {
        Activation::Relu => {
            if s == 0.0 {
                return m.max(0.0);
            }
            let t = m / s;
            m * norm_cdf(t) + s * INV_SQRT_2PI * (-0.5 * t * t).exp()
        }
        Activation::Erf => libm::erf(m / (1.0 + 2.0 * s * s).sqrt()),
        Activation::Gauss => (m + 0.5 * s * s).exp(),
        Activation::Tanh => crate::pairexp::tanh_mean(m, s),
    }
}

/// The outer rule of [`pair_mean`]: 16 Gauss-Legendre nodes on [-1, 1].
fn gl16() -> &'static [(f64, f64)] {
    static RULE: OnceLock<Vec<(f64, f64)>> = OnceLock::new();
    RULE.get_or_init(|| {
        GaussLegendre::new(std::num::NonZeroUsize::new(16).expect("16 > 0")).iter().map(|(x, w)| (*x, *w)).collect()
    })
}

/// `E[act(z1) act(z2)]` for `(z1, z2)` normal with means `(m1, m2)` and
/// covariance `[[s11, s12], [s12, s22]]` (raw activations).
///
/// ```
/// use nnqft_core::{Activation, means::pair_mean};
/// // exp(z1) exp(z2) is lognormal: exp(m1 + m2 + Var(z1 + z2) / 2)
/// let v = pair_mean(Activation::Gauss, 0.2, -0.1, 0.5, 0.3, 0.7);
/// assert!((v - (0.1f64 + 0.5 * (0.5 + 0.6 + 0.7)).exp()).abs() < 1e-14);
/// ```
pub fn pair_mean(act: Activation, m1: f64, m2: f64, s11: f64, s12: f64, s22: f64) -> f64 {
    if act == Activation::Gauss {
        return (m1 + m2 + 0.5 * (s11 + 2.0 * s12 + s22)).exp();
    }
    // Condition on the variable of the larger variance (better conditioned).
    let (m1, m2, s11, s22) = if s11 >= s22 { (m1, m2, s11, s22) } else { (m2, m1, s22, s11) };
    let raw = |z: f64| match act {
        Activation::Relu => z.max(0.0),
        Activation::Erf => libm::erf(z),
        Activation::Tanh => z.tanh(),
        Activation::Gauss => unreachable!("closed form above"),
    };
    if !(s11 > 0.0) {
        return raw(m1) * raw(m2);
    }
    let a = s11.sqrt();
    let beta = s12 / a;
    let sv = (s22 - s12 * s12 / s11).max(0.0).sqrt();
    // z1 = m1 + a u, z2 | u ~ N(m2 + beta u, sv^2)
    let g = |u: f64| raw(m1 + a * u) * unit_mean(act, m2 + beta * u, sv) * INV_SQRT_2PI * (-0.5 * u * u).exp();
    let mut breaks = vec![-12.0, 12.0];
    if act == Activation::Relu {
        for kink in [-m1 / a, if beta != 0.0 && sv == 0.0 { -m2 / beta } else { f64::NAN }] {
            if kink.abs() < 12.0 {
                breaks.push(kink);
            }
        }
    }
    breaks.sort_by(f64::total_cmp);
    let rule = gl16();
    let mut total = 0.0;
    for w in breaks.windows(2) {
        let (lo, hi) = (w[0], w[1]);
        let panels = ((hi - lo) / 0.5).ceil().max(1.0) as usize;
        let h = (hi - lo) / panels as f64;
        for p in 0..panels {
            let mid = lo + (p as f64 + 0.5) * h;
            total += rule.iter().map(|&(x, wt)| wt * g(mid + 0.5 * h * x)).sum::<f64>() * 0.5 * h;
        }
    }
    total
}

impl ArchSpec {
    /// `E h(x)`: one hidden unit's mean at input `x` (with the gauss-net's
    /// normalisation), for a first-layer pre-activation `N(m(x), S(x, x))`.
    pub fn unit_mean_at(&self, x: &[f64]) -> f64 {
        let norm = if self.activation == Activation::Gauss { (-self.s(x, x)).exp() } else { 1.0 };
        norm * unit_mean(self.activation, self.pre_mean(x), self.s(x, x).sqrt())
    }

    /// `E[h(x) h(y)]` for one hidden unit (with the gauss-net's normalisation).
    pub fn unit_pair_at(&self, x: &[f64], y: &[f64]) -> f64 {
        let norm = if self.activation == Activation::Gauss { (-self.s(x, x) - self.s(y, y)).exp() } else { 1.0 };
        norm * pair_mean(self.activation, self.pre_mean(x), self.pre_mean(y), self.s(x, x), self.s(x, y), self.s(y, y))
    }

    /// The one-point function `E f_i(x) = mu_b_out + mu_w_out E h(x)` of a
    /// single-hidden-layer net, the same for every output i and exact at
    /// every width.
    ///
    /// ```
    /// use nnqft_core::{ArchSpec, Activation};
    /// let mut a = ArchSpec::single("r", Activation::Relu, 1.0, 0.5, vec![vec![1.0]]);
    /// a.mu_w_out = 0.5;
    /// let want = 0.5 * (1.25f64 / (2.0 * std::f64::consts::PI)).sqrt();
    /// assert!((a.mean_fn(&[1.0]) - want).abs() < 1e-15);
    /// ```
    pub fn mean_fn(&self, x: &[f64]) -> f64 {
        if self.mu_w_out == 0.0 {
            return self.mu_b_out;
        }
        self.mu_b_out + self.mu_w_out * self.unit_mean_at(x)
    }

    /// `Cov(f_i(x), f_j(y))` of a single-hidden-layer net at width `n`
    /// (`None`: the GP limit), exact with means:
    /// `delta_ij (sb^2 + sw^2 E[h(x) h(y)]) + (mu_w_out^2 / n) Cov(h(x), h(y))`.
    /// The last term is shared by all outputs (their weights have the same
    /// mean on the same hidden units), so outputs are uncorrelated only when
    /// `mu_w_out = 0`. Equals [`ArchSpec::kernel`] when the parameters are
    /// centred and `same_output`.
    pub fn covariance(&self, x: &[f64], y: &[f64], n: Option<usize>, same_output: bool) -> f64 {
        let finite = match n {
            Some(n) if self.mu_w_out != 0.0 => {
                let hh = self.unit_pair_at(x, y);
                self.mu_w_out * self.mu_w_out / n as f64 * (hh - self.unit_mean_at(x) * self.unit_mean_at(y))
            }
            _ => 0.0,
        };
        if !same_output {
            return finite;
        }
        if !self.has_hidden_means() {
            return self.kernel(x, y) + finite;
        }
        let sw2 = self.sigma_w * self.sigma_w;
        self.sigma_b * self.sigma_b + sw2 * self.unit_pair_at(x, y) + finite
    }
}

/// The exact n-point functions `E prod_j f(x_{t_j})` of one output of a
/// single-hidden-layer net with parameter means, at any width and of any
/// order (odd ones too), and those of its Gaussian process (mean function
/// [`ArchSpec::mean_fn`], covariance [`ArchSpec::covariance`] at `None`).
///
/// `f = b + sum_{u <= N} w_u h_u` is a Gaussian plus N iid terms `X = w h`,
/// so its joint cumulants over a tuple are those of `b` (mu_b_out at order
/// 1, sb^2 at order 2) plus N times those of `X`. The moments of `X` are
/// `E[w^m] M(t)` with `w ~ N(mu_w_out / N, sw^2 / N)` and `M` one unit's
/// moments with shifted pre-activations ([`crate::exact::UnitMoments`]:
/// tensor rules for relu, erf and tanh, the closed form for gauss); moments
/// and cumulants are converted by the subset recursion
/// `mu(S) = sum_{T subset S, T contains min S} kappa(T) mu(S \ T)`.
/// With centred parameters this reproduces [`crate::exact::ExactTheory`]
/// (tested to 1e-12 relative).
#[derive(Clone, Debug)]
pub struct MeanTheory {
    sw: f64,
    sb: f64,
    mu_w_out: f64,
    mu_b_out: f64,
    mean: Vec<f64>,
    cov: Vec<Vec<f64>>,
    m: crate::exact::UnitMoments,
}

impl MeanTheory {
    /// Prepares one unit's moments of every order up to the largest of `orders`.
    ///
    /// ```
    /// use nnqft_core::{ArchSpec, Activation, exact::Accuracy, means::MeanTheory};
    /// let mut a = ArchSpec::single("r", Activation::Relu, 1.0, 0.5, vec![vec![1.0]]);
    /// a.mu_w_out = 0.5;
    /// let th = MeanTheory::new(&a, &[1, 2], Accuracy::default());
    /// let want = 0.5 * (1.25f64 / (2.0 * std::f64::consts::PI)).sqrt();
    /// assert!((th.moment(&[0], 10) - want).abs() < 1e-9);
    /// assert!((th.gp(&[0]) - want).abs() < 1e-15);
    /// ```
    pub fn new(arch: &ArchSpec, orders: &[usize], acc: crate::exact::Accuracy) -> Self {
        assert_eq!(arch.hidden_layers, 1, "MeanTheory is for one hidden layer");
        let max = orders.iter().copied().max().unwrap_or(0);
        let all: Vec<usize> = (1..=max).collect();
        let xs = &arch.inputs;
        MeanTheory {
            sw: arch.sigma_w,
            sb: arch.sigma_b,
            mu_w_out: arch.mu_w_out,
            mu_b_out: arch.mu_b_out,
            mean: xs.iter().map(|x| arch.mean_fn(x)).collect(),
            cov: xs.iter().map(|x| xs.iter().map(|y| arch.covariance(x, y, None, true)).collect()).collect(),
            m: crate::exact::UnitMoments::new(arch, &all, acc),
        }
    }

    /// The Gaussian-process value: the sum over partitions of the tuple
    /// into singletons and pairs of `prod mean * prod K`.
    pub fn gp(&self, t: &[usize]) -> f64 {
        let kappa = |s: &[usize]| match s.len() {
            1 => self.mean[s[0]],
            2 => self.cov[s[0]][s[1]],
            _ => 0.0,
        };
        moments_from_cumulants(t, &kappa)
    }

    /// The exact `E prod_j f(x_{t_j})` at width `n` (one output).
    pub fn moment(&self, t: &[usize], n: usize) -> f64 {
        self.moment_outputs(t, &vec![0; t.len()], n)
    }

    /// The exact `E prod_j f_{o_j}(x_{t_j})` at width `n`, outputs `o`
    /// (docs/physics.md §12): f = b + sum of N iid terms `W_{o u} h_u(x)`, and
    /// one term's joint moment over slots S is
    /// `prod over distinct outputs o of E W^(count of o in S)` times the unit
    /// moment `M(inputs of S)` (the output rows are independent, W of h);
    /// cumulants add over the N terms, the bias adds `mu_b_out` at order 1
    /// and `sb^2 delta_oo'` at order 2.
    ///
    /// ```
    /// use nnqft_core::{ArchSpec, Activation, exact::Accuracy, means::MeanTheory};
    /// let mut a = ArchSpec::single("e", Activation::Erf, 1.0, 0.5, vec![vec![0.3]]);
    /// a.d_out = 2;
    /// let th = MeanTheory::new(&a, &[1, 2, 3], Accuracy::default());
    /// // centred output layers: different outputs are uncorrelated, odd orders vanish
    /// assert_eq!(th.moment_outputs(&[0, 0], &[0, 1], 4), 0.0);
    /// assert_eq!(th.moment_outputs(&[0, 0, 0], &[0, 0, 1], 4), 0.0);
    /// assert!((th.moment_outputs(&[0, 0], &[1, 1], 4) - th.moment(&[0, 0], 4)).abs() < 1e-15);
    /// ```
    pub fn moment_outputs(&self, t: &[usize], outputs: &[usize], n: usize) -> f64 {
        assert_eq!(t.len(), outputs.len(), "one output per slot");
        let k = self.mean.len();
        // one variable per (output, input) slot; sorted ids group slots by output
        let vars: Vec<usize> = outputs.iter().zip(t).map(|(o, a)| o * k + a).collect();
        let nf = n as f64;
        // E w^j for w ~ N(mu / n, sw^2 / n)
        let (mw, vw) = (self.mu_w_out / nf, self.sw * self.sw / nf);
        let mut wpow = vec![1.0, mw];
        for j in 2..=t.len() {
            wpow.push(mw * wpow[j - 1] + (j - 1) as f64 * vw * wpow[j - 2]);
        }
        let one_term = |s: &[usize]| {
            let mut w = 1.0;
            let mut i = 0;
            while i < s.len() {
                let j = i + s[i..].iter().take_while(|&&v| v / k == s[i] / k).count();
                w *= wpow[j - i];
                i = j;
            }
            if w == 0.0 {
                return 0.0;
            }
            let ins: Vec<usize> = s.iter().map(|v| v % k).collect();
            w * self.m.get(&ins)
        };
        let x_cum = cumulants(&vars, &one_term);
        let kappa = |s: &[usize]| {
            let bias = match s.len() {
                1 => self.mu_b_out,
                2 if s[0] / k == s[1] / k => self.sb * self.sb,
                _ => 0.0,
            };
            bias + nf * x_cum[s]
        };
        moments_from_cumulants(&vars, &kappa)
    }

    /// `moment - gp`.
    pub fn delta(&self, t: &[usize], n: usize) -> f64 {
        self.moment(t, n) - self.gp(t)
    }
}

/// Sub-tuple of `t` at the positions in `mask`.
fn sub(t: &[usize], mask: u32) -> Vec<usize> {
    (0..t.len()).filter(|&i| mask >> i & 1 == 1).map(|i| t[i]).collect()
}

/// Joint cumulants of every sub-tuple of `t` (keyed by the sub-tuple, which
/// identifies it up to order: cumulants are symmetric), from the moments.
fn cumulants(t: &[usize], moment: &dyn Fn(&[usize]) -> f64) -> std::collections::HashMap<Vec<usize>, f64> {
    let n = t.len();
    let mut kappa: std::collections::HashMap<Vec<usize>, f64> = std::collections::HashMap::new();
    // by increasing size, so every proper subset is known
    let mut masks: Vec<u32> = (1..1u32 << n).collect();
    masks.sort_by_key(|m| m.count_ones());
    for s in masks {
        let key = sorted(sub(t, s));
        if kappa.contains_key(&key) {
            continue;
        }
        let low = s & s.wrapping_neg();
        let rest = s ^ low;
        // mu(S) = sum over T subset S containing low of kappa(T) mu(S \ T); T = S is the unknown
        let mut acc = moment(&key);
        let mut r = rest;
        loop {
            // T = low | (rest \ r') over proper subsets: iterate r over subsets of rest, T = low | r, T != S
            if r != rest {
                let tm = low | r;
                let other = sorted(sub(t, s ^ tm));
                acc -= kappa[&sorted(sub(t, tm))] * moment(&other);
            }
            if r == 0 {
                break;
            }
            r = (r - 1) & rest;
        }
        kappa.insert(key, acc);
    }
    kappa
}

fn sorted(mut v: Vec<usize>) -> Vec<usize> {
    v.sort_unstable();
    v
}

/// `E prod` over `t` from the joint cumulants `kappa(sub-tuple)`: the same
/// subset recursion read the other way.
fn moments_from_cumulants(t: &[usize], kappa: &dyn Fn(&[usize]) -> f64) -> f64 {
    fn mu(t: &[usize], s: u32, kappa: &dyn Fn(&[usize]) -> f64) -> f64 {
        if s == 0 {
            return 1.0;
        }
        let low = s & s.wrapping_neg();
        let rest = s ^ low;
        let mut total = 0.0;
        let mut r = rest;
        loop {
            let tm = low | r;
            total += kappa(&sorted(sub(t, tm))) * mu(t, s ^ tm, kappa);
            if r == 0 {
                break;
            }
            r = (r - 1) & rest;
        }
        total
    }
    mu(t, (1u32 << t.len()) - 1, kappa)
}
