//! The provenance keys that tie the stages' tables together: the cache key
//! of one (arch, width) reduction and the `config_hash` of the moments and
//! layers tables. The moments stage writes them; fit and rg recompute them
//! from the pipeline to refuse stale inputs. Pure functions of the pipeline.

use nnqft_core::rng::sha256_hex;
use nnqft_core::{ArchSpec, Pipeline};

/// Version of the reduction; enters the cache key.
pub const MOMENTS_VERSION: u32 = 1;

/// Version of the moments tables' columns (2: the exact estimator variance
/// and the unreliable flags, also on the per-layer rows; 3: c6, c8, the exact
/// chain and the NLO kernel per layer, m6 and m8 per bag, layer_moments.parquet); enters [`tables_hash`] but not the cache key,
/// so a new version rewrites the tables from the cached reductions and
/// fit and rg refuse tables of an older one.
pub const TABLES_VERSION: u32 = 3;

/// The cache key: the samples' config hash, the orders and the reducer version.
pub fn reduce_key(p: &Pipeline, arch: &ArchSpec, width: usize) -> String {
    let key = serde_json::json!({
        "moments_version": MOMENTS_VERSION,
        "sample_hash": p.sample_hash(arch, width),
        "bags": p.sample.bags,
        "orders": p.moments.orders,
    });
    sha256_hex(key.to_string().as_bytes())
}

/// The cache key of a deep arch's per-layer reduction.
pub fn layers_key(p: &Pipeline, arch: &ArchSpec, width: usize) -> String {
    format!("layers-v2-{}", reduce_key(p, arch, width)) // v2: tuples of orders 2..8 per layer
}

/// The `config_hash` that `moments.parquet` and `moments_bags.parquet`
/// (`deep = false`) or `layers.parquet` and `layers_bags.parquet`
/// (`deep = true`) carry when written from `p` as configured now: a hash
/// of the reduce keys of its (arch, width) pairs, in pipeline order. A
/// downstream stage refuses a table whose footer records another.
pub fn tables_hash(p: &Pipeline, deep: bool) -> String {
    let keys: Vec<String> = p
        .arch_widths()
        .into_iter()
        .filter(|&(a, _)| (p.sample.arch[a].hidden_layers > 1) == deep)
        .map(|(a, w)| if deep { layers_key(p, &p.sample.arch[a], w) } else { reduce_key(p, &p.sample.arch[a], w) })
        .collect();
    let versioned = format!("tables-v{TABLES_VERSION},{}", keys.join(","));
    sha256_hex(versioned.as_bytes())
}

/// Version of the symmetry reduction and tables; enters [`symmetry_hash`].
pub const SYMMETRY_VERSION: u32 = 1;

/// The cache key of one (symmetry test, width): the test as configured, its
/// rotation seed and the reduce keys of the samples it reads.
pub fn symmetry_key(p: &Pipeline, t: &nnqft_core::pipeline::SymmetryTest, width: usize) -> String {
    let reduce = |name: &str| p.arch(name).map(|a| reduce_key(p, a, width)).unwrap_or_default();
    let key = serde_json::json!({
        "version": SYMMETRY_VERSION,
        "test": t,
        "seed": t.seed(p),
        "width": width,
        "arch": reduce(&t.arch),
        "image": t.image.as_deref().map(reduce),
    });
    sha256_hex(key.to_string().as_bytes())
}

/// The `config_hash` of `symmetry.parquet` and `symmetry_tests.parquet`.
pub fn symmetry_hash(p: &Pipeline) -> String {
    let keys: Vec<String> = p.symmetry.test.iter().flat_map(|t| t.widths(p).into_iter().map(move |w| symmetry_key(p, t, w))).collect();
    sha256_hex(format!("symmetry-v{SYMMETRY_VERSION},{}", keys.join(",")).as_bytes())
}
