//! Several outputs and parameter means through the files (docs/data.md):
//! the part columns `f{j}_o{i}`, their two-point functions against the exact
//! ones, the moments stage on output 0, and its one-line refusal of means.

use nnqft_core::Pipeline;
use nnqft_store::samples::{bag_dir, open_part, read_part};
use nnqft_testkit::{Pipe, ok, run};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_nnqft-moments");

fn sample_bin() -> std::path::PathBuf {
    Path::new(BIN).with_file_name("nnqft-sample")
}

/// Every net of bag 0 as f64 columns, with the part's column names.
fn bag0(data: &Path, arch: &str, width: usize) -> (Vec<String>, Vec<Vec<f64>>) {
    let path = bag_dir(data, arch, width, 0).join("part-00000.parquet");
    let (_, builder) = open_part(&path).unwrap();
    let names = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
    let (_, cols) = read_part(&path).unwrap();
    (names, cols.into_iter().map(|c| c.into_iter().map(f64::from).collect()).collect())
}

/// Mean of `x y` over nets and its standard error.
fn product_mean(x: &[f64], y: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let v: Vec<f64> = x.iter().zip(y).map(|(a, b)| a * b).collect();
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|p| (p - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

#[test]
fn several_outputs_are_written_named_and_reduced() {
    let tmp = tempfile::tempdir().unwrap();
    let pipe = Pipe::new("outs", 4, 2, 100_000, &[6], &[2, 4])
        .arch_with("erf3", "erf", 1.0, 1.0, &[&[-0.5], &[1.0]], "d_out = 3")
        .arch_with("deep2", "relu", 1.2, 0.2, &[&[1.0], &[0.5]], "hidden_layers = 2\nd_out = 2");
    let path = pipe.write(tmp.path());
    let data = tmp.path().join("data");
    let (pf, d) = (path.to_str().unwrap(), data.to_str().unwrap());
    ok(&sample_bin(), &["--pipeline", pf, "--data", d]);
    let p = Pipeline::from_toml(pipe.text()).unwrap();

    let (names, cols) = bag0(&data, "erf3", 6);
    assert_eq!(names, ["f0_o0", "f1_o0", "f0_o1", "f1_o1", "f0_o2", "f1_o2"]);
    let (names, _) = bag0(&data, "deep2", 6);
    assert_eq!(names, ["f0_o0", "f1_o0", "f0_o1", "f1_o1", "l1_f0", "l1_f1", "l2_f0", "l2_f1"]);

    // E f_i(x_a) f_j(x_b) = delta_ij K_ab (centred parameters), within 4 se
    let erf = p.arch("erf3").unwrap();
    for c1 in 0..6 {
        for c2 in c1..6 {
            let (a, b) = (c1 % 2, c2 % 2);
            let want = if c1 / 2 == c2 / 2 { erf.kernel(&erf.inputs[a], &erf.inputs[b]) } else { 0.0 };
            let (g, se) = product_mean(&cols[c1], &cols[c2]);
            assert!(((g - want) / se).abs() < 4.0, "{} {}: {g} +- {se}, exact {want}", names_of(c1), names_of(c2));
        }
    }

    // moments reduces output 0 of each arch: the same tables as for one output
    ok(Path::new(BIN), &["--pipeline", pf, "--data", d]);
    assert!(data.join("moments.parquet").is_file() && data.join("layers.parquet").is_file());
}

fn names_of(c: usize) -> String {
    format!("f{}_o{}", c % 2, c / 2)
}

/// An arch with parameter means goes through moments: its theory columns
/// are `MeanTheory`'s (checked against the file's own means within 4 se per
/// tuple at N = 3, where the GP is far off), its exact standard errors NaN.
/// A deep net with means is refused in one line.
#[test]
fn moments_with_means_compares_with_the_mean_theory() {
    let tmp = tempfile::tempdir().unwrap();
    let pipe = Pipe::new("means", 4, 10, 20_000, &[3], &[2, 4]).arch_with("relu", "relu", 1.0, 0.5, &[&[1.0], &[0.4]], "mu_w = 0.5\nmu_w_out = 1.5");
    let path = pipe.write(tmp.path());
    let data = tmp.path().join("data");
    let (pf, d) = (path.to_str().unwrap(), data.to_str().unwrap());
    ok(&sample_bin(), &["--pipeline", pf, "--data", d]);
    ok(Path::new(BIN), &["--pipeline", pf, "--data", d]);
    let p = Pipeline::from_toml(pipe.text()).unwrap();
    let th = nnqft_core::means::MeanTheory::new(&p.sample.arch[0], &[4], nnqft_core::exact::Accuracy::default());
    let file = std::fs::File::open(data.join("moments.parquet")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    let (mut rows, mut gp_worst) = (0, 0.0f64);
    for batch in reader {
        let batch = batch.unwrap();
        let col = |name: &str| batch.column_by_name(name).unwrap().as_any().downcast_ref::<arrow::array::Float64Array>().unwrap().clone();
        let (mean, se, gp, exact, ex_se) = (col("mean"), col("stderr"), col("gp"), col("exact_delta"), col("exact_stderr"));
        let tuples = batch.column_by_name("tuple").unwrap().as_any().downcast_ref::<arrow::array::ListArray>().unwrap().clone();
        for i in 0..batch.num_rows() {
            let t: Vec<usize> = tuples.value(i).as_any().downcast_ref::<arrow::array::UInt16Array>().unwrap().values().iter().map(|&v| v as usize).collect();
            assert!((gp.value(i) - th.gp(&t)).abs() < 1e-12 * th.gp(&t).abs());
            assert!((gp.value(i) + exact.value(i) - th.moment(&t, 3)).abs() < 1e-12 * th.moment(&t, 3).abs());
            let z = (mean.value(i) - th.moment(&t, 3)) / se.value(i);
            assert!(z.abs() < 4.0, "{t:?}: z = {z:.2}");
            assert!(ex_se.value(i).is_nan());
            gp_worst = gp_worst.max(((mean.value(i) - gp.value(i)) / se.value(i)).abs());
            rows += 1;
        }
    }
    assert_eq!(rows, 3 + 5);
    assert!(gp_worst > 5.0, "the GP should be rejected somewhere (max |z| {gp_worst:.2})");

    let deep = Pipe::new("deepm", 4, 2, 1000, &[3], &[2]).arch_with("deep", "relu", 1.0, 0.5, &[&[1.0]], "hidden_layers = 2\nmu_b = 0.1");
    let path = deep.write(tmp.path());
    let data = tmp.path().join("deep");
    let (pf, d) = (path.to_str().unwrap(), data.to_str().unwrap());
    ok(&sample_bin(), &["--pipeline", pf, "--data", d]);
    let out = run(Path::new(BIN), &["--pipeline", pf, "--data", d]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("nnqft-moments: error: sample.arch[0] (deep): a deep net with parameter means"), "{}", lines[0]);
}
