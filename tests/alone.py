"""Run test modules one at a time, each in a process of its own, at 1 and at 2 threads.

``make test`` runs modules side by side on shared workers, so a test that
passes only because another module ran first (a seed, a cache, a global
setting it left behind), or only at one thread count, can hide there. Each
module named here runs alone, in a new random order, under
``OMP_NUM_THREADS`` of 1 and then 2 (torch's default thread count follows
it); a failure names the module, the thread count and the order's seed,
which is all it takes to repeat it.

    python tests/alone.py                      # 6 modules drawn at random
    python tests/alone.py --sample 0           # every module
    python tests/alone.py test_qc.py test_stats.py
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
THREADS = (1, 2)

log = logging.getLogger("alone")


def all_modules() -> list[str]:
    """Every test module; only its fast tests run (end-to-end runs are whole workflows, alone already)."""
    return sorted(p.name for p in TESTS.glob("test_*.py"))


def run_alone(module: str, threads: int, order_seed: int) -> bool:
    """One module in its own pytest process at ``threads`` threads; whether it passed."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "randomly",
        f"--randomly-seed={order_seed}",
        "-m",
        "not slow",
        str(TESTS / module),
    ]
    result = subprocess.run(command, cwd=TESTS.parent, env=env, capture_output=True, text=True)
    # pytest exits 5 when the selection is empty (a module of slow tests only): nothing failed.
    passed = result.returncode in (0, 5)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    log.info("%-28s %d thread%s  seed %-10d %s", module, threads, "s"[: threads - 1], order_seed, summary)
    if not passed:
        log.error("%s failed alone at %d threads:\n%s\n%s", module, threads, result.stdout, result.stderr)
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("modules", nargs="*", help="test modules (default: a random sample)")
    parser.add_argument("--sample", type=int, default=6, help="modules drawn at random; 0: every module")
    parser.add_argument("--seed", type=int, default=None, help="seed of the draw and of each module's order")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    modules = args.modules or all_modules()
    unknown = [m for m in modules if not (TESTS / m).is_file()]
    if unknown:
        parser.error(f"no such test module under {TESTS}: {', '.join(unknown)}")
    if not args.modules and 0 < args.sample < len(modules):
        modules = sorted(rng.sample(modules, args.sample))
    log.info("seed %d (repeat with --seed %d): %s", seed, seed, " ".join(modules))
    failed = [
        (module, threads)
        for module in modules
        for threads in THREADS
        if not run_alone(module, threads, rng.randrange(2**31))
    ]
    if failed:
        log.error("failed alone: %s", ", ".join(f"{m} at {t} threads" for m, t in failed))
        return 1
    log.info("every module passed alone at %s threads", " and ".join(map(str, THREADS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
