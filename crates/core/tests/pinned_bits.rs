//! The samples of SAMPLER_VERSION 5 and DEEP_SAMPLER_VERSION 5, pinned (the
//! normals of version 5's 2048-layer ziggurat).
//!
//! The version numbers enter every config hash, so data drawn by one
//! version are never mixed with another's. That promise holds only if code
//! that keeps the version keeps every bit: a faster generator or activation
//! must reproduce the samples exactly, or bump the version. These tests
//! hash (FNV-1a over the bit patterns) samples that reach every branch of
//! the generator (among the 2^22 normals, by the rates of the 2048-layer
//! ziggurat: about 9,500 wedge tests, a dozen of them needing the exp,
//! and 100 tail draws) and of the samplers (4 activations, remainders in every
//! blocked loop, d_in = 2, means, two outputs, deep nets), on every
//! instruction set this CPU has, and compare them with the values recorded
//! when the versions were set. The single-layer samples are hashed as the
//! f64 outputs before their rounding to f32: version 4's fused
//! multiply-adds moved outputs by an ulp of f64, which changed only 4 of
//! 24.6 million stored f32 values (measured), so a hash of the stored
//! columns did not see it. The deep samples are hashed as stored.
//!
//! If one of these fails after a change, the change altered the samples:
//! undo it, or bump the version (`sampler.rs`, `deep.rs`), add a migration
//! note to the README and record the new values here (`print_the_hashes`).

use nnqft_core::deep::DeepSampler;
use nnqft_core::normal::NormalStream;
use nnqft_core::rng::StreamKey;
use nnqft_core::sampler::Isa;
use nnqft_core::{Activation, ArchSpec, NetSampler};

/// FNV-1a (64 bit) over a sequence of words.
fn fnv(words: impl IntoIterator<Item = u64>) -> u64 {
    words.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, w| (h ^ w).wrapping_mul(0x0100_0000_01b3))
}

fn cols_hash(cols: &[Vec<f32>]) -> u64 {
    fnv(cols.iter().flatten().map(|v| v.to_bits() as u64))
}

fn isas() -> Vec<Isa> {
    [Isa::Generic, Isa::Avx2, Isa::Avx512].into_iter().filter(|i| i.available()).collect()
}

fn key(arch: &str, width: usize) -> StreamKey<'_> {
    StreamKey { seed: 20261205, arch, width, bag: 3, part: 1 }
}

/// The bits of 2^22 normals over 4 streams, drawn in two uneven calls per
/// stream (`split`) or in one.
fn normal_words(isa: Isa, split: bool) -> Vec<u64> {
    let mut words = Vec::with_capacity(1 << 22);
    for part in 0..4 {
        let mut s = NormalStream::with_isa(&mut StreamKey { part, ..key("normals", 1) }.stream(), isa);
        let mut buf = vec![0.0; 1 << 20];
        let (a, b) = buf.split_at_mut(if split { 1000 + 7 * part as usize } else { 0 });
        s.fill(a);
        s.fill(b);
        words.extend(buf.iter().map(|z| z.to_bits()));
    }
    words
}

fn normals_hash(isa: Isa) -> u64 {
    fnv(normal_words(isa, true))
}

fn single_archs() -> Vec<ArchSpec> {
    let mut out = Vec::new();
    for act in Activation::ALL {
        out.push(ArchSpec::single(act.name(), act, 1.3, 0.4, vec![vec![-1.0], vec![-0.2], vec![0.0], vec![0.7], vec![2.5], vec![4.0]]));
        let mut a = ArchSpec::single(act.name(), act, 0.9, 0.8, vec![vec![0.3, -1.1], vec![1.5, 0.2], vec![-0.4, 0.0]]);
        a.d_in = 2;
        (a.mu_w, a.mu_b, a.mu_w_out, a.mu_b_out, a.d_out) = (0.5, -0.2, 0.7, 0.1, 2);
        out.push(a);
    }
    out
}

fn single_hash(isa: Isa) -> u64 {
    let mut hashes = Vec::new();
    for arch in single_archs() {
        for width in [1usize, 10, 33, 100] {
            let cols = NetSampler::new(&arch, width).sample_part_f64_with(isa, &mut key(&arch.name, width).stream(), 500);
            hashes.push(fnv(cols.iter().flatten().map(|v| v.to_bits())));
        }
    }
    fnv(hashes)
}

fn deep_hash(isa: Isa) -> u64 {
    let mut hashes = Vec::new();
    for arch in single_archs() {
        for (layers, width) in [(2usize, 5usize), (3, 16)] {
            let mut a = arch.clone();
            a.hidden_layers = layers;
            hashes.push(cols_hash(&DeepSampler::new(&a, width).sample_part_with(isa, &mut key(&a.name, width).stream(), 200)));
        }
    }
    fnv(hashes)
}

const NORMALS: u64 = 0xc1476039b684ee2a;
const SINGLE: u64 = 0x5172f32870c38cbc;
const DEEP: u64 = 0x911b1576a26b1097;

#[test]
fn normals_are_the_pinned_bits() {
    for isa in isas() {
        assert_eq!(normals_hash(isa), NORMALS, "{isa:?}: the normals differ from SAMPLER_VERSION 5's");
    }
}

#[test]
fn single_layer_samples_are_the_pinned_bits() {
    for isa in isas() {
        assert_eq!(single_hash(isa), SINGLE, "{isa:?}: the single-layer samples differ from SAMPLER_VERSION 5's");
    }
}

#[test]
fn deep_samples_are_the_pinned_bits() {
    for isa in isas() {
        assert_eq!(deep_hash(isa), DEEP, "{isa:?}: the deep samples differ from DEEP_SAMPLER_VERSION 5's");
    }
}

/// The hashes see a change: another seed, or one normal in 2^22 changed in its last bit.
#[test]
fn the_pins_see_a_one_bit_change() {
    let a = normals_hash(Isa::Generic);
    let mut words = normal_words(Isa::Generic, false);
    assert_eq!(fnv(words.iter().copied()), a, "drawing in one call gives the same normals");
    words[123_456] ^= 1;
    assert_ne!(fnv(words), a);
    let other = {
        let mut s = NormalStream::with_isa(&mut StreamKey { seed: 1, ..key("normals", 1) }.stream(), Isa::Generic);
        let mut buf = vec![0.0; 1 << 10];
        s.fill(&mut buf);
        fnv(buf.iter().map(|z| z.to_bits()))
    };
    assert_ne!(other, a);
}

/// The values to record after a version bump:
/// `cargo test --release -p nnqft-core --test pinned_bits -- --ignored --nocapture`.
#[test]
#[ignore]
fn print_the_hashes() {
    for isa in isas() {
        eprintln!("{isa:?} {:#018x} {:#018x} {:#018x}", normals_hash(isa), single_hash(isa), deep_hash(isa));
    }
}
