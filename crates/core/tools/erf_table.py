# Coefficients of nnqft's sampler-v4 erf: 16 intervals of width 3/8 on [0, 6),
# a degree-11 polynomial in dx = |x| - c on each (c: the midpoint; 0 on the
# first, whose constant term is exactly 0 so that erf(0) = 0), interpolating
# erf at the 12 Chebyshev points of the interval (50-digit arithmetic),
# rounded to the nearest f64.
#
# Regenerate (needs mpmath; about a minute):
#   python3 crates/core/tools/erf_table.py > crates/core/src/erf_poly.in
# It also prints each piece's error with the rounded coefficients (stderr).
import sys

import mpmath as mp
mp.mp.dps = 50
W = mp.mpf(3) / 8
DEG = 11
def interp(f, a, b, c, powers):
    n = len(powers)
    h = (b - a) / 2
    m = (a + b) / 2
    nodes = [m + h * mp.cos(mp.pi * (k + mp.mpf(1) / 2) / n) for k in range(n)]
    A = mp.matrix([[(x - c) ** p for p in powers] for x in nodes])
    y = mp.matrix([f(x) for x in nodes])
    return list(mp.lu_solve(A, y))
rows = []
for i in range(16):
    a, b = i * W, (i + 1) * W
    if i == 0:
        co = [mp.mpf(0)] + interp(mp.erf, a, b, 0, list(range(1, DEG + 1)))
    else:
        co = interp(mp.erf, a, b, (a + b) / 2, list(range(DEG + 1)))
    rows.append(co)
    xs = [a + (b - a) * k / 1000 for k in range(1001)]
    c = 0 if i == 0 else (a + b) / 2
    err = max(abs(sum(mp.mpf(float(co[j])) * (x - c) ** j for j in range(DEG + 1)) - mp.erf(x)) for x in xs)
    print(f"interval {i}: max |p - erf| with f64 coefficients {float(err):.2e}", file=sys.stderr)
print("[")
for j in range(DEG + 1):
    print("    [" + ", ".join(repr(float(rows[i][j])) for i in range(16)) + "],")
print("]")
