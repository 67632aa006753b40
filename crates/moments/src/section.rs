//! The moments stage's section of the run report (`report/moments.md`).

use crate::{Outputs, SummaryRow};
use nnqft_cli::fmt_g as num;
use nnqft_core::Pipeline;
use std::fmt::Write;

/// The section's Markdown: the summary table with every note, the slopes,
/// the figures; the per-layer table of deep archs.
pub fn markdown(p: &Pipeline, out: &Outputs, plots: &[&str]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## Correlators and deviations from the GP (moments)\n");
    if !out.summary.is_empty() {
        let _ = writeln!(
            s,
            "Per (arch, order, width): the mean over input tuples of |m_n| = |mean G_n - GP| / |GP| with its delete-one-bag \
             jackknife error, the same mean of the exact finite-N deviation (docs/physics.md §4), the background \
             (statistical floor: the spread of G over bags / |GP|) beside its exact expected value (docs/physics.md §10), \
             chi2/n of the measurement against the exact theory with the bag errors, and the coverage: the fraction of \
             tuples within 1 and 2 exact standard errors of the exact prediction (0.68 and 0.95 for honest Gaussian errors; \
             the tuples of one width are strongly correlated, so a width often sits wholly inside or outside). A tuple is \
             *unreliable* when its bag spread is below half its exact value (p < 0.001 for Gaussian bags) or one bag \
             dominates it (Grubbs' test, p < 0.001). A width is *resolved* when mean |m| exceeds 3 background / sqrt(bags) \
             and at most half its tuples are unreliable; slopes use the resolved widths only. \
             {} bags of {} nets per (arch, width).\n",
            p.sample.bags, p.sample.nets_per_bag
        );
        for (stem, caption) in [
            ("moments_vs_width", "mean |m_n| against N with jackknife error bars; thin lines the background, thick lines the exact finite-N theory"),
            ("deviations_hist", "histograms over input tuples of N m_n, measured (markers, with Poisson errors) against exact (step lines), one panel per arch and order, one colour per width"),
        ] {
            if plots.contains(&stem) {
                let _ = writeln!(s, "![{caption}](plots/{stem}.png)\n\n*{caption}.*\n");
            }
        }
        s.push_str(&nnqft_report::table(
            &["arch", "order", "N", "tuples", "mean abs m", "stderr", "exact mean abs m", "background", "exact background", "chi2/n", "cov 1", "cov 2", "unreliable", "resolved"],
            out.summary.iter().map(|r| {
                vec![
                    r.arch.clone(),
                    r.order.to_string(),
                    r.width.to_string(),
                    r.n_tuples.to_string(),
                    num(r.mean_abs_m),
                    num(r.mean_abs_m_stderr),
                    num(r.mean_abs_exact_m),
                    num(r.mean_background),
                    num(r.mean_exact_background),
                    num(r.chi2_exact / r.n_tuples as f64),
                    format!("{:.2}", r.coverage_1),
                    format!("{:.2}", r.coverage_2),
                    if r.n_unreliable == 0 { "-".to_string() } else { format!("**{}/{}**", r.n_unreliable, r.n_tuples) },
                    (if r.resolved { "yes" } else { "no" }).to_string(),
                ]
            }),
        ));
        let _ = writeln!(s, "\n### Error bars against the exact variance\n");
        let _ = writeln!(s, "{}", honesty(&out.summary));
        let _ = writeln!(s, "\n### Slopes of mean |m_n| against N, and notes\n");
        let mut keys: Vec<(&str, usize)> = out.summary.iter().map(|r| (r.arch.as_str(), r.order)).collect();
        keys.dedup();
        for (arch, order) in keys {
            let r: &SummaryRow = out.summary.iter().find(|r| r.arch == arch && r.order == order).expect("key from rows");
            let resolved: Vec<String> = out.summary.iter().filter(|x| x.arch == arch && x.order == order && x.resolved).map(|x| x.width.to_string()).collect();
            let slope = if r.slope_vs_n.is_finite() {
                format!("slope {} ± {} (exact {}) over N = {}", num(r.slope_vs_n), num(r.slope_vs_n_stderr), num(r.exact_slope_vs_n), resolved.join(", "))
            } else {
                "no slope (fewer than two resolved widths)".to_string()
            };
            let note = r.note.as_ref().map(|n| format!(". **Note:** {n}")).unwrap_or_default();
            let _ = writeln!(s, "- {arch}, n = {order}: {slope}{note}");
        }
        let _ = writeln!(s);
    }
    if !out.layers.is_empty() {
        let _ = writeln!(s, "### Deep nets, per layer\n");
        let _ = writeln!(
            s,
            "Unit 0's pre-activation at layer l (l = L + 1 is the output) per input point: K = E z^2 with its bag error, \
             the excess kurtosis with its jackknife error, the layer recursion's K and leading-order kurtosis \
             (docs/physics.md §8), the exact kurtosis where known (relu, C_b = 0) and z against the best prediction.\n"
        );
        s.push_str(&nnqft_report::table(
            &["arch", "width", "point", "layer", "K", "K stderr", "K recursion", "kurtosis", "stderr", "recursion", "exact", "z"],
            out.layers.iter().map(|r| {
                let mut row = vec![r.arch.clone(), r.width.to_string(), r.point.to_string(), r.layer.to_string()];
                row.extend([r.k, r.k_stderr, r.k_theory, r.kurtosis, r.kurtosis_stderr, r.kurtosis_theory, r.kurtosis_exact, r.z].map(num));
                row
            }),
        ));
        if plots.contains(&"layers") {
            let _ = writeln!(s, "\n![per-layer kurtosis and kernel](plots/layers.png)\n\n*Excess kurtosis and K against the layer, input point 0, with error bars and the recursion (lines).*\n");
        }
    }
    if !out.symmetry.tests.is_empty() {
        s.push_str(&symmetry_markdown(p, &out.symmetry, plots));
    }
    s
}

