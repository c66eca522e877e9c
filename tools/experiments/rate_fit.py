#!/usr/bin/env python3
"""Fits an R-linear rate to the augmented Lagrangian's distance to its final
value: |L_k - L_K| ~ c * rho^k, least squares on log10 over k in [K/10, K/2]
(the tail is left out: L_K is only a stand-in for the limit L*).

  rate_fit.py --metrics metrics.csv --out distance.csv

distance.csv: k,L,dist,fit. Prints rho=, c=, k0=, k1=, r2=, L_K=, increases= (iterations where L went
up: Proposition 1 says none for the proximal variant) and a sentence.
Standard library only.
"""
import argparse
import csv
import math


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    with open(a.metrics, newline="") as f:
        rows = [(int(r["k"]), float(r["L"])) for r in csv.DictReader(f)]
    K, LK = rows[-1]
    k0, k1 = max(1, K // 10), max(2, K // 2)
    pts = [(k, math.log10(abs(L - LK))) for k, L in rows if k0 <= k <= k1 and L != LK]
    n = len(pts)
    mk = sum(k for k, _ in pts) / n
    my = sum(y for _, y in pts) / n
    slope = sum((k - mk) * (y - my) for k, y in pts) / sum((k - mk) ** 2 for k, _ in pts)
    icpt = my - slope * mk
    rho, c = 10 ** slope, 10 ** icpt
    ss_res = sum((y - (icpt + slope * k)) ** 2 for k, y in pts)
    ss_tot = sum((y - my) ** 2 for _, y in pts)
    r2 = 1 - ss_res / ss_tot if ss_tot > 0 else 1.0
    with open(a.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["k", "L", "dist", "fit"])
        for k, L in rows:
            d = abs(L - LK)
            w.writerow([k, "%.17g" % L, "%.6e" % d if d > 0 else "nan", "%.6e" % (c * rho ** k)])
    ups = [k for (k, L), (_, Lp) in zip(rows[1:], rows) if L > Lp + 1e-12 * max(1.0, abs(Lp))]
    print("rho=%.6f" % rho)
    print("c=%.6g" % c)
    print("k0=%d" % k0)
    print("k1=%d" % k1)
    print("r2=%.4f" % r2)
    print("L_K=%.10g" % LK)
    print("increases=%d" % len(ups))
    print("first_increase=%s" % (ups[0] if ups else "none"))
    print("|L_k - L_K| ~ %.3g * %.4f^k on k in [%d, %d] (R^2 = %.3f): the distance shrinks by %.2f %% per iteration"
          % (c, rho, k0, k1, r2, 100 * (1 - rho)))


if __name__ == "__main__":
    main()
