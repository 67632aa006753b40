/// Reduce the samples of a pipeline to n-point functions with bag errors and
/// compare them with the GP and the exact finite-width theory. Writes
/// DATA/moments.parquet, moments_bags.parquet, summary.parquet and plots/;
/// for deep archs (hidden_layers > 1) DATA/layers.parquet (K, connected
/// 4-point function and kurtosis per layer beside the layer recursion).
///
/// Resumable: each (arch, width) reduction is cached under DATA/cache/moments.
#[derive(clap::Parser)]
#[command(name = "nnqft-moments", version)]
struct Args {
    #[command(flatten)]
    common: nnqft_cli::Common,
    /// Recompute cached reductions
    #[arg(long)]
    force: bool,
}

fn main() {
    let args: Args = nnqft_cli::parse_args("nnqft-moments");
    nnqft_cli::run_main("nnqft-moments", || {
        let (loaded, data) = args.common.setup()?;
        loaded.warn_analysis("nnqft-moments");
        let p = &loaded.pipeline;
        let start = std::time::Instant::now();
        // A run killed while writing its report section leaves a temporary
        // file there; an "up to date" run must not leave it behind either.
        nnqft_store::atomic::clean_stale_temps(&data.join("report"), None)?;
        if !args.force && nnqft_moments::up_to_date(p, &data) {
            println!("nnqft-moments: {}: up to date (every table matches the samples and the config; --force recomputes) -> {}", p.name, data.display());
            return nnqft_report::assemble_and_print("nnqft-moments", p, &data, &loaded.source, &loaded.text);
        }
        let out = nnqft_moments::run(p, &data, &nnqft_moments::Options { force: args.force })?;
        if !out.reduced.is_empty() {
            println!(
            "nnqft-moments: {}: {} tuples x widths in {:.1}s ({} of {} (arch, width) reductions cached) -> {}",
            p.name,
            out.rows.len(),
            start.elapsed().as_secs_f64(),
            out.cached,
            out.reduced.len(),
            data.join("moments.parquet").display()
            );
            print!("{}", nnqft_moments::format_summary(&out.summary));
        }
        if !out.layers.is_empty() {
            println!("nnqft-moments: {}: deep nets, per layer -> {}", p.name, data.join("layers.parquet").display());
            print!("{}", nnqft_moments::layers::format_layers(&out.layers));
        }
        if !out.symmetry.tests.is_empty() {
            println!("nnqft-moments: {}: symmetry tests -> {}", p.name, data.join("symmetry_tests.parquet").display());
            print!("{}", nnqft_moments::symmetry::format_tests(&out.symmetry.tests));
        }
        nnqft_report::assemble_and_print("nnqft-moments", p, &data, &loaded.source, &loaded.text)
    });
}
