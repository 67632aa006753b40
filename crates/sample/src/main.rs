/// Draw ensembles of random networks and write their outputs f(x_1..x_k)
/// to Parquet: DATA/samples/arch=A/width=N/bag=B/part-PPPPP.parquet.
///
/// Resumable: parts that exist with a matching config hash are skipped.
#[derive(clap::Parser)]
#[command(name = "nnqft-sample", version)]
struct Args {
    #[command(flatten)]
    common: nnqft_cli::Common,
    /// Do only the I-th of N equal parts of the work (e.g. 2/8), for job arrays
    #[arg(long, value_parser = nnqft_cli::parse_shard)]
    shard: Option<(u32, u32)>,
    /// Redo parts that exist, including ones written by another config, and remove stale ones
    #[arg(long)]
    force: bool,
    /// Read every existing part's data (checksum, finite values), not only its footer; list and redo the parts that fail
    #[arg(long)]
    verify: bool,
    /// Print what the run would cost (disk, memory, time measured on this machine) and which
    /// deviations it resolves by the exact theory, with the nets that would; writes nothing
    #[arg(long)]
    plan: bool,
}

fn main() {
    let args: Args = nnqft_cli::parse_args("nnqft-sample");
    nnqft_cli::run_main("nnqft-sample", || {
        let (loaded, data) = args.common.setup()?;
        loaded.warn_analysis("nnqft-sample");
        let opts = nnqft_sample::Options { shard: args.shard, force: args.force, verify: args.verify };
        if args.plan {
            return nnqft_sample::print_plan(&loaded.pipeline, &data, &opts);
        }
        nnqft_sample::run(&loaded.pipeline, &data, &opts)?;
        nnqft_report::assemble_and_print("nnqft-sample", &loaded.pipeline, &data, &loaded.source, &loaded.text)
    });
}
