//! Hostile pipeline files, generated (proptest, fixed seed): every field
//! takes a valid value, a wrong type, an out-of-range or non-finite value,
//! an absurd size, or is missing, and unknown keys appear. Each config gives
//! either a complete run or one clear error line, never a panic or a
//! partial output.

use nnqft_core::Pipeline;
use proptest::prelude::*;
use std::cell::Cell;
use proptest::test_runner::{Config, RngSeed};

/// One field's value as TOML text (None: the key is left out).
fn field(valid: Vec<&'static str>, hostile: Vec<&'static str>) -> impl Strategy<Value = Option<String>> {
    let valid: Vec<String> = valid.into_iter().map(String::from).collect();
    let hostile: Vec<String> = hostile.into_iter().map(String::from).collect();
    // ~20 fields per config: mostly valid values, so that a good share of
    // configs is valid as a whole and runs.
    prop_oneof![
        45 => proptest::sample::select(valid).prop_map(Some),
        3 => proptest::sample::select(hostile).prop_map(Some),
        1 => Just(None),
    ]
}

/// Valid inputs for `d` dimensions (1-4 points), or a hostile value.
fn inputs_for(d: usize) -> impl Strategy<Value = Option<String>> {
    let coord = proptest::sample::select(vec!["-1.0", "-0.2", "0.0", "0.3", "1.0"]);
    let point = proptest::collection::vec(coord, d).prop_map(|c| format!("[{}]", c.join(", ")));
    let valid = proptest::collection::vec(point, 1..5).prop_map(|ps| Some(format!("[{}]", ps.join(", "))));
    let hostile = proptest::sample::select(vec!["[]", "[[nan]]", "[[1.0, inf]]", "[[\"a\"]]", "[1.0, 2.0]", "[[]]", "[[0.5, 0.5, 0.5, 0.5]]"])
        .prop_map(|h| Some(h.to_string()));
    prop_oneof![45 => valid, 3 => hostile, 1 => Just(None)]
}

fn arch_table() -> impl Strategy<Value = String> {
    let d_in = prop_oneof![
        45 => (1usize..3).prop_map(|d| (d.to_string(), d)),
        3 => proptest::sample::select(vec!["0", "-1", "1.5", "\"1\"", "99999999999"]).prop_map(|h| (h.to_string(), 1)),
    ];
    (
        field(vec!["\"a\"", "\"b\"", "\"c-1\""], vec!["\"\"", "\"../x\"", "\"a b\"", "7"]),
        field(vec!["\"erf\"", "\"relu\"", "\"gauss\"", "\"tanh\""], vec!["\"swish\"", "\"ERF\"", "1"]),
        d_in.prop_flat_map(|(text, d)| (Just(text), inputs_for(d))),
        field(vec!["1.0", "0.5", "0.0", "2.0"], vec!["-1.0", "nan", "inf", "-inf", "\"x\"", "true"]),
        field(vec!["1.0", "0.0", "0.3"], vec!["-0.1", "nan", "inf", "[]"]),
        field(vec!["1"], vec!["0", "2", "-1"]),
        proptest::bool::weighted(0.05),
    )
        .prop_map(|(name, act, (d, inputs), sw, sb, layers, typo)| {
            let mut t = String::from("[[sample.arch]]\n");
            for (k, v) in [("name", name), ("activation", act), ("d_in", Some(d)), ("sigma_w", sw), ("sigma_b", sb), ("inputs", inputs), ("hidden_layers", layers)] {
                if let Some(v) = v {
                    t.push_str(&format!("{k} = {v}\n"));
                }
            }
            if typo {
                t.push_str("sigma_ww = 1.0\n");
            }
            t
        })
}

