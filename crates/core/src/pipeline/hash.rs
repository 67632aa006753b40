//! Config hashes: what determines the bytes of a sample part.

use super::*;
use crate::rng::sha256_hex;
use crate::sampler::SAMPLER_VERSION;
use crate::ArchSpec;

impl Pipeline {
    /// The config hash recorded in every sample part of (arch, width): it
    /// covers everything that determines the part's contents. A part whose
    /// recorded hash differs was made by another config.
    pub fn sample_hash(&self, arch: &ArchSpec, width: usize) -> String {
        let mut key = serde_json::json!({
            "sampler_version": SAMPLER_VERSION,
            "pipeline": self.name,
            "seed": self.seed,
            "arch": arch,
            "width": width,
            "nets_per_bag": self.sample.nets_per_bag,
            "nets_per_part": self.sample.nets_per_part,
        });
        if arch.hidden_layers > 1 {
            // deep archs have their own sampler; single-layer hashes are unchanged
            key["deep_sampler_version"] = crate::deep::DEEP_SAMPLER_VERSION.into();
        }
        sha256_hex(key.to_string().as_bytes())
    }
}
