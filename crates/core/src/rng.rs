//! Deterministic random streams.
//!
//! Every unit of sampling work, (seed, arch, width, bag, part), owns an
//! independent Xoshiro256++ stream whose 256-bit state is the SHA-256 of the
//! key. The data therefore do not depend on thread count, on the order in
//! which parts run, on sharding or on interruptions.

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use sha2::{Digest, Sha256};

/// The generator used for all sampling.
pub type Stream = Xoshiro256PlusPlus;

/// Identifies one stream. Fields are hashed with length prefixes, so no two
/// distinct keys collide by concatenation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamKey<'a> {
    pub seed: u64,
    pub arch: &'a str,
    pub width: usize,
    pub bag: u32,
    pub part: u32,
}

impl StreamKey<'_> {
    /// The stream for this key.
    ///
    /// ```
    /// use nnqft_core::rng::StreamKey;
    /// use rand::Rng;
    /// let k = StreamKey { seed: 1, arch: "erf", width: 10, bag: 0, part: 0 };
    /// let (mut a, mut b) = (k.stream(), k.stream());
    /// assert_eq!(a.next_u64(), b.next_u64());
    /// let mut c = StreamKey { part: 1, ..k }.stream();
    /// assert_ne!(k.stream().next_u64(), c.next_u64());
    /// ```
    pub fn stream(&self) -> Stream {
        let mut h = Sha256::new();
        h.update(b"nnqft/stream/v1\0");
        h.update(self.seed.to_le_bytes());
        h.update((self.arch.len() as u64).to_le_bytes());
        h.update(self.arch.as_bytes());
        h.update((self.width as u64).to_le_bytes());
        h.update(self.bag.to_le_bytes());
        h.update(self.part.to_le_bytes());
        let seed: [u8; 32] = h.finalize().into();
        Xoshiro256PlusPlus::from_seed(seed)
    }
}

/// Lower-case hex SHA-256 of `bytes` (config hashes, file hashes).
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in d.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}
