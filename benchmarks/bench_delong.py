"""Time the O(n log n) DeLong (Sun & Xu 2014) against the textbook O(m n) one, and check they agree.

Run: python benchmarks/bench_delong.py [--sizes 1000 5000 20000] [--budget 10]
Both are timed in the same run on the same data (two correlated, tied score
vectors, 30% positives, as in a paired comparison of two input conditions).
The naive one is skipped at a size where its time, extrapolated as n^2 from
the previous size, would exceed the budget in seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_stats import naive_delong  # the test suite's reference implementation

from cxrmask.stats import check_binary_scores, fast_delong


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Best wall time of ``repeats`` calls (least disturbed by other load) and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--budget", type=float, default=10.0, help="seconds allowed for one naive run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(f"{'n':>8} {'fast_ms':>10} {'naive_ms':>10} {'speedup':>9} {'max|dAUC|':>10} {'max rel dCov':>12}")
    naive_s, naive_n = None, None
    for n in args.sizes:
        rng = np.random.default_rng(args.seed + n)
        y = rng.random(n) < 0.3
        base = rng.normal(size=n) + y
        scores = np.round(base + rng.normal(scale=0.8, size=(2, n)), 2)
        yb, stacked = check_binary_scores(y, *scores)
        fast_s, (aucs, cov) = best_time(lambda yb=yb, stacked=stacked: fast_delong(yb, stacked), repeats=5)
        predicted = None if naive_s is None else naive_s * (n / naive_n) ** 2
        if predicted is not None and predicted > args.budget:
            print(f"{n:>8} {fast_s * 1e3:>10.2f} {'skipped':>10} {'-':>9} {'-':>10} {'-':>12}")
            continue
        naive_s, (ref_aucs, ref_cov) = best_time(
            lambda y=y, scores=scores: naive_delong(y, scores), repeats=1
        )
        naive_n = n
        d_auc = float(np.max(np.abs(aucs - ref_aucs)))
        d_cov = float(np.max(np.abs(cov - ref_cov) / np.abs(ref_cov)))
        if d_auc > 1e-12 or d_cov > 1e-9:
            raise SystemExit(
                f"fast and naive DeLong disagree at n={n}: |dAUC| {d_auc:.2e}, rel dCov {d_cov:.2e}"
            )
        print(
            f"{n:>8} {fast_s * 1e3:>10.2f} {naive_s * 1e3:>10.1f} {naive_s / fast_s:>8.0f}x "
            f"{d_auc:>10.1e} {d_cov:>12.1e}"
        )


if __name__ == "__main__":
    main()
