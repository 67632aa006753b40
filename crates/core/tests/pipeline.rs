//! Pipeline parsing and validation: every bad input is one clear error that
//! names the field (or line and column for syntax and type errors).

use nnqft_core::Pipeline;
use nnqft_core::pipeline::DEFAULT_PIPELINE_TOML;

const BASE: &str = r#"
name = "t"
seed = 1
[sample]
bags = 2
nets_per_bag = 10
widths = [3, 5]
[[sample.arch]]
name = "a"
activation = "erf"
d_in = 1
sigma_w = 1.0
sigma_b = 1.0
inputs = [[0.5], [1.0]]
"#;

fn error_of(text: &str) -> String {
    Pipeline::from_toml(text).expect_err("should be rejected").to_string()
}

#[test]
fn base_and_shipped_pipelines_parse() {
    Pipeline::from_toml(BASE).unwrap();
    Pipeline::from_toml(DEFAULT_PIPELINE_TOML).unwrap();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../pipelines")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let p = Pipeline::from_toml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(Some(p.name.as_str()), path.file_stem().and_then(|s| s.to_str()), "file name = pipeline name");
    }
}

#[test]
fn bad_inputs_are_named() {
    let cases: &[(&str, &str, &str)] = &[
        ("activation = \"erf\"", "activation = \"swish\"", "line 10, column 14: unknown variant `swish`"),
        ("d_in = 1", "d_in = 2", "sample.arch[0].inputs[0]: has 1 coordinates but d_in = 2"),
        ("widths = [3, 5]", "widths = [3, 0]", "sample.widths[1]: width must be >= 1 (got 0)"),
        ("widths = [3, 5]", "widths = [3, 3]", "sample.widths[1]: duplicate width 3"),
        ("nets_per_bag = 10", "nets_per_bag = 0", "sample.nets_per_bag: must be >= 1"),
        ("nets_per_bag = 10", "nets_per_bag = -3", "line 6, column 16: invalid value: integer `-3`, expected u64"),
        ("bags = 2", "bags = 0", "sample.bags: must be >= 2"),
        ("bags = 2", "bags = 1", "sample.bags: must be >= 2 (got 1)"),
        ("sigma_w = 1.0", "sigma_w = -1.0", "sample.arch[0].sigma_w: must be finite and >= 0 (got -1)"),
        ("sigma_b = 1.0", "sigma_b = nan", "sample.arch[0].sigma_b: must be finite and >= 0 (got NaN)"),
        ("sigma_b = 1.0", "sigma_b = inf", "sample.arch[0].sigma_b: must be finite and >= 0 (got inf)"),
        ("sigma_w = 1.0", "sigma_w = \"one\"", "line 12, column 11: invalid type: string \"one\", expected f64"),
        ("sigma_w = 1.0", "sigma_w = 1.0\nsigmab = 2.0", "line 13, column 1: unknown field `sigmab`"),
        ("inputs = [[0.5], [1.0]]", "inputs = [[0.5], [nan]]", "sample.arch[0].inputs[1]: non-finite coordinate NaN"),
        ("inputs = [[0.5], [1.0]]", "inputs = []", "sample.arch[0].inputs: must list at least one input point"),
        ("name = \"a\"", "name = \"../x\"", "sample.arch[0].name: \"../x\" must be"),
        ("seed = 1", "seed = 1\nseed = 2", "line 4, column 1: duplicate key"),
        ("bags = 2", "bags = 2\nwidths2 = [1]", "line 6, column 1: unknown field `widths2`"),
        ("[sample]", "[sample", "line 4, column 8: "),
    ];
    for (from, to, want) in cases {
        assert!(BASE.contains(from), "{from}");
        let text = BASE.replacen(from, to, 1);
        let got = error_of(&text);
        assert!(got.starts_with(want), "for {to:?}:\n got: {got}\nwant: {want}...");
        assert!(!got.contains('\n'), "one line: {got}");
    }
}

#[test]
fn duplicate_arch_names_are_rejected() {
    let text = format!("{BASE}\n[[sample.arch]]\nname = \"a\"\nactivation = \"relu\"\nd_in = 1\nsigma_w = 1.0\nsigma_b = 0.0\ninputs = [[1.0]]\n");
    assert_eq!(error_of(&text), "sample.arch[1].name: duplicate arch name \"a\"");
}

