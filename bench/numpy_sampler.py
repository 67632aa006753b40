"""The obvious alternative to nnqft-sample: a batched numpy sampler of the same
single-hidden-layer ensemble (docs/physics.md §1), written as a competent numpy
user would: vectorised over a batch of nets, float64, one matmul per layer,
scipy's erf. One thread (BLAS threads pinned to 1 before numpy is imported).

Usage: python3 numpy_sampler.py ACTIVATION WIDTH SECONDS
Prints the throughput in nets per second (one number).
"""
import os

for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[v] = "1"

import sys
import time

import numpy as np
from scipy.special import erf

act, width, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
sw, sb = 1.0, 1.0
x = np.array([[-1.0], [-0.6], [-0.2], [0.2], [0.6], [1.0]])  # k = 6 inputs, d_in = 1
k, d = x.shape
gauss_norm = np.exp(-(sb**2 + sw**2 * (x**2).sum(axis=1) / d))  # Gauss-net normalisation per input
sigma = {
    "erf": erf,
    "relu": lambda z: np.maximum(z, 0.0),
    "gauss": np.exp,
    "tanh": np.tanh,
}[act]
rng = np.random.default_rng(1)
batch = max(16, (1 << 21) // (width * max(d, k)))


def sample(b):
    w0 = rng.standard_normal((b, width, d)) * (sw / np.sqrt(d))
    b0 = rng.standard_normal((b, width, 1)) * sb
    w1 = rng.standard_normal((b, 1, width)) * (sw / np.sqrt(width))
    b1 = rng.standard_normal((b, 1)) * sb
    h = sigma(w0 @ x.T + b0)  # (b, N, k)
    f = (w1 @ h)[:, 0, :]  # (b, k)
    if act == "gauss":
        f = f * gauss_norm
    return f + b1


sample(batch)  # warm up
nets, start = 0, time.perf_counter()
while time.perf_counter() - start < seconds:
    sample(batch)
    nets += batch
print(nets / (time.perf_counter() - start))
