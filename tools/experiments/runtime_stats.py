#!/usr/bin/env python3
"""Mean and sample standard deviation of run times, grouped by run name
without its trailing _r<k> (repetition) or _<rep> suffix.

  runtime_stats.py --runs DIR --jobs jobs.txt --out runtime.csv [--group-by-prefix]

Time per run: the last metrics.csv "seconds" (radmm's training time); runs that
did not finish count as missing (n says how many were used). Output columns:
method,activation,mean_s,std_s,n,wall_mean_s. Standard library only.
"""
import argparse
import csv
import math
import os
import statistics


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", required=True)
    ap.add_argument("--jobs", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    groups, order = {}, []
    with open(a.jobs) as f:
        names = [line.split()[0] for line in f if line.strip()]
    for name in names:
        key = name.rsplit("_r", 1)[0]
        if key not in groups:
            groups[key] = ([], [])
            order.append(key)
        run = os.path.join(a.runs, name)
        res = {}
        with open(os.path.join(run, "result.txt")) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                res[k] = v
        if res.get("status") != "ok":
            continue
        with open(os.path.join(run, "model", "metrics.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        groups[key][0].append(float(rows[-1]["seconds"]))
        groups[key][1].append(float(res["seconds"]))
    with open(a.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "activation", "mean_s", "std_s", "n", "wall_mean_s"])
        for key in order:
            t, wall = groups[key]
            method, act = key.split("_", 1)
            mean = statistics.mean(t) if t else math.nan
            std = statistics.stdev(t) if len(t) > 1 else 0.0
            w.writerow([method, act, "%.4f" % mean, "%.4f" % std, len(t),
                        "%.4f" % (statistics.mean(wall) if wall else math.nan)])


if __name__ == "__main__":
    main()
