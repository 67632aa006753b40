//! The sampler's loops are compiled for AVX-512, AVX2 and plain x86-64 (or
//! whatever the target has); the samples must be the same bits on each, or
//! data drawn on two machines would differ. Every instruction set this CPU
//! has is forced in turn and compared with the generic path, over every
//! activation, widths that leave remainders in the 8-lane loops, d_in = 2,
//! parameter means and several outputs.

use nnqft_core::rng::StreamKey;
use nnqft_core::sampler::Isa;
use nnqft_core::{Activation, ArchSpec, NetSampler};

fn archs() -> Vec<ArchSpec> {
    let mut out = Vec::new();
    for act in [Activation::Erf, Activation::Relu, Activation::Gauss, Activation::Tanh] {
        out.push(ArchSpec::single(act.name(), act, 1.3, 0.4, vec![vec![-1.0], vec![-0.2], vec![0.0], vec![0.7], vec![2.5]]));
        let mut a = ArchSpec::single(act.name(), act, 0.9, 0.8, vec![vec![0.3, -1.1], vec![1.5, 0.2], vec![-0.4, 0.0]]);
        a.d_in = 2;
        (a.mu_w, a.mu_b, a.mu_w_out, a.mu_b_out, a.d_out) = (0.5, -0.2, 0.7, 0.1, 2);
        out.push(a);
    }
    out
}

#[test]
fn every_instruction_set_gives_the_same_bits() {
    let isas: Vec<Isa> = [Isa::Avx512, Isa::Avx2].into_iter().filter(|i| i.available()).collect();
    eprintln!("instruction sets compared with the generic path: {isas:?} (detected: {:?})", Isa::detect());
    #[cfg(target_arch = "x86_64")]
    assert!(!isas.is_empty() || !std::arch::is_x86_feature_detected!("avx2"), "an AVX2 CPU must compare at least one vector path");
    for arch in archs() {
        for width in [1usize, 7, 10, 33, 100] {
            let key = StreamKey { seed: 9, arch: &arch.name, width, bag: 1, part: 2 };
            // the f64 outputs before their rounding to f32, which would
            // hide most one-ulp differences
            let generic = NetSampler::new(&arch, width).sample_part_f64_with(Isa::Generic, &mut key.stream(), 300);
            assert_eq!(generic.len(), arch.k() * arch.d_out);
            for &isa in &isas {
                let got = NetSampler::new(&arch, width).sample_part_f64_with(isa, &mut key.stream(), 300);
                for (c, (g, v)) in generic.iter().zip(&got).enumerate() {
                    let same = g.iter().zip(v).all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "{} d_in {} N = {width}: column {c} differs between {isa:?} and Generic", arch.name, arch.d_in);
                }
            }
            // the default path is one of them, and stores the f32 rounding
            let stored: Vec<Vec<f32>> = generic.iter().map(|c| c.iter().map(|v| *v as f32).collect()).collect();
            assert_eq!(NetSampler::new(&arch, width).sample_part(&mut key.stream(), 300), stored);
        }
    }
}

/// The comparison can fail: the next part's stream gives other bits.
#[test]
fn another_stream_gives_other_bits() {
    let arch = &archs()[0];
    let key = StreamKey { seed: 9, arch: &arch.name, width: 10, bag: 1, part: 2 };
    let a = NetSampler::new(arch, 10).sample_part_with(Isa::Generic, &mut key.stream(), 50);
    let b = NetSampler::new(arch, 10).sample_part_with(Isa::Generic, &mut StreamKey { part: 3, ..key }.stream(), 50);
    assert_ne!(a, b);
}

/// `sample_part` evaluates several nets per batch (erf: their activations
/// in one pass of 16-lane blocks); drawn one by one with `sample_net` from
/// the same normals, every net must come out with the same bits.
#[test]
fn batched_nets_equal_nets_one_by_one() {
    for arch in archs() {
        for width in [1usize, 3, 10, 17, 100] {
            let key = StreamKey { seed: 5, arch: &arch.name, width, bag: 0, part: 1 };
            let nets = 200;
            let batched = NetSampler::new(&arch, width).sample_part_with(Isa::Generic, &mut key.stream(), nets);
            let mut s = NetSampler::new(&arch, width);
            let mut normals = nnqft_core::normal::NormalStream::with_isa(&mut key.stream(), Isa::Generic);
            let mut out = vec![0.0; s.outputs_per_net()];
            for i in 0..nets {
                s.sample_net(&mut normals, &mut out);
                for (c, v) in batched.iter().zip(&out) {
                    assert_eq!(c[i].to_bits(), (*v as f32).to_bits(), "{} N = {width}, net {i}", arch.name);
                }
            }
        }
    }
}
