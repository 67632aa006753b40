# The ziggurat of the standard normal density f(x) = exp(-x^2 / 2) with 2^B
# layers of equal area V (B from the command line; nnqft's sampler uses
# B = 10): R solves "the top layer ends at x = 0" by bisection, in 60-digit
# arithmetic, and every entry is rounded to the nearest f64.
#
#   X[0] = V / f(R), X[1] = R, X[i + 1] = f^-1(V / X[i] + f(X[i])), X[n] = 0
#   F[i] = f(X[i])
#
# Regenerate (needs mpmath; a few seconds):
#   python3 crates/core/tools/ziggurat_table.py 10 > crates/core/src/ziggurat_tables.rs
# `tests/normal.rs` checks the areas of the layers it writes.
import sys

import mpmath as mp
mp.mp.dps = 60
B = int(sys.argv[1])
n = 1 << B
f = lambda x: mp.exp(-x * x / 2)
tail = lambda r: mp.sqrt(mp.pi / 2) * mp.erfc(r / mp.sqrt(2))

def top(r):
    """How far above the density's peak the top layer ends (> 0: R too small)."""
    v = r * f(r) + tail(r)
    x = r
    for _ in range(n - 2):
        y = v / x + f(x)
        if y >= 1:
            return mp.mpf(1)
        x = mp.sqrt(-2 * mp.log(y))
    return v / x + f(x) - 1

lo, hi = mp.mpf(2), mp.mpf(6)
for _ in range(220):
    mid = (lo + hi) / 2
    if top(mid) > 0:
        lo = mid
    else:
        hi = mid
r = (lo + hi) / 2
v = r * f(r) + tail(r)
xs = [v / f(r), r]
x = r
for _ in range(n - 2):
    x = mp.sqrt(-2 * mp.log(v / x + f(x)))
    xs.append(x)
xs.append(mp.mpf(0))
fs = [f(x) for x in xs]
fs[-1] = mp.mpf(1)
miss = 1 - sum(xs[i + 1] / xs[i] for i in range(n)) / n
print(f"layers {n}: R = {mp.nstr(r, 20)}, V = {mp.nstr(v, 20)}, fast-path misses {mp.nstr(miss, 4)}", file=sys.stderr)

def rows(values):
    out = []
    for k in range(0, len(values), 4):
        out.append("     " + " ".join(f"{float(z)!r}," for z in values[k:k + 4]))
    return "\n".join(out).rstrip(",")

print(f"""//! The {n}-layer ziggurat of the standard normal density, written by
//! `crates/core/tools/ziggurat_table.py {B}` (60-digit arithmetic, each entry
//! rounded to the nearest f64). `ZIG_NORM_X[i]` is the right edge of layer i
//! (`X[0] = V / f(R)` so the base layer has the same area V as the others,
//! `X[1] = R`, `X[{n}] = 0`); `ZIG_NORM_F[i] = exp(-X[i]^2 / 2)`.
//! `tests/normal.rs` checks them. A fraction {mp.nstr(miss, 3)} of the fast
//! path's draws fall outside their layer's rectangle.

/// Layers of the ziggurat: a draw's low [`ZIG_NORM_BITS`] bits pick one.
pub const ZIG_NORM_LAYERS: usize = {n};
/// `log2(ZIG_NORM_LAYERS)`.
pub const ZIG_NORM_BITS: u32 = {B};
/// The base layer's edge: its rectangle ends at R, the tail beyond.
pub const ZIG_NORM_R: f64 = {float(r)!r};
/// The layers' right edges, `ZIG_NORM_LAYERS + 1` of them.
#[rustfmt::skip]
pub static ZIG_NORM_X: [f64; {n + 1}] =
    [{rows(xs).lstrip()}];
/// `exp(-X[i]^2 / 2)` for each edge.
#[rustfmt::skip]
pub static ZIG_NORM_F: [f64; {n + 1}] =
    [{rows(fs).lstrip()}];""")
