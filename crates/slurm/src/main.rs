/// Write Slurm scripts for a pipeline (DATA/slurm/) and, with --submit,
/// submit them: a job array of sample shards, then moments after all shards
/// succeeded. Resubmitting submits only shards that still have missing parts.
#[derive(clap::Parser)]
#[command(name = "nnqft-slurm", version)]
struct Args {
    #[command(flatten)]
    common: nnqft_cli::Common,
    /// Number of shards (array size) [default: [slurm] shards of the pipeline]
    #[arg(long)]
    shards: Option<u32>,
    /// Submit with sbatch and print the job ids (otherwise only write the scripts)
    #[arg(long)]
    submit: bool,
}

fn main() {
    let args: Args = nnqft_cli::parse_args("nnqft-slurm");
    nnqft_cli::run_main("nnqft-slurm", || {
        let (loaded, data) = args.common.setup()?;
        loaded.warn_analysis("nnqft-slurm");
        let p = &loaded.pipeline;
        let shards = args.shards.unwrap_or(p.slurm.shards);
        if shards == 0 {
            anyhow::bail!("--shards must be >= 1");
        }
        let exe = std::env::current_exe()?;
        let bin_dir = exe.parent().expect("binary has a directory");
        let prep = nnqft_slurm::prepare(p, &loaded.text, &data, bin_dir, shards)?;
        println!("nnqft-slurm: wrote {} and {}", prep.sample_script.display(), prep.moments_script.display());
        println!(
            "nnqft-slurm: {} of {} shards have work left{}",
            prep.pending.len(),
            shards,
            if prep.pending.is_empty() { String::new() } else { format!(" ({})", nnqft_slurm::array_spec(&prep.pending)) }
        );
        if args.submit {
            let s = nnqft_slurm::submit(&prep)?;
            match &s.sample {
                Some(id) => println!("submitted sample array job {id} (shards {})", nnqft_slurm::array_spec(&prep.pending)),
                None => println!("no sample shard to submit: every part is done"),
            }
            println!("submitted moments job {} (after the sample shards succeed)", s.moments);
            println!("watch: squeue -u $USER; logs: {}", nnqft_slurm::slurm_dir(&std::path::absolute(&data)?).join("logs").display());
        } else {
            println!(
                "submit with: nnqft-slurm --pipeline {} --data {} --submit",
                args.common.pipeline.as_deref().unwrap_or(&p.name),
                data.display()
            );
        }
        Ok(())
    });
}
