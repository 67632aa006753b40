//! The sampler against exact theory, through the files it writes:
//! 2-point functions against the analytic GP kernel for every activation,
//! and the relu 4-point connected function against the exact finite-N value.

mod common;
use common::*;
use nnqft_core::Pipeline;
use nnqft_testkit::Pipe;

/// Orders: the default 2, 4, 6.
fn pipeline() -> String {
    Pipe::new("correct", 31337, 2, 200_000, &[10], &[2, 4, 6])
        .nets_per_part(50_000)
        .arch("erf", "erf", 1.0, 1.0, &[&[-1.0], &[-0.2], &[0.6], &[1.0]])
        .arch("relu", "relu", 1.3, 0.5, &[&[0.5, 0.5], &[1.0, -0.5], &[-1.0, 0.2]])
        .arch("gauss", "gauss", 1.5, 1.0, &[&[0.1, 0.1], &[-0.3, 0.2], &[0.4, -0.4]])
        .arch("tanh", "tanh", 1.2, 0.3, &[&[0.2, 0.2, 0.2], &[1.0, 1.0, 0.2], &[-1.0, 0.5, 1.0]])
        .text()
        .to_string()
}

#[test]
fn two_point_function_matches_kernel_for_every_activation() {
    let tmp = tempfile::tempdir().unwrap();
    let pipe = write_pipeline(tmp.path(), "correct", &pipeline());
    let data = tmp.path().join("data");
    run_ok(&["--pipeline", &pipe, "--data", data.to_str().unwrap()]);
    let p = Pipeline::from_toml(&pipeline()).unwrap();
    for arch in &p.sample.arch {
        let cols = read_bag(&data, &arch.name, 10, 0);
        assert_eq!(cols[0].len(), 200_000);
        for a in 0..arch.k() {
            for b in a..arch.k() {
                let (g, se) = moment(&cols, &[a, b]);
                let k = arch.kernel(&arch.inputs[a], &arch.inputs[b]);
                let z = (g - k) / se;
                assert!(z.abs() < 4.0, "{} G2({a},{b}) = {g} +- {se}, K = {k}: {z:.2} standard errors", arch.name);
            }
        }
    }
}

#[test]
fn relu_four_point_matches_exact_finite_width() {
    // docs/physics.md §4: relu, sb = 0, d = 1, x > 0: G4 - G4_GP = (15/4) sw^8 prod x / N.
    let text = r#"
name = "relu4"
seed = 4
[sample]
bags = 2
nets_per_bag = 1_000_000
widths = [10]
[[sample.arch]]
name = "relu"
activation = "relu"
d_in = 1
sigma_w = 1.0
sigma_b = 0.0
inputs = [[0.2], [0.4], [0.6], [0.8]]
"#;
    let tmp = tempfile::tempdir().unwrap();
    let pipe = write_pipeline(tmp.path(), "relu4", text);
    let data = tmp.path().join("data");
    run_ok(&["--pipeline", &pipe, "--data", data.to_str().unwrap()]);
    let p = Pipeline::from_toml(text).unwrap();
    let arch = &p.sample.arch[0];
    let k = arch.kernel_matrix();
    let gp = k[0][1] * k[2][3] + k[0][2] * k[1][3] + k[0][3] * k[1][2];
    let exact = 15.0 / 4.0 * (0.2 * 0.4 * 0.6 * 0.8) / 10.0;
    let cols = read_bag(&data, "relu", 10, 0);
    let (g4, se) = moment(&cols, &[0, 1, 2, 3]);
    let z = (g4 - gp - exact) / se;
    assert!(z.abs() < 4.0, "G4 - G4_GP = {} +- {se}, exact {exact}: {z:.2} standard errors", g4 - gp);
    // And the deviation is resolved, i.e. the test has power: > 10 standard errors from the GP.
    assert!((g4 - gp) / se > 10.0, "G4 - G4_GP = {} +- {se} not resolved", g4 - gp);
}
