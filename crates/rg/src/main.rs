/// Run the couplings with the cutoff L and with sigma_W: lambda_bar(L),
/// u4/u6(sigma_W), log-log slopes with bag errors beside the exact finite-N
/// values and the seeds' claims. Writes DATA/flow.parquet, slopes.parquet,
/// plots/rg_* and the rg section of the run report (report/rg.md), then
/// assembles DATA/report.md and report.html.
///
/// Resumable: outputs whose recorded config hash matches are not redone.
#[derive(clap::Parser)]
#[command(name = "nnqft-rg", version)]
struct Args {
    #[command(flatten)]
    common: nnqft_cli::Common,
    /// Recompute even if the outputs are up to date
    #[arg(long)]
    force: bool,
}

fn main() {
    let args: Args = nnqft_cli::parse_args("nnqft-rg");
    nnqft_cli::run_main("nnqft-rg", || {
        let (loaded, data) = args.common.setup()?;
        loaded.require_analysis()?;
        let p = &loaded.pipeline;
        if p.rg.cutoff.is_empty() && p.rg.sigma_w.is_none() && p.rg.input_scale.is_none() && p.deep_archs().next().is_none() {
            println!("nnqft-rg: {}: no [[rg.cutoff]], [rg.sigma_w], [rg.input_scale] or deep arch in the pipeline; nothing to do", p.name);
            return nnqft_report::assemble_and_print("nnqft-rg", p, &data, &loaded.source, &loaded.text);
        }
        let start = std::time::Instant::now();
        let out = nnqft_rg::run(p, &data, &nnqft_rg::Options { force: args.force })?;
        if out.up_to_date {
            println!("nnqft-rg: {}: up to date -> {}", p.name, data.join("flow.parquet").display());
            return nnqft_report::assemble_and_print("nnqft-rg", p, &data, &loaded.source, &loaded.text);
        }
        println!(
            "nnqft-rg: {}: {} flow points, {} slopes in {:.1}s -> {}",
            p.name,
            out.flow.len(),
            out.slopes.len(),
            start.elapsed().as_secs_f64(),
            data.join("flow.parquet").display()
        );
        for r in &out.slopes {
            println!(
                "  {:<14} d={} N={:<5} {:<7} {:<4} {:<10} {:<9} {:<4} measured {:>11.4e} +- {:<9.2e} exact {:>11.4e}  asymptotic {:>8}  seed {:>6}{}",
                r.arch,
                r.d_in,
                r.width,
                r.kind,
                r.propagator,
                r.coupling,
                r.quantity,
                r.range,
                r.slope,
                r.stderr,
                r.exact,
                nnqft_cli::fmt_g(r.asymptotic),
                nnqft_cli::fmt_g(r.seed_claim),
                r.note.as_ref().map(|n| format!("  [{n}]")).unwrap_or_default()
            );
        }
        nnqft_report::assemble_and_print("nnqft-rg", p, &data, &loaded.source, &loaded.text)
    });
}
