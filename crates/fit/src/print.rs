//! The printed coupling table, shaped like the seed's, with the seed's
//! numbers only beside its own protocol.

use crate::*;
use nnqft_cli::{fmt_g, fmt_pm};
use nnqft_core::Pipeline;

/// The coupling table, shaped like the seed's (model, couplings, test MAPE,
/// MSE), with the seed's published values beside ours.
pub fn format_table(p: &Pipeline, rows: &[CouplingRow]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let mut groups: Vec<(String, usize, u64, &str)> = Vec::new();
    for r in rows {
        let g = (r.arch.clone(), r.width, r.cutoff.to_bits(), r.propagator);
        if r.order == 4 && r.model.starts_with('M') && !groups.contains(&g) {
            groups.push(g);
        }
    }
    for (arch, width, cut, prop) in groups {
        let cutoff = f64::from_bits(cut);
        let act = p.arch(&arch).map(|a| a.activation);
        let mine: Vec<&CouplingRow> = rows.iter().filter(|r| r.arch == arch && r.width == width && (r.cutoff.to_bits() == cut || r.model.starts_with('u'))).collect();
        let n = mine.first().map_or((0, 0), |r| (r.n_train, r.n_test));
        let _ = writeln!(s, "\n{arch}  N = {width}  L = {cutoff}  propagator {prop}  ({} train / {} test 4-point tuples; MAPE in %)", n.0, n.1);
        // The seed's numbers only beside a run of the seed's own protocol.
        let protocol = p.arch(&arch).map_or(Err("arch not in the pipeline".to_string()), |a| seed::seed_match(a, width, cutoff));
        let seed_rows = match (&protocol, act) {
            (Ok(_), Some(act)) => seed::seed_rows(act),
            _ => &[],
        };
        let seed_cols = |a: &str, b: &str, c: &str| if protocol.is_ok() { format!(" | {a:<28} {b:>7} {c:>8}") } else { String::new() };
        let unresolved = |order: usize| mine.iter().find(|r| r.order == order && !r.resolved).map(|r| (r.signal_train, r.signal_test));
        if let Some((st, ss)) = unresolved(4) {
            let _ = writeln!(
                s,
                "  4-point signal NOT resolved above the bags' noise: sum |G4 - G4_GP| / sum stderr = {} (train), {} (test), below {SIGNAL_MIN}; the couplings and test errors measure noise, so the models are not ranked (the signal grows as sqrt(nets) / N: more nets or a smaller N)",
                fmt_g(st),
                fmt_g(ss)
            );
        }
        let _ = writeln!(
            s,
            "  {:<9} {:<20} {:<20} {:<20} {:>9} {:>9} {:>9} {:>8}{}",
            "model", "lambda0", "lambda2", "lambda_nl", "test MAPE", "test MSE", "MAPE(ex)", "cond", seed_cols("seed (l0, l2, lNL)", "MAPE", "MSE")
        );
        let noise4 = unresolved(4).is_some();
        for r in mine.iter().filter(|r| r.order == 4 && r.model.starts_with('M')) {
            let seed = seed_rows.iter().find(|x| x.model == r.model);
            let seed_txt = seed.map_or(String::new(), |x| {
                format!("({}, {}, {})", fmt_g(x.couplings.0), fmt_g(x.couplings.1), fmt_g(x.couplings.2))
            });
            let (sm, sq) = seed.map_or((String::new(), String::new()), |x| (fmt_g(x.mape), fmt_g(x.mse)));
            let (a, b, c) = if r.identifiable {
                (fmt_pm(r.coef[0], r.coef_stderr[0]), fmt_pm(r.coef[1], r.coef_stderr[1]), fmt_pm(r.coef[2], r.coef_stderr[2]))
            } else {
                ("not identifiable".into(), "-".into(), "-".into())
            };
            let _ = writeln!(
                s,
                "  {:<9} {:<20} {:<20} {:<20} {:>9} {:>9} {:>9} {:>8}{}",
                r.model,
                a,
                b,
                c,
                if noise4 { "noise".into() } else { fmt_g(r.test_mape) },
                if noise4 { "noise".into() } else { fmt_g(r.test_mse) },
                fmt_g(r.test_mape_exact),
                fmt_g(r.condition),
                seed_cols(&seed_txt, &sm, &sq)
            );
        }
        for r in mine.iter().filter(|r| !(r.order == 4 && r.model.starts_with('M'))) {
            let what = match r.model.as_str() {
                "lambda_bar" => format!("lambda_bar = {}  (exact {})", fmt_pm(r.value, r.value_stderr), fmt_g(r.exact_value)),
                "M1+kappa" if r.identifiable => format!(
                    "6-point from lambda0 + kappa: kappa = {} (exact {}), test MAPE {} MSE {} (vs exact: MAPE {})",
                    fmt_pm(r.value, r.value_stderr),
                    fmt_g(r.exact_value),
                    fmt_g(r.test_mape),
                    fmt_g(r.test_mse),
                    fmt_g(r.test_mape_exact)
                ),
                "M1" => format!("6-point from lambda0 alone: test MAPE {} MSE {} (vs exact: MAPE {})", fmt_g(r.test_mape), fmt_g(r.test_mse), fmt_g(r.test_mape_exact)),
                "M0" => format!("6-point, free theory: test MAPE {} MSE {}", fmt_g(r.test_mape), fmt_g(r.test_mse)),
                "u4" | "u6" => format!("{} = {}  (exact {}; K_W over R^d)", r.model, fmt_pm(r.value, r.value_stderr), fmt_g(r.exact_value)),
                _ => format!("{}: {}", r.model, r.note.clone().unwrap_or_default()),
            };
            let _ = writeln!(s, "  {what}");
        }
        if let Some((st, ss)) = unresolved(6) {
            let _ = writeln!(s, "  6-point signal not resolved above the bags' noise ({} train, {} test, below {SIGNAL_MIN}): the 6-point lines above measure noise", fmt_g(st), fmt_g(ss));
        }
        for r in mine.iter().filter(|r| !r.identifiable) {
            let _ = writeln!(s, "  {} {}-point: {}", r.model, r.order, r.note.clone().unwrap_or_default());
        }
        match protocol {
            Ok(sp) => {
                let _ = writeln!(s, "  seed: same protocol (d_in = 1, sigma_w = {}, sigma_b = {}, the seed's inputs, N = {}, L = {}); its code fitted raw G4, swapped train/test and (relu) kept a bias, so the numbers need not agree; our sign follows lambda_m = -(G4 - G4_GP) / (24 int prod K).", sp.sigma_w, sp.sigma_b, sp.width, sp.cutoff);
            }
            Err(why) => {
                let _ = writeln!(s, "  no reference-talk values: {why}.");
            }
        }
    }
    s
}

