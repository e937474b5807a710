"""Numbers reported by Rafiei, Maheri and Rabiee (2024), typed in from the paper so the
book can print them beside ours. Nothing here is computed."""

from __future__ import annotations

# Tables I (support attack) and II (query attack):
# {dataset: {(ways, shots): (accuracy, recall, precision)}}
TABLE_I_SUPPORT = {
    "mnist": {
        (3, 1): (0.79, 0.72, 0.84),
        (3, 2): (0.68, 0.74, 0.66),
        (3, 3): (0.61, 0.54, 0.63),
        (5, 1): (0.91, 0.98, 0.86),
        (5, 2): (0.69, 0.96, 0.62),
        (5, 3): (0.61, 0.86, 0.57),
        (7, 1): (0.71, 0.96, 0.64),
        (7, 2): (0.56, 0.66, 0.55),
        (7, 3): (0.51, 0.66, 0.51),
    },
    "fashion-mnist": {
        (3, 1): (0.79, 0.62, 0.94),
        (3, 2): (0.7, 0.52, 0.81),
        (3, 3): (0.59, 0.26, 0.76),
        (5, 1): (0.7, 0.48, 0.86),
        (5, 2): (0.61, 0.26, 0.87),
        (5, 3): (0.58, 0.16, 1.0),
        (7, 1): (0.73, 0.5, 0.93),
        (7, 2): (0.59, 0.2, 0.91),
        (7, 3): (0.58, 0.24, 0.75),
    },
}
TABLE_II_QUERY = {
    "mnist": {
        (3, 1): (0.92, 0.98, 0.88),
        (3, 2): (0.71, 0.52, 0.84),
        (3, 3): (0.59, 0.24, 0.80),
        (5, 1): (0.95, 0.98, 0.92),
        (5, 2): (0.69, 0.46, 0.85),
        (5, 3): (0.69, 0.38, 1.0),
        (7, 1): (0.93, 1.0, 0.88),
        (7, 2): (0.74, 0.52, 0.93),
        (7, 3): (0.67, 0.36, 0.95),
    },
    "fashion-mnist": {
        (3, 1): (0.78, 0.96, 0.71),
        (3, 2): (0.73, 0.66, 0.77),
        (3, 3): (0.62, 0.36, 0.75),
        (5, 1): (0.87, 1.0, 0.79),
        (5, 2): (0.7, 0.54, 0.79),
        (5, 3): (0.69, 0.44, 0.87),
        (7, 1): (0.82, 0.96, 0.75),
        (7, 2): (0.67, 0.44, 0.81),
        (7, 3): (0.7, 0.46, 0.88),
    },
}
PAPER_TABLES = {"support": TABLE_I_SUPPORT, "query": TABLE_II_QUERY}

# Tables III (support) and IV (query): attack runtime in seconds on the authors' dual-core
# PC with 8 GB of RAM, {iterations: {data size: seconds}}.
TABLE_III_SUPPORT_RUNTIME = {
    50: {3: 3.54, 5: 4.05, 10: 6.28, 15: 7.16, 20: 8.84},
    100: {3: 7.26, 5: 8.02, 10: 11.29, 15: 14.57, 20: 17.45},
    200: {3: 14.09, 5: 15.93, 10: 21.71, 15: 29.71, 20: 34.79},
}
TABLE_IV_QUERY_RUNTIME = {
    50: {3: 1.34, 5: 1.64, 10: 1.94, 15: 2.4, 20: 3.42},
    100: {3: 2.56, 5: 3.08, 10: 3.86, 15: 4.87, 20: 5.79},
    200: {3: 5.12, 5: 6.04, 10: 7.63, 15: 9.22, 20: 14.11},
}
PAPER_RUNTIMES = {"support": TABLE_III_SUPPORT_RUNTIME, "query": TABLE_IV_QUERY_RUNTIME}
