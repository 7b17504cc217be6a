#!/usr/bin/python3
"""Writes the small synthetic sensor fixtures in tests/fixtures/sensor/.

Everything here is generated (numpy, fixed seed); nothing is copied from a data
set. Run from the repository root: /usr/bin/python3 tests/tools/make_sensor_fixtures.py

pump_semicolon.csv  SKAB-like layout (';', datetime, 6 channels, anomaly and
                    changepoint labels), 1 Hz, 600 rows; rows 450..529 are a
                    fault (flow drops, vibration rises).
bad_rows.csv        comma layout, 60 rows, with bad rows on known lines:
                    line 12 non-numeric, line 20 missing field (ragged),
                    line 31 empty value, line 47 NaN.
decimal_comma.csv   ';' layout with decimal commas, 40 rows, no time column.
"""
import datetime as dt
import os

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "sensor")


def pump(rng, n):
    t0 = dt.datetime(2024, 1, 1, 8, 0, 0)
    slow = np.cumsum(rng.normal(0, 0.02, n))
    acc1 = 0.026 + 0.001 * rng.normal(size=n)
    acc2 = 0.040 + 0.001 * rng.normal(size=n)
    current = 1.3 + 0.4 * rng.normal(size=n)
    pressure = 0.25 + 0.1 * rng.normal(size=n)
    temperature = 70 + slow
    flow = 32 + np.round(0.4 * rng.normal(size=n))
    anomaly = np.zeros(n)
    anomaly[450:530] = 1
    flow[450:530] -= 4
    acc1[450:530] += 0.006
    change = np.zeros(n)
    change[450] = change[530] = 1
    rows = []
    for i in range(n):
        rows.append(
            f"{(t0 + dt.timedelta(seconds=i)).strftime('%Y-%m-%d %H:%M:%S')};{acc1[i]:.6f};{acc2[i]:.6f};"
            f"{current[i]:.4f};{pressure[i]:.5f};{temperature[i]:.3f};{flow[i]:.1f};{anomaly[i]:.1f};{change[i]:.1f}"
        )
    header = "datetime;Accelerometer1RMS;Accelerometer2RMS;Current;Pressure;Temperature;Volume Flow RateRMS;anomaly;changepoint"
    return header + "\n" + "\n".join(rows) + "\n"


def bad_rows(rng):
    lines = ["timestamp,a,b,c"]
    for i in range(60):
        lines.append(f"{i},{rng.normal():.5f},{rng.normal() + 5:.5f},{rng.normal() * 2:.5f}")
    # lines[k] is file line k + 1
    lines[11] = "10,0.5,abc,1.0"
    lines[19] = "18,0.5,1.0"
    lines[30] = "29,,1.0,2.0"
    lines[46] = "45,0.1,NaN,2.0"
    return "\n".join(lines) + "\n"


def decimal_comma(rng):
    lines = ["x;y"]
    for _ in range(40):
        lines.append(f"{rng.normal():.4f};{rng.normal() + 3:.4f}".replace(".", ","))
    return "\n".join(lines) + "\n"


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240101)
    with open(os.path.join(OUT, "pump_semicolon.csv"), "w") as f:
        f.write(pump(rng, 600))
    with open(os.path.join(OUT, "bad_rows.csv"), "w") as f:
        f.write(bad_rows(rng))
    with open(os.path.join(OUT, "decimal_comma.csv"), "w") as f:
        f.write(decimal_comma(rng))


if __name__ == "__main__":
    main()
