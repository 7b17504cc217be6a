#!/usr/bin/python3
"""scikit-learn's Isolation Forest scores for the mmfuse parity test.

Usage: iforest_sklearn.py DATA.csv OUT.csv --train-rows N [--trees T] [--seed S ...]

DATA.csv: comma-separated with a header row, numeric columns only. The forest is
fitted on the first N rows (max_samples='auto' = min(256, N), the paper's
defaults) and `score_samples` is written for every row, one column per seed
(column `seed<S>`), so the test can compare mmfuse against scikit-learn and
scikit-learn against itself (the noise floor of random trees).
"""
import argparse
import sys

import numpy as np
from sklearn.ensemble import IsolationForest


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--train-rows", type=int, required=True)
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--seed", type=int, action="append", default=None)
    args = ap.parse_args()
    x = np.loadtxt(args.data, delimiter=",", skiprows=1, ndmin=2)
    seeds = args.seed or [0]
    cols = []
    for s in seeds:
        model = IsolationForest(n_estimators=args.trees, max_samples="auto", random_state=s)
        model.fit(x[: args.train_rows])
        cols.append(model.score_samples(x))
    with open(args.out, "w") as f:
        f.write(",".join(f"seed{s}" for s in seeds) + "\n")
        for row in np.stack(cols, axis=1):
            f.write(",".join(repr(float(v)) for v in row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
