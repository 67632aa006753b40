//! The passive flow measured (docs/physics.md §14): the gauss-net sampled at
//! inputs s x for three scales; u4 per scale and its slope in s within 4
//! standard errors of the exact theory, the measurement at scaled inputs
//! against the exact theory at scaled sigma_W (the identity), and the power
//! of the comparison: the flow is resolved (u4 at s = 4 is many se from its
//! value at s = 1).

use nnqft_core::Pipeline;
use nnqft_testkit::{Pipe, run_stages};
use std::path::Path;

#[test]
fn passive_flow_of_the_gauss_net_matches_the_exact_theory() {
    let tmp = tempfile::tempdir().unwrap();
    let x = [-0.12, -0.04, 0.04, 0.12];
    let mut pipe = Pipe::new("passive", 8, 10, 150_000, &[4], &[2, 4]);
    let names = ["g1", "g2", "g3"];
    for (s, name) in [1.0, 2.5, 4.0].iter().zip(names) {
        let pts: Vec<Vec<f64>> = x.iter().map(|v| vec![s * v]).collect();
        let refs: Vec<&[f64]> = pts.iter().map(Vec::as_slice).collect();
        pipe = pipe.arch(name, "gauss", 1.0, 0.3, &refs);
    }
    let pipe = pipe.raw("[rg.input_scale]\narchs = [\"g1\", \"g2\", \"g3\"]\n");
    let path = pipe.write(tmp.path());
    let data = tmp.path().join("data");
    let bin = Path::new(env!("CARGO_BIN_EXE_nnqft-rg"));
    run_stages(bin, &["nnqft-sample", "nnqft-moments"], &path, &data);
    let p = Pipeline::from_toml(pipe.text()).unwrap();
    let out = nnqft_rg::run(&p, &data, &nnqft_rg::Options { force: true }).unwrap();
    let u4: Vec<_> = out.flow.iter().filter(|r| r.kind == "input_scale" && r.coupling == "u4").collect();
    assert_eq!(u4.iter().map(|r| r.scale).collect::<Vec<_>>(), [1.0, 2.5, 4.0]);
    for r in &u4 {
        let z = (r.value - r.exact) / r.stderr;
        assert!(z.abs() < 4.0, "s = {}: u4 {} +- {} vs exact {}", r.scale, r.value, r.stderr, r.exact);
    }
    assert!(((u4[2].value - u4[0].exact) / u4[2].stderr).abs() > 5.0, "the flow is not resolved: {:?}", u4);
    let slope = out.slopes.iter().find(|r| r.kind == "input_scale" && r.coupling == "u4" && r.quantity == "slope" && r.range == "all").unwrap();
    assert!(((slope.slope - slope.exact) / slope.stderr).abs() < 4.0, "{slope:?}");
    let id = out.slopes.iter().find(|r| r.quantity == "identity").unwrap();
    assert!(id.exact < 1e-10 && id.slope < 4.0, "{id:?}");
    // the figure and the report rows
    assert!(data.join("plots/rg_input_scale.png").is_file());
    let md = std::fs::read_to_string(data.join("report/rg.md")).unwrap();
    assert!(md.contains("Passive flow") && md.contains("identity"), "{md}");
    eprintln!("u4 {:?}; slope {} +- {} (exact {}); identity max z {}", u4.iter().map(|r| (r.value, r.stderr, r.exact)).collect::<Vec<_>>(), slope.slope, slope.stderr, slope.exact, id.slope);
}