/// One width of a translation test whose arch and image both have fit runs:
/// the constant coupling at both positions, their ratio and the M2 couplings.
pub struct TranslationRow {
    pub test: String,
    pub arch: String,
    pub image: String,
    /// The common shift, formatted.
    pub shift: String,
    pub width: usize,
    pub cutoff: f64,
    pub propagator: &'static str,
    /// (lambda_bar, stderr, exact) at the arch's inputs and at the image's.
    pub here: (f64, f64, f64),
    pub there: (f64, f64, f64),
    pub ratio: f64,
    pub ratio_stderr: f64,
    pub ratio_exact: f64,
    /// M2's (lambda0, lambda2) with errors at both positions, "-" when not identifiable.
    pub m2_here: String,
    pub m2_there: String,
}

/// For every `translation` symmetry test whose arch and image both have fit
/// runs (same cutoff and propagator): lambda_bar and the M2 couplings at
/// both positions, with the exact lambda_bar, so the report says how far
/// seed 000's "constant coupling" moves when the data are shifted
/// (docs/physics.md §13).
pub fn translation_rows(p: &Pipeline, rows: &[CouplingRow]) -> Vec<TranslationRow> {
    use nnqft_core::pipeline::SymmetryKind;
    let mut out = Vec::new();
    for t in p.symmetry.test.iter().filter(|t| t.kind == SymmetryKind::Translation) {
        let (Some(image), Some(a), Some(b)) = (t.image.as_deref(), p.arch(&t.arch), t.image.as_deref().and_then(|i| p.arch(i))) else { continue };
        let shift: Vec<String> = b.inputs[0].iter().zip(&a.inputs[0]).map(|(y, x)| fmt_g(y - x)).collect();
        let find = |arch: &str, width: usize, model: &str, like: &CouplingRow| {
            rows.iter().find(|r| r.arch == arch && r.width == width && r.model == model && r.order == 4 && r.cutoff.to_bits() == like.cutoff.to_bits() && r.propagator == like.propagator)
        };
        for here in rows.iter().filter(|r| r.arch == t.arch && r.model == "lambda_bar") {
            let Some(there) = find(image, here.width, "lambda_bar", here) else { continue };
            let ratio = there.value / here.value;
            let m2 = |arch: &str| {
                find(arch, here.width, "M2", here).filter(|r| r.identifiable).map_or("-".to_string(), |r| format!("({}, {})", fmt_pm(r.coef[0], r.coef_stderr[0]), fmt_pm(r.coef[1], r.coef_stderr[1])))
            };
            out.push(TranslationRow {
                test: t.name.clone(),
                arch: t.arch.clone(),
                image: image.to_string(),
                shift: format!("({})", shift.join(", ")),
                width: here.width,
                cutoff: here.cutoff,
                propagator: here.propagator,
                here: (here.value, here.value_stderr, here.exact_value),
                there: (there.value, there.value_stderr, there.exact_value),
                ratio,
                ratio_stderr: ratio.abs() * ((here.value_stderr / here.value).powi(2) + (there.value_stderr / there.value).powi(2)).sqrt(),
                ratio_exact: there.exact_value / here.exact_value,
                m2_here: m2(&t.arch),
                m2_there: m2(image),
            });
        }
    }
    out
}

/// [`translation_rows`] for the terminal; empty when there are none.
pub fn format_translations(p: &Pipeline, rows: &[CouplingRow]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let mut last = String::new();
    for r in translation_rows(p, rows) {
        if r.test != last {
            let _ = writeln!(s, "\n{}: {} -> {} (inputs shifted by {}); a coupling constant in the data would give ratio 1", r.test, r.arch, r.image, r.shift);
            last = r.test.clone();
        }
        let _ = writeln!(
            s,
            "  N = {:<5} L = {:<5} {:<4} lambda_bar {} (exact {}) -> {} (exact {}): ratio {} (exact {});  M2 (lambda0, lambda2) {} -> {}",
            r.width,
            r.cutoff,
            r.propagator,
            fmt_pm(r.here.0, r.here.1),
            fmt_g(r.here.2),
            fmt_pm(r.there.0, r.there.1),
            fmt_g(r.there.2),
            fmt_pm(r.ratio, r.ratio_stderr),
            fmt_g(r.ratio_exact),
            r.m2_here,
            r.m2_there
        );
    }
    s
}
