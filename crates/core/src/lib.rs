//! # nnqft-core
//!
//! Ensembles of randomly initialised neural networks as field theories:
//! activations, architectures, Gaussian-process kernels, quadrature, the
//! sampler and its deterministic random streams, and pipeline configs.
//! Pure computation, no I/O.

pub mod activation;
pub mod arch;
pub mod boxint;
pub mod chain;
pub mod deep;
pub mod exact;
pub mod fastmath;
pub mod kernel;
pub mod means;
pub mod normal;
pub mod pairexp;
pub mod pipeline;
pub mod quad;
pub mod rng;
pub mod sampler;
pub mod symmetry;
pub mod tuples;
pub mod variance;
pub mod vertex;
pub mod ziggurat_tables;

pub use activation::Activation;
pub use arch::{ArchSpec, Unit};
pub use pipeline::{ConfigError, Pipeline};
pub use sampler::NetSampler;

/// The crate version, recorded in every output file's footer.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
