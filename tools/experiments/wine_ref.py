#!/usr/bin/env python3
"""Reference predictors on radmm's Wine Quality split: the constant mean and
least squares with an intercept, in radmm's normalised units and the target's.

The split is radmm's own (core/data.cpp make_split): a Fisher-Yates permutation
from core::rng (xoshiro256** seeded through splitmix64, Lemire's unbiased
bounded draw), the first round(test_fraction * n) indices are the test rows.
Features and target are min-max scaled with the training rows' min and max
(core::minmax_scaler), so a test MSE here is comparable with metrics.csv's
mse_test. Standard library only.

  wine_ref.py --data CSV [--target quality] [--test-fraction 0.2] [--seed 1]
              [--out refs.csv] [--npy-dir DIR] [--check-scalers model.json]

--npy-dir writes W_1.npy (zeros) and W_2.npy (the least-squares coefficients)
for a 2-layer ReLU network of width d0 + 1 with --bias on: that network is
exactly the linear model, so `radmm train --init-from DIR` reports the least
squares test MSE at iteration 0, an end-to-end check of this file's split.
"""
import argparse
import csv
import json
import struct
import sys

MASK = (1 << 64) - 1


class Rng:
    """core::rng: xoshiro256**, state seeded by splitmix64."""

    def __init__(self, seed):
        x = seed & MASK
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
            self.s.append(z ^ (z >> 31))

    @staticmethod
    def _rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & MASK

    def next_u64(self):
        s = self.s
        result = (self._rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self._rotl(s[3], 45)
        return result

    def below(self, n):
        if n == 0:
            return 0
        threshold = ((0 - n) & MASK) % n
        while True:
            r = self.next_u64()
            if r >= threshold:
                return r % n

    def permutation(self, n):
        p = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.below(i + 1)
            p[i], p[j] = p[j], p[i]
        return p


def llround(x):
    # std::llround: halves away from zero (x >= 0 here).
    return int(x + 0.5)


def make_split(n, test_fraction, seed):
    n_test = llround(test_fraction * n)
    perm = Rng(seed).permutation(n)
    return perm[n_test:], perm[:n_test]  # train, test


def read_csv(path, target):
    with open(path, newline="") as f:
        text = f.read()
    delim = ";" if text.count(";") > text.count(",") else ","
    rows = list(csv.reader(text.splitlines(), delimiter=delim))
    rows = [r for r in rows if r]
    header = rows[0]
    try:
        [float(v) for v in header]
        header, body = None, rows
    except ValueError:
        body = rows[1:]
    data = [[float(v) for v in r] for r in body]
    if header is not None and target in header:
        t = header.index(target)
    else:
        t = int(target)
        if t < 0:
            t += len(data[0])
    X = [[v for c, v in enumerate(r) if c != t] for r in data]
    y = [r[t] for r in data]
    names = [h for c, h in enumerate(header) if c != t] if header else None
    return X, y, names


def minmax(cols_rows, train):
    lo = [min(cols_rows[i][c] for i in train) for c in range(len(cols_rows[0]))]
    hi = [max(cols_rows[i][c] for i in train) for c in range(len(cols_rows[0]))]
    return lo, hi


def scale(v, lo, hi):
    return (v - lo) / (hi - lo) if hi > lo else 0.0


def solve(A, b):
    """Gaussian elimination with partial pivoting (A is small and dense)."""
    n = len(A)
    M = [row[:] + [b[i]] for i, row in enumerate(A)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(M[r][c]))
        if M[p][c] == 0.0:
            raise ValueError("singular normal equations")
        M[c], M[p] = M[p], M[c]
        for r in range(c + 1, n):
            f = M[r][c] / M[c][c]
            if f:
                for k in range(c, n + 1):
                    M[r][k] -= f * M[c][k]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (M[r][n] - sum(M[r][k] * x[k] for k in range(r + 1, n))) / M[r][r]
    return x


def write_npy(path, rows):
    r, c = len(rows), len(rows[0])
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (%d, %d), }" % (r, c)
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        for row in rows:
            f.write(struct.pack("<%dd" % c, *row))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--target", default="quality")
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="CSV: predictor,mse_train,mse_test,mse_test_target_units")
    ap.add_argument("--npy-dir", help="write the least-squares model as W_1.npy, W_2.npy")
    ap.add_argument("--check-scalers", metavar="MODEL_JSON",
                    help="compare the training min/max with a radmm model.json on the same split")
    a = ap.parse_args()

    X, y, _ = read_csv(a.data, a.target)
    train, test = make_split(len(y), a.test_fraction, a.seed)
    xlo, xhi = minmax(X, train)
    ylo, yhi = min(y[i] for i in train), max(y[i] for i in train)
    d0 = len(X[0])
    Z = [[scale(v, xlo[c], xhi[c]) for c, v in enumerate(r)] + [1.0] for r in X]  # bias last, as --bias on
    t = [scale(v, ylo, yhi) for v in y]

    if a.check_scalers:
        with open(a.check_scalers) as f:
            m = json.load(f)
        text = json.dumps(m)
        bad = [v for v in xlo + xhi + [ylo, yhi] if ("%.17g" % v) not in text and repr(v) not in text]
        if bad:
            sys.exit("wine_ref.py: training min/max %s not found in %s: the split differs" % (bad[:3], a.check_scalers))
        print("wine_ref.py: scalers match %s" % a.check_scalers)

    def mse(pred, idx):
        return sum((pred(i) - t[i]) ** 2 for i in idx) / len(idx)

    mean = sum(t[i] for i in train) / len(train)
    k = d0 + 1
    A = [[sum(Z[i][r] * Z[i][c] for i in train) for c in range(k)] for r in range(k)]
    b = [sum(Z[i][r] * t[i] for i in train) for r in range(k)]
    w = solve(A, b)

    def ls(i):
        return sum(w[c] * Z[i][c] for c in range(k))

    units = (yhi - ylo) ** 2
    rows = [("constant mean", mse(lambda i: mean, train), mse(lambda i: mean, test)),
            ("least squares", mse(ls, train), mse(ls, test))]
    out = "predictor,mse_train,mse_test,mse_test_target_units\n"
    for name, tr, te in rows:
        out += "%s,%.10g,%.10g,%.10g\n" % (name, tr, te, te * units)
    if a.out:
        with open(a.out, "w") as f:
            f.write(out)
    else:
        sys.stdout.write(out)
    if a.npy_dir:
        write_npy(a.npy_dir + "/W_1.npy", [[0.0] * k for _ in range(k)])
        write_npy(a.npy_dir + "/W_2.npy", [w])


if __name__ == "__main__":
    main()
