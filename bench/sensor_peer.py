#!/usr/bin/python3
"""Peer for bench/sensor_bench.sh: scikit-learn's Isolation Forest (the
reference implementation of the same algorithm) fitted on the same training
rows and scoring the same CSV, one row at a time (a stream) and as one batch.

Usage: sensor_peer.py DATA.csv --train-rows N [--stream-rows M]
Prints JSON: {"sklearn_version", "fit_ms", "rows_per_s_stream", "rows_per_s_batch"}.
Run with OMP_NUM_THREADS=1 for a one-core figure.
"""
import argparse
import json
import time

import numpy as np
import sklearn
from sklearn.ensemble import IsolationForest


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--train-rows", type=int, default=400)
    ap.add_argument("--stream-rows", type=int, default=2000)
    args = ap.parse_args()
    x = np.loadtxt(args.data, delimiter=",", skiprows=1, ndmin=2)
    t0 = time.perf_counter()
    model = IsolationForest(n_estimators=100, max_samples="auto", random_state=0, n_jobs=1)
    model.fit(x[: args.train_rows])
    t1 = time.perf_counter()
    n = min(args.stream_rows, len(x))
    for i in range(n):  # a stream: each row is scored as it arrives
        model.score_samples(x[i : i + 1])
    t2 = time.perf_counter()
    model.score_samples(x)
    t3 = time.perf_counter()
    print(json.dumps({
        "sklearn_version": sklearn.__version__,
        "fit_ms": (t1 - t0) * 1000,
        "rows_per_s_stream": n / (t2 - t1),
        "rows_per_s_batch": len(x) / (t3 - t2),
    }))


if __name__ == "__main__":
    main()
