//! docs/tutorial.md is true: its pipeline, run as written through every
//! stage, prints every number the tutorial quotes.

use nnqft_testkit::{repo, run_stages};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_nnqft-rg");

#[test]
fn the_tutorial_runs_as_written_and_prints_what_it_quotes() {
    let doc = std::fs::read_to_string(repo().join("docs/tutorial.md")).unwrap();
    let toml = doc.split("```toml\n").nth(1).and_then(|s| s.split("```").next()).expect("a toml block");
    let tmp = tempfile::tempdir().unwrap();
    let pipe = tmp.path().join("mine.toml");
    std::fs::write(&pipe, toml).unwrap();
    let data = tmp.path().join("mine");
    let out = run_stages(Path::new(BIN), &["nnqft-sample", "nnqft-moments", "nnqft-fit", "nnqft-rg"], &pipe, &data).join("\n");
    // Every indented output line the tutorial quotes, and the numbers in its prose.
    let quoted: Vec<&str> = doc.lines().filter(|l| l.starts_with("    erf-wide") || l.starts_with("      erf-wide") || l.starts_with("    M1 ") || l.starts_with("    M3 ")).collect();
    assert!(quoted.len() >= 6, "{quoted:?}");
    for q in quoted {
        assert!(out.contains(q.trim()), "the tutorial quotes {q:?}; the run printed:\n{out}");
    }
    for n in ["-4.2436e-1 +- 9.85e-3", "-4.3223e-1", "-5.9273e-1 +- 3.49e-3", "-5.9556e-1", "no reference-talk values"] {
        assert!(out.contains(n), "{n} not in:\n{out}");
    }
    for n in ["-0.424 ± 0.010", "(exact -0.432)", "-0.593 ± 0.003", "(exact -0.596)", "-7.51e-4", "0.1 standard errors"] {
        assert!(doc.contains(n), "tutorial prose lost {n}");
    }
    let c = nnqft_store::tables::read_table(&data.join("couplings.parquet")).unwrap();
    let b = &c[0];
    let col = |n: &str| b.column_by_name(n).unwrap().as_any().downcast_ref::<arrow::array::Float64Array>().unwrap().clone();
    let models = b.column_by_name("model").unwrap().as_any().downcast_ref::<arrow::array::StringArray>().unwrap().clone();
    let m1 = (0..b.num_rows()).find(|&i| models.value(i) == "M1").expect("M1 row");
    assert_eq!(format!("{:.2e}", col("exact_lambda0").value(m1)), "-7.51e-4");
    let z = (col("lambda0").value(m1) - col("exact_lambda0").value(m1)) / col("lambda0_stderr").value(m1);
    assert_eq!(format!("{:.1}", z.abs()), "0.1", "the tutorial says 0.1 standard errors");
}