/// The symmetry tests: one row per (test, width, order) and a figure per test.
fn symmetry_markdown(p: &Pipeline, out: &crate::symmetry::Outputs, plots: &[&str]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### Symmetry tests
");
    let _ = writeln!(
        s,
        "Each test compares the correlators of an ensemble with those of its image (docs/physics.md §13): for an output \
         rotation, the same nets with a seeded random rotation R applied to their outputs; for input rotations and \
         translations, the arch sampled at the transformed inputs. Per bag the difference of every tuple is one draw of an \
         iid vector; chi2 is Hotelling's T^2 of its mean over the bags (the tuples' correlations included; directions that \
         do not vary at all are exact identities and are dropped, so dof can be below the number of tuples), shown as \
         chi2/dof beside its central 99 % band. *exact* is the same statistic about the exact difference (zero for a \
         symmetry, the finite-width value for a breaking). Output rotations also decompose G_(i1..in) at one input into \
         invariant (Kronecker-delta) tensors: the coefficient beside its exact value, and the residual's largest |z|. \
         p < {} counts as not invariant.\n",
        crate::symmetry::ALPHA
    );
    let _ = writeln!(s, "Tests: {}.\n", p.symmetry.test.iter().map(|t| format!("{} ({} of {}{})", t.name, t.kind.name(), t.arch, t.image.as_deref().map(|i| format!(" against {i}")).unwrap_or_default())).collect::<Vec<_>>().join("; "));
    s.push_str(&nnqft_report::table(
        &["test", "N", "order", "dof / tuples", "chi2/dof [99 % band]", "p", "p vs exact", "coefficient (exact)", "residual max z", "verdict"],
        out.tests.iter().map(|r| {
            let alpha = crate::symmetry::ALPHA;
            let invariant = if r.invariance.p_value.is_nan() { "-" } else if r.invariance.p_value < alpha { "**not invariant**" } else { "invariant" };
            let exact = if r.exact.p_value.is_nan() { "exact unknown" } else if r.exact.p_value < alpha { "**disagrees with exact**" } else { "agrees with exact" };
            vec![
                r.test.clone(),
                r.width.to_string(),
                r.order.to_string(),
                format!("{} / {}", r.invariance.rank, r.tuples),
                format!("{} [{}, {}]", num(r.invariance.per_dof), num(r.invariance.band99.0), num(r.invariance.band99.1)),
                num(r.invariance.p_value),
                num(r.exact.p_value),
                if r.coefficient.is_nan() { "-".to_string() } else { format!("{} ± {} ({})", num(r.coefficient), num(r.coefficient_stderr), num(r.coefficient_exact)) },
                if r.residual_max_z.is_nan() { "-".to_string() } else { num(r.residual_max_z) },
                format!("{invariant}; {exact}"),
            ]
        }),
    ));
    for t in &p.symmetry.test {
        let stem = format!("symmetry_{}", t.name);
        if plots.contains(&stem.as_str()) {
            let caption = format!("{}: G - G(image) per tuple with its error bar, and the exact difference (lines)", t.name);
            let _ = writeln!(s, "\n![{caption}](plots/{stem}.png)\n\n*{caption}.*");
        }
    }
    let _ = writeln!(s);
    s
}

/// One line per (arch, order): measured over exact background (range over
/// the widths) and the flagged tuples, so a reader sees at once whether the
/// printed error bars can be trusted.
fn honesty(summary: &[SummaryRow]) -> String {
    let mut s = String::new();
    let mut keys: Vec<(&str, usize)> = summary.iter().map(|r| (r.arch.as_str(), r.order)).collect();
    keys.dedup();
    for (arch, order) in keys {
        let rows: Vec<&SummaryRow> = summary.iter().filter(|r| r.arch == arch && r.order == order).collect();
        let ratios: Vec<f64> = rows.iter().map(|r| r.background_ratio).filter(|x| x.is_finite()).collect();
        let (lo, hi) = ratios.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
        let flagged: usize = rows.iter().map(|r| r.n_unreliable).sum();
        let total: usize = rows.iter().map(|r| r.n_tuples).sum();
        let verdict = if flagged == 0 {
            "no tuple flagged".to_string()
        } else {
            format!("**{flagged} of {total} tuples flagged unreliable**: their error bars understate the true error")
        };
        let _ = writeln!(s, "- {arch}, n = {order}: measured / exact background {} to {} over the widths; {verdict}", num(lo), num(hi));
    }
    s
}