#[test]
fn missing_required_field_is_named() {
    let got = error_of(&BASE.replace("seed = 1\n", ""));
    assert!(got.contains("missing field `seed`"), "{got}");
}

#[test]
fn config_hash_tracks_content_not_width_list() {
    let p = Pipeline::from_toml(BASE).unwrap();
    let a = &p.sample.arch[0];
    let h = p.sample_hash(a, 3);
    assert_ne!(h, p.sample_hash(a, 5));
    let more_widths = Pipeline::from_toml(&BASE.replace("[3, 5]", "[3, 5, 7]")).unwrap();
    assert_eq!(h, more_widths.sample_hash(&more_widths.sample.arch[0], 3));
    let other_seed = Pipeline::from_toml(&BASE.replace("seed = 1", "seed = 2")).unwrap();
    assert_ne!(h, other_seed.sample_hash(&other_seed.sample.arch[0], 3));
    let other_sigma = Pipeline::from_toml(&BASE.replace("sigma_b = 1.0", "sigma_b = 1.5")).unwrap();
    assert_ne!(h, other_sigma.sample_hash(&other_sigma.sample.arch[0], 3));
}

#[test]
fn parts_cover_the_bag() {
    let p = Pipeline::from_toml(&BASE.replace("nets_per_bag = 10", "nets_per_bag = 10\nnets_per_part = 4")).unwrap();
    assert_eq!(p.parts_per_bag(), 3);
    assert_eq!((0..3).map(|i| p.nets_in_part(i)).collect::<Vec<_>>(), vec![4, 4, 2]);
}

/// `[[symmetry.test]]` (docs/physics.md §13): each bad test is one error line naming its field.
#[test]
fn bad_symmetry_tests_are_named() {
    let arch = |name: &str, extra: &str, inputs: &str| {
        format!("[[sample.arch]]\nname = \"{name}\"\nactivation = \"erf\"\nd_in = 2\nsigma_w = 1.0\nsigma_b = 1.0\ninputs = {inputs}\n{extra}\n")
    };
    let base = format!(
        "{}{}{}{}{}",
        BASE.replace("bags = 2", "bags = 8"),
        arch("three", "d_out = 3", "[[1.0, 0.0], [0.0, 1.0]]"),
        arch("rot", "", "[[0.0, 1.0], [-1.0, 0.0]]"),
        arch("plain", "", "[[1.0, 0.0], [0.0, 1.0]]"),
        arch("far", "", "[[2.0, 0.0], [0.0, 1.0]]"),
    );
    let test = |body: &str| format!("{base}[[symmetry.test]]\nname = \"t\"\n{body}\n");
    Pipeline::from_toml(&test("kind = \"output_rotation\"\narch = \"three\"\norders = [1]")).unwrap();
    Pipeline::from_toml(&test("kind = \"input_rotation\"\narch = \"plain\"\nimage = \"rot\"\norders = [1]")).unwrap();
    let cases: &[(&str, &str)] = &[
        ("kind = \"output_rotation\"\narch = \"nope\"", "symmetry.test[0].arch: no [[sample.arch]] named \"nope\" (have: a, three, rot, plain, far)"),
        ("kind = \"output_rotation\"\narch = \"a\"", "symmetry.test[0].arch: an output rotation needs d_out >= 2 (a has d_out = 1)"),
        ("kind = \"input_rotation\"\narch = \"a\"\nimage = \"a\"", "symmetry.test[0].image: must be another arch than the one tested"),
        ("kind = \"input_rotation\"\narch = \"plain\"\nimage = \"three\"", "symmetry.test[0].image: three must equal plain in everything but its inputs and widths"),
        ("kind = \"input_rotation\"\narch = \"plain\"\nimage = \"far\"", "symmetry.test[0].image: the inputs of far are not an image of those of plain under input_rotation: x_0.x_0 = 1 but the image's is 4"),
        ("kind = \"input_rotation\"\narch = \"plain\"", "symmetry.test[0].image: a test of kind input_rotation needs the arch sampled at the transformed inputs"),
        ("kind = \"translation\"\narch = \"plain\"\nimage = \"rot\"", "symmetry.test[0].image: the inputs of rot are not an image of those of plain under translation"),
        ("kind = \"output_rotation\"\narch = \"three\"\nimage = \"rot\"", "symmetry.test[0].image: not used by a test of kind output_rotation"),
        ("kind = \"output_rotation\"\narch = \"three\"\npoints = [2]", "symmetry.test[0].points[0]: input 2 does not exist (three has 2 inputs)"),
        ("kind = \"output_rotation\"\narch = \"three\"\norders = [7]", "symmetry.test[0].orders[0]: orders must be distinct and 1..6 (got 7)"),
        ("kind = \"output_rotation\"\narch = \"three\"\norders = [3]", "symmetry.test[0].orders[0]: order 3 has 10 tuples over 3 variables; the test's covariance over bags needs more bags than tuples (sample.bags = 8)"),
        ("kind = \"output_rotation\"\narch = \"three\"\nwidths = [4]", "symmetry.test[0].widths: width 4 is not sampled for three"),
        ("kind = \"mirror\"\narch = \"three\"", "line"),
    ];
    for (body, want) in cases {
        let got = error_of(&test(body));
        assert!(got.starts_with(want), "for {body:?}:\n got: {got}\nwant: {want}...");
        assert!(!got.contains('\n'), "one line: {got}");
    }
    // a rotation of the line does not exist
    let line = format!("{BASE}[[sample.arch]]\nname = \"b\"\nactivation = \"erf\"\nd_in = 1\nsigma_w = 1.0\nsigma_b = 1.0\ninputs = [[-0.5], [-1.0]]\n[[symmetry.test]]\nname = \"t\"\nkind = \"input_rotation\"\narch = \"a\"\nimage = \"b\"\norders = [1]\n");
    assert_eq!(
        error_of(&line),
        "symmetry.test[0].kind: an input rotation needs d_in >= 2 (a has d_in = 1: the only rotation of a line is the identity)"
    );
    // d_out = 0
    assert!(error_of(&BASE.replace("inputs = [[0.5], [1.0]]", "inputs = [[0.5], [1.0]]\nd_out = 0")).starts_with("sample.arch[0].d_out: must be 1..64 (got 0)"));
}

