# nnqft: chain the stages of a pipeline. `just all` runs the default (quick)
# pipeline; `just all NAME` runs pipelines/NAME.toml into data/NAME.

set shell := ["bash", "-euo", "pipefail", "-c"]

default_pipeline := "quick"
bin := "target/release"

# List the recipes.
default:
    @just --list

# Build the stage binaries (release).
build:
    cargo build --release --locked --bins

# Draw the network ensembles of PIPELINE (extra args go to nnqft-sample, e.g. --threads 1).
sample pipeline=default_pipeline *args: build
    {{bin}}/nnqft-sample --pipeline {{pipeline}} {{args}}

# What a run of PIPELINE would cost (disk, memory, time measured here) and which deviations it
# resolves by the exact theory, with the nets per bag that would; writes nothing.
plan pipeline=default_pipeline *args: build
    {{bin}}/nnqft-sample --pipeline {{pipeline}} --plan {{args}}

# Reduce PIPELINE's samples to n-point functions, compare with exact theory, plot.
moments pipeline=default_pipeline *args: build
    {{bin}}/nnqft-moments --pipeline {{pipeline}} {{args}}

# Write Slurm scripts for PIPELINE into data/NAME/slurm (add --submit to submit them).
slurm pipeline=default_pipeline *args: build
    {{bin}}/nnqft-slurm --pipeline {{pipeline}} {{args}}

# Fit the couplings of the effective action (M0-M3, 6-point prediction, u4/u6) to PIPELINE's moments.
fit pipeline=default_pipeline *args: build
    {{bin}}/nnqft-fit --pipeline {{pipeline}} {{args}}

# Run the couplings with the cutoff and sigma_W (flow.parquet, slopes.parquet, plots); every stage ends by assembling data/NAME/report.html.
rg pipeline=default_pipeline *args: build
    {{bin}}/nnqft-rg --pipeline {{pipeline}} {{args}}

# Run every stage of PIPELINE end to end (extra args, e.g. --data DIR, go to every stage).
all pipeline=default_pipeline *args: (sample pipeline args) (moments pipeline args) (fit pipeline args) (rg pipeline args)

# Throughput of the sampler against a bare normal generator, the v1 sampler and numpy; moments MB/s; sample peak RSS.
bench *args: build
    python3 -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
    {{bin}}/nnqft-bench {{args}}

# The full test suite (Rust unit, doc and end-to-end tests; Python readers of our Parquet; the report in headless Chromium).
test:
    python3 -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
    command -v chromium > /dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null)
    cargo test --release --locked --workspace

# Remove all pipeline outputs (data/).
clean:
    rm -rf data