fn pipeline_text() -> impl Strategy<Value = String> {
    (
        field(vec!["\"fuzz\""], vec!["\"\"", "\"a/b\"", "3"]),
        field(vec!["1", "42", "18446744073709551615"], vec!["-1", "\"x\"", "1.5", "18446744073709551616"]),
        field(vec!["1", "2", "3"], vec!["0", "-2", "\"2\"", "nan", "4294967296", "999999999"]),
        field(vec!["1", "7", "40"], vec!["0", "-1", "1e3", "\"9\"", "1_000_000_000_000_000", "100_000_000_000"]),
        field(vec!["5", "16"], vec!["0", "-5", "1_000_000_000", "0.5", "10_000_000", "10_000_000"]),
        field(vec!["[3]", "[1, 4]", "[2, 8]"], vec!["[]", "[0]", "[3, 3]", "[1099511627776]", "\"3\"", "[-1]", "3"]),
        proptest::collection::vec(arch_table(), 0..3),
        field(vec!["[2, 4]", "[2, 4, 6]", "[4]"], vec!["[3]", "[8]", "[0]", "\"2\"", "[]"]),
        proptest::bool::weighted(0.05),
        proptest::bool::weighted(0.15),
    )
        .prop_map(|(name, seed, bags, nets, per_part, widths, archs, orders, typo, absurd)| {
            // A valid config whose output (~TBs) cannot fit on the disk: refused up front.
            let (nets, per_part) = if absurd {
                (Some("100_000_000_000".to_string()), Some("10_000_000".to_string()))
            } else {
                (nets, per_part)
            };
            let mut t = String::new();
            for (k, v) in [("name", name), ("seed", seed)] {
                if let Some(v) = v {
                    t.push_str(&format!("{k} = {v}\n"));
                }
            }
            t.push_str("[sample]\n");
            for (k, v) in [("bags", bags), ("nets_per_bag", nets), ("nets_per_part", per_part), ("widths", widths)] {
                if let Some(v) = v {
                    t.push_str(&format!("{k} = {v}\n"));
                }
            }
            if typo {
                t.push_str("netsperbag = 3\n");
            }
            for a in archs {
                t.push_str(&a);
            }
            if let Some(o) = orders {
                t.push_str(&format!("[moments]\norders = {o}\n"));
            }
            t
        })
}

/// Files written under `dir` (the lock file does not count as output).
fn files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() != ".nnqft.lock" {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

#[test]
fn hostile_configs_give_a_run_or_one_clear_error() {
    let mut runner = proptest::test_runner::TestRunner::new(Config {
        cases: 400,
        rng_seed: RngSeed::Fixed(20261123),
        failure_persistence: None,
        ..Config::default()
    });
    let (rejected, refused, ran) = (Cell::new(0), Cell::new(0), Cell::new(0));
    runner
        .run(&pipeline_text(), |text| {
            let tmp = tempfile::tempdir().unwrap();
            let data = tmp.path().join("data");
            match Pipeline::from_toml(&text) {
                Err(e) => {
                    let msg = e.to_string();
                    prop_assert!(!msg.is_empty() && !msg.contains('\n'), "one-line error for\n{text}\ngot: {msg:?}");
                    rejected.set(rejected.get() + 1);
                }
                Ok(p) => match nnqft_sample::run(&p, &data, &nnqft_sample::Options::default()) {
                    Ok(r) => {
                        let want = nnqft_sample::plan(&p).len();
                        prop_assert_eq!(r.parts_written, want);
                        let parquet = files(&data).iter().filter(|f| f.ends_with(".parquet") && f.contains("part-")).count();
                        prop_assert_eq!(parquet, want, "complete output for\n{}", text);
                        ran.set(ran.get() + 1);
                    }
                    Err(e) => {
                        let msg = format!("{e:#}");
                        prop_assert!(!msg.contains('\n'), "one line: {msg}");
                        prop_assert!(files(&data).is_empty(), "refused run left output: {:?}\n{text}", files(&data));
                        refused.set(refused.get() + 1);
                    }
                },
            }
            Ok(())
        })
        .unwrap();
    let (rejected, refused, ran) = (rejected.get(), refused.get(), ran.get());
    eprintln!("hostile configs: {rejected} rejected at parse/validation, {refused} refused before writing, {ran} ran to completion");
    assert!(rejected > 100 && ran > 5 && refused > 0, "the generator explores every path: {rejected} rejected, {refused} refused, {ran} ran");
}
