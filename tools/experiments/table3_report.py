#!/usr/bin/env python3
"""Markdown for Table III: radmm's test MSE beside the paper's.

  table3_report.py --summary summary.csv --references references.csv [--iterations K]

A cell is "-" when the run diverged or failed (the reason follows in a
footnote list) or its test MSE exceeds 500, the paper's rule. Bold: the two
smallest of the five paper-setting methods in each row, as in the paper.
Standard library only.
"""
import argparse
import csv
import math

# Table III of the paper (test MSE after 600 iterations; None = "-").
PAPER = {
    "relu": {3: [0.2951, 0.2951, 0.0656, 0.0668, 0.0941],
             10: [301.7660, 301.7660, 0.0652, 0.0657, 0.0640],
             20: [None, None, 0.1357, 0.0705, 0.0729],
             30: [None, None, 1.4892, 0.0864, 0.0708],
             40: [None, None, 106.2628, 0.0844, 0.0725]},
    "sigmoid": {3: [0.0629, 0.0586, 0.0579, 0.0593, 0.0579],
                10: [0.0598, 0.0596, 0.0569, 0.0606, 0.0626],
                20: [2.2278, 6.1277, 0.0556, 0.0848, 0.0595],
                30: [None, 0.0697, 0.0574, 0.1114, 0.0647],
                40: [None, 13.2671, 0.0577, 0.0725, 0.0688]},
}
METHODS = ["sgd", "sgdm", "adam", "2s", "3s"]
LABEL = {"sgd": "SGD", "sgdm": "SGDM", "adam": "Adam", "2s": "2S", "3s": "3S",
         "2s-default": "2S default", "3s-default": "3S default"}


def fmt(v):
    if v is None or not math.isfinite(v) or v > 500:
        return "-"
    return "%.4f" % v if v < 100 else "%.1f" % v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--summary", required=True)
    ap.add_argument("--references", required=True)
    ap.add_argument("--iterations", default="600")
    a = ap.parse_args()

    runs = {}
    with open(a.summary, newline="") as f:
        for r in csv.DictReader(f):
            meth, act, depth = r["name"].rsplit("_", 2)
            mse = float(r["mse_test"]) if r["status"] == "ok" and r["mse_test"] not in ("", "nan") else None
            runs[(meth, act, int(depth))] = (mse, r)
    depths = sorted({d for (_, _, d) in runs})

    out = []
    out.append("Test MSE after %s iterations, normalised units (min-max scaled target, "
               "`||pred - y||^2 / n`). radmm = this machine; paper = Table III. "
               "Bold: the two smallest radmm paper-setting results in the row." % a.iterations)
    out.append("")
    head = "| act | N | " + " | ".join("%s radmm | %s paper" % (LABEL[m], LABEL[m]) for m in METHODS) + \
           " | 2S default | 3S default |"
    out.append(head)
    out.append("|" + "---|" * (2 + 2 * len(METHODS) + 2))
    notes = []
    for act in ("relu", "sigmoid"):
        for d in depths:
            vals = [runs.get((m, act, d), (None, None))[0] for m in METHODS]
            finite = sorted(v for v in vals if v is not None and v <= 500)
            best = set(finite[:2])
            cells = []
            for i, m in enumerate(METHODS):
                v = vals[i]
                s = fmt(v)
                if v is not None and v in best:
                    s = "**%s**" % s
                p = PAPER.get(act, {}).get(d, [None] * 5)[i] if d in PAPER.get(act, {}) else "n/a"
                cells.append(s)
                cells.append(p if p == "n/a" else fmt(p))
            for m in ("2s-default", "3s-default"):
                cells.append(fmt(runs.get((m, act, d), (None, None))[0]))
            out.append("| %s | %d | %s |" % ("ReLU" if act == "relu" else "sigmoid", d, " | ".join(cells)))
            for m in METHODS + ["2s-default", "3s-default"]:
                mse, r = runs.get((m, act, d), (None, None))
                if r is not None and r["status"] != "ok":
                    notes.append("%s %s N=%d: %s (%s)" % (LABEL[m], act, d, r["status"], r["message"].strip()))
                elif mse is not None and mse > 500:
                    notes.append("%s %s N=%d: test MSE %.4g > 500" % (LABEL[m], act, d, mse))
    out.append("")
    out.append("Reference predictors on the same split (normalised units; target units in brackets):")
    out.append("")
    with open(a.references, newline="") as f:
        for r in csv.DictReader(f):
            out.append("- %s: test MSE %.4f (%.4f), train MSE %.4f" % (
                r["predictor"], float(r["mse_test"]), float(r["mse_test_target_units"]), float(r["mse_train"])))
    if notes:
        out.append("")
        out.append("Runs shown as \"-\":")
        out.append("")
        for n in notes:
            out.append("- " + n)
    print("\n".join(out))


if __name__ == "__main__":
    main()
