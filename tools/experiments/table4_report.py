#!/usr/bin/env python3
"""Table IV: serial against parallel runtime per width, mean +- sample std
over repetitions, the paper's numbers beside, and the smallest width where
the parallel run is faster.

  table4_report.py --runs DIR --jobs jobs.txt --out runtime.csv [--iterations K] [--cores C]
  table4_report.py --out runtime.csv [--iterations K] [--cores C]   (markdown from an existing CSV)

Run names are N<layers>_d<width>_<none|shm>_r<rep>. Time: metrics.csv's last
"seconds" (radmm's training time). Prints markdown. Standard library only.
"""
import argparse
import csv
import math
import os
import statistics

PAPER = {3000: ("253.8010 ± 1.0088", "313.3090 ± 1.4582"), 4000: ("543.0684 ± 2.3043", "603.5077 ± 1.5736"),
         5000: ("1132.5736 ± 13.3211", "1110.6362 ± 10.9119"), 5500: ("1650.6885 ± 24.2471", "1551.2158 ± 107.8684"),
         6000: ("2314.2873 ± 51.1496", "1968.3845 ± 51.0245"), 6500: ("2711.8983 ± 19.6904", "2483.0785 ± 59.7868")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", help="run directories; without it, --out is read, not written")
    ap.add_argument("--jobs")
    ap.add_argument("--out", required=True)
    ap.add_argument("--iterations", default="?")
    ap.add_argument("--cores", default="?")
    a = ap.parse_args()
    times, order, failed = {}, [], []
    names = []
    if a.runs:
        with open(a.jobs) as f:
            names = [line.split()[0] for line in f if line.strip()]
    for name in names:
        layers, d, mode, _ = name.split("_")
        key = (int(layers[1:]), int(d[1:]), mode)
        if key not in times:
            times[key] = ([], [])
            order.append(key)
        run = os.path.join(a.runs, name)
        res = dict(line.rstrip("\n").partition("=")[::2] for line in open(os.path.join(run, "result.txt")))
        if res.get("status") != "ok":
            failed.append("%s: %s (%s)" % (name, res.get("status"), res.get("message", "")))
            continue
        with open(os.path.join(run, "model", "metrics.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        times[key][0].append(float(rows[-1]["seconds"]))
        times[key][1].append(float(res["seconds"]))

    def stat(key):
        t = times.get(key, ([], []))[0]
        if not t:
            return math.nan, math.nan, 0
        return statistics.mean(t), (statistics.stdev(t) if len(t) > 1 else 0.0), len(t)

    if a.runs:
        with open(a.out, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["layers", "d", "mode", "mean_s", "std_s", "n", "wall_mean_s"])
            for key in sorted(order, key=lambda k: (k[0], k[2], k[1])):  # one series per block, for the plot
                m, s, n = stat(key)
                wall = times[key][1]
                w.writerow([key[0], key[1], key[2], "%.4f" % m, "%.4f" % s, n,
                            "%.4f" % statistics.mean(wall) if wall else "nan"])
    table = {}
    with open(a.out, newline="") as f:
        for r in csv.DictReader(f):
            table[(int(r["layers"]), int(r["d"]), r["mode"])] = (float(r["mean_s"]), float(r["std_s"]))

    print("Seconds for %s iterations, mean ± std over repetitions, on %s cores. "
          "Paper: 32-core server, d = 3000..6500, iteration count not stated." % (a.iterations, a.cores))
    for layers in sorted({k[0] for k in table}):
        print("")
        print("N = %d layers (%d worker processes):" % (layers, layers))
        print("")
        print("| d | serial | parallel (shm) | parallel / serial |")
        print("|---|---|---|---|")
        widths = sorted({k[1] for k in table if k[0] == layers})
        ratios = {}
        for d in widths:
            ms, ss = table.get((layers, d, "none"), (math.nan, math.nan))
            mp, sp = table.get((layers, d, "shm"), (math.nan, math.nan))
            ratios[d] = mp / ms if ms > 0 else math.nan
            print("| %d | %.3f ± %.3f | %.3f ± %.3f | %.2f |" % (d, ms, ss, mp, sp, ratios[d]))
        # Where parallel "starts to win": the smallest width from which it is
        # faster at that width and every larger one (a single noisy win at a
        # small width does not count).
        win = None
        for i, d in enumerate(widths):
            if all(ratios[e] < 1 for e in widths[i:]):
                win = d
                break
        print("")
        print("Parallel faster from d = %s on." % win if win is not None else
              "Parallel not faster from any of these widths on.")
    print("")
    print("Paper's Table IV (N = 5; parallel first faster at d = 5000):")
    print("")
    print("| d | serial | parallel |")
    print("|---|---|---|")
    for d, (s, p) in sorted(PAPER.items()):
        print("| %d | %s | %s |" % (d, s, p))
    if failed:
        print("")
        print("Failed runs: " + "; ".join(failed))


if __name__ == "__main__":
    main()
