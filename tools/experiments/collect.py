#!/usr/bin/env python3
"""Collects radmm runs (left by run_case.sh) into small CSV files.

  collect.py summary --runs DIR --jobs jobs.txt --out summary.csv
      one row per run: name, status, rc, seconds, iterations reached, final
      train/test MSE (normalised units, metrics.csv's last row), test MSE in the
      target's units (model.json), the largest per-layer gradient norm
      at the recorded iterations (grad_norms.csv, backprop only; with
      --metrics-every K only every K-th iteration is recorded) and radmm's message for failed runs.
  collect.py curve --run DIR --out curve.csv [--columns k,mse_train,mse_test,...]
      the chosen metrics.csv columns of one run (empty file with a header if the
      run left no metrics: it failed before the first record).
Standard library only.
"""
import argparse
import csv
import json
import math
import os
import sys


def read_result(run):
    res = {}
    path = os.path.join(run, "result.txt")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                res[k] = v
    return res


def read_metrics(run):
    path = os.path.join(run, "model", "metrics.csv")
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def summary(a):
    names = []
    with open(a.jobs) as f:
        for line in f:
            if line.strip():
                names.append(line.split()[0])
    fields = ["name", "status", "rc", "seconds", "iterations", "mse_train", "mse_test",
              "mse_test_target_units", "max_grad_norm_recorded", "message"]
    with open(a.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(fields)
        for name in names:
            run = os.path.join(a.runs, name)
            res = read_result(run)
            rows = read_metrics(run)
            last = rows[-1] if rows else {}
            units = math.nan
            mj = os.path.join(run, "model", "model.json")
            if os.path.exists(mj):
                with open(mj) as g:
                    m = json.load(g)
                fm = m.get("final_metrics") or m.get("metrics") or {}
                if isinstance(fm, dict) and fm.get("mse_test_target_units") is not None:
                    units = num(fm["mse_test_target_units"])
            gmax = math.nan
            gpath = os.path.join(run, "model", "grad_norms.csv")
            if os.path.exists(gpath):
                with open(gpath, newline="") as g:
                    vals = [num(v) for r in csv.DictReader(g) for k, v in r.items() if k != "k"]
                finite = [v for v in vals if math.isfinite(v)]
                gmax = max(finite) if finite else math.nan
            w.writerow([name, res.get("status", "missing"), res.get("rc", ""), res.get("seconds", ""),
                        last.get("k", ""), last.get("mse_train", ""), last.get("mse_test", ""),
                        "" if math.isnan(units) else "%.10g" % units,
                        "" if math.isnan(gmax) else "%.6g" % gmax,
                        res.get("message", "") if res.get("status") != "ok" else ""])


def curve(a):
    cols = a.columns.split(",")
    rows = read_metrics(a.run)
    with open(a.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow([r.get(c, "") for c in cols])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("summary")
    s.add_argument("--runs", required=True)
    s.add_argument("--jobs", required=True)
    s.add_argument("--out", required=True)
    c = sub.add_parser("curve")
    c.add_argument("--run", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--columns", default="k,mse_train,mse_test")
    a = ap.parse_args()
    {"summary": summary, "curve": curve}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
