//! The layering rule (ARCHITECTURE.md): stages are thin binaries over
//! libraries and talk to each other only through Parquet, so no workspace
//! crate depends on a crate that builds a stage binary; `nnqft-core` has no
//! I/O dependencies; polars stays out of nnqft-sample and nnqft-moments.

use std::collections::BTreeMap;
use std::process::Command;

#[test]
fn no_crate_depends_on_a_stage_crate() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(nnqft_testkit::repo())
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    // name -> (builds a binary, dependency names)
    let crates: BTreeMap<String, (bool, Vec<String>)> = packages
        .iter()
        .map(|p| {
            let bin = p["targets"].as_array().unwrap().iter().any(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"));
            let deps = p["dependencies"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap().to_string()).collect();
            (p["name"].as_str().unwrap().to_string(), (bin, deps))
        })
        .collect();
    let stages: Vec<&String> = crates.iter().filter(|(_, (bin, _))| *bin).map(|(n, _)| n).collect();
    for must in ["nnqft-sample", "nnqft-moments", "nnqft-fit", "nnqft-rg", "nnqft-slurm"] {
        assert!(stages.iter().any(|s| *s == must), "{must} should build a stage binary: {stages:?}");
    }
    let mut bad = Vec::new();
    for (name, (_, deps)) in &crates {
        for d in deps {
            if stages.contains(&d) && d != name {
                bad.push(format!("{name} -> {d}"));
            }
        }
    }
    assert!(bad.is_empty(), "stage crates used as libraries: {bad:?}");
    let core = &crates["nnqft-core"].1;
    for io in ["nnqft-store", "arrow", "parquet", "polars", "clap", "indicatif"] {
        assert!(!core.iter().any(|d| d == io), "nnqft-core depends on {io}");
    }
    // What a crate links: its dependencies, through the workspace crates, transitively.
    let reach = |root: &str| {
        let (mut seen, mut todo) = (std::collections::BTreeSet::new(), vec![root.to_string()]);
        while let Some(c) = todo.pop() {
            for d in crates.get(&c).map(|x| x.1.clone()).unwrap_or_default() {
                if seen.insert(d.clone()) {
                    todo.push(d);
                }
            }
        }
        seen
    };
    for lean in ["nnqft-sample", "nnqft-moments", "nnqft-store", "nnqft-slurm"] {
        assert!(!reach(lean).contains("polars"), "{lean} links polars");
    }
    for analysis in ["nnqft-fit", "nnqft-rg"] {
        assert!(reach(analysis).contains("polars"), "{analysis} should read its tables through polars");
    }
}
