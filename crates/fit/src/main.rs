/// Fit the couplings of the effective action to the moments of a pipeline:
/// M0-M3 on the train tuples of the input grid, tested on the rest; the
/// 6-point prediction; u4/u6 for gauss-nets. Writes DATA/couplings.parquet
/// and DATA/predictions.parquet.
///
/// Resumable: outputs whose recorded config hash matches are not redone.
#[derive(clap::Parser)]
#[command(name = "nnqft-fit", version)]
struct Args {
    #[command(flatten)]
    common: nnqft_cli::Common,
    /// Refit even if the outputs are up to date
    #[arg(long)]
    force: bool,
}

fn main() {
    let args: Args = nnqft_cli::parse_args("nnqft-fit");
    nnqft_cli::run_main("nnqft-fit", || {
        let (loaded, data) = args.common.setup()?;
        loaded.require_analysis()?;
        let p = &loaded.pipeline;
        if p.fit.run.is_empty() {
            println!("nnqft-fit: {}: no [[fit.run]] in the pipeline; nothing to fit", p.name);
            return nnqft_report::assemble_and_print("nnqft-fit", p, &data, &loaded.source, &loaded.text);
        }
        let start = std::time::Instant::now();
        let out = nnqft_fit::run(p, &data, &nnqft_fit::Options { force: args.force })?;
        let what = if out.up_to_date { "up to date" } else { "fitted" };
        println!(
            "nnqft-fit: {}: {} {} coupling rows, {} predictions in {:.1}s -> {}",
            p.name,
            what,
            out.couplings.len(),
            out.n_predictions,
            start.elapsed().as_secs_f64(),
            data.join("couplings.parquet").display()
        );
        print!("{}", nnqft_fit::format_table(p, &out.couplings));
        print!("{}", nnqft_fit::format_translations(p, &out.couplings));
        nnqft_report::assemble_and_print("nnqft-fit", p, &data, &loaded.source, &loaded.text)
    });
}