/// `[rg.input_scale]`: archs must be the first one at scaled inputs.
#[test]
fn bad_input_scale_flows_are_named() {
    let gauss = |name: &str, inputs: &str, sb: f64| {
        format!("[[sample.arch]]\nname = \"{name}\"\nactivation = \"gauss\"\nd_in = 1\nsigma_w = 1.0\nsigma_b = {sb:?}\ninputs = {inputs}\n")
    };
    let base = format!(
        "{BASE}[moments]\norders = [2, 4]\n{}{}{}{}",
        gauss("g1", "[[0.1], [0.2]]", 1.0),
        gauss("g2", "[[0.2], [0.4]]", 1.0),
        gauss("bent", "[[0.2], [0.5]]", 1.0),
        gauss("sb", "[[0.2], [0.4]]", 0.5)
    );
    let flow = |archs: &str| format!("{base}[rg.input_scale]\narchs = {archs}\n");
    let p = Pipeline::from_toml(&flow("[\"g1\", \"g2\"]")).unwrap();
    assert_eq!(nnqft_core::pipeline::input_scale(&p.arch("g1").unwrap().inputs, &p.arch("g2").unwrap().inputs), Some(2.0));
    for (archs, want) in [
        ("[\"g1\"]", "rg.input_scale.archs: need at least 2 architectures (input scales) for a slope"),
        ("[\"g1\", \"bent\"]", "rg.input_scale.archs[1]: the inputs of bent are not s times those of g1 for one s > 0"),
        ("[\"g1\", \"sb\"]", "rg.input_scale.archs[1]: sb differs from g1 in more than its inputs (and widths)"),
        ("[\"g1\", \"g2\", \"g2\"]", "rg.input_scale.archs[2]: g2 repeats the input scale 2"),
        ("[\"g1\", \"zz\"]", "rg.input_scale.archs[1]: no [[sample.arch]] named \"zz\""),
    ] {
        let got = error_of(&flow(archs));
        assert!(got.starts_with(want), "for {archs}:\n got: {got}\nwant: {want}");
    }
}
