//! Tuple enumeration, Wick pairings and the product-tree reducer.

use nnqft_core::tuples::{ProductTree, pair_quad_splits, pairings, tuple_index, tuples, wick};

#[test]
fn tuple_counts_and_order() {
    for (n, count) in [(1, 6), (2, 21), (3, 56), (4, 126), (5, 252), (6, 462)] {
        let ts = tuples(6, n);
        assert_eq!(ts.len(), count, "order {n}");
        assert!(ts.windows(2).all(|w| w[0] < w[1]), "strictly lexicographic");
        assert!(ts.iter().all(|t| t.windows(2).all(|p| p[0] <= p[1])), "sorted multisets");
        for (i, t) in ts.iter().enumerate() {
            assert_eq!(tuple_index(6, t), i);
        }
    }
    assert_eq!(tuples(4, 4).len(), 35);
    assert_eq!(tuples(1, 6), vec![vec![0; 6]]);
}

#[test]
fn pairings_are_complete() {
    assert_eq!(pairings(2).len(), 1);
    assert_eq!(pairings(4).len(), 3);
    let p6 = pairings(6);
    assert_eq!(p6.len(), 15);
    for p in &p6 {
        let mut pts: Vec<usize> = p.iter().flat_map(|&(a, b)| [a, b]).collect();
        pts.sort();
        assert_eq!(pts, (0..6).collect::<Vec<_>>());
    }
    assert_eq!(pair_quad_splits().len(), 15);
    // Wick: Gaussian moments E[x^6] = 15, E[x^2 y^2] = 1 + 2 c^2.
    assert_eq!(wick(&[0; 6], |_, _| 1.0), 15.0);
    let c = 0.3;
    let k = |a: usize, b: usize| if a == b { 1.0 } else { c };
    assert!((wick(&[0, 0, 1, 1], k) - (1.0 + 2.0 * c * c)).abs() < 1e-15);
}

#[test]
fn product_tree_matches_naive_sums() {
    let k = 5;
    let rows = 1300; // several blocks, last one partial
    let cols: Vec<Vec<f32>> = (0..k).map(|a| (0..rows).map(|r| (((r * 7 + a * 13) % 17) as f32 - 8.0) / 5.0).collect()).collect();
    let weights: Vec<f64> = (0..rows).map(|r| 1.0 + (r % 3) as f64).collect();
    let refs: Vec<&[f32]> = cols.iter().map(|c| c.as_slice()).collect();
    let tree = ProductTree::new(k, &[2, 4, 6]);
    for w in [None, Some(&weights[..])] {
        let sums = tree.sums(&refs, w);
        assert_eq!(sums.keys().copied().collect::<Vec<_>>(), vec![2, 4, 6]);
        for (&o, got) in &sums {
            for (t, g) in tuples(k, o).iter().zip(got) {
                let want: f64 = (0..rows)
                    .map(|r| w.map_or(1.0, |w| w[r]) * t.iter().map(|&a| cols[a][r] as f64).product::<f64>())
                    .sum();
                assert!((g - want).abs() <= 1e-9 * want.abs().max(1.0), "{t:?}: {g} vs {want}");
            }
        }
    }
}

#[test]
fn product_tree_gives_the_same_bits_on_every_instruction_set() {
    use nnqft_core::sampler::Isa;
    let k = 6;
    let rows = 2 * 512 + 77; // whole blocks, a partial one and a partial lane group
    let cols: Vec<Vec<f32>> = (0..k)
        .map(|a| (0..rows).map(|r| (((r * 2654435761 + a * 97) % 1000) as f32 / 137.0 - 3.3).sin() * 2.5).collect())
        .collect();
    let weights: Vec<f64> = (0..rows).map(|r| 0.5 + (r % 7) as f64 / 3.0).collect();
    let refs: Vec<&[f32]> = cols.iter().map(|c| c.as_slice()).collect();
    let tree = ProductTree::new(k, &[1, 2, 4, 6]);
    for w in [None, Some(&weights[..])] {
        let generic = tree.sums_with_isa(Isa::Generic, &refs, w);
        let mut checked = 0;
        for isa in [Isa::Avx2, Isa::Avx512].into_iter().filter(|i| i.available()) {
            let got = tree.sums_with_isa(isa, &refs, w);
            for (o, v) in &generic {
                let differ = v.iter().zip(&got[o]).position(|(a, b)| a.to_bits() != b.to_bits());
                assert_eq!(differ, None, "{isa:?}, order {o}: first tuple whose sum differs from the generic loops'");
            }
            checked += 1;
        }
        eprintln!("checked {checked} instruction sets against the generic loops");
    }
}
