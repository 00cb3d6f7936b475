"""Command-line start-up time: `uplift --help` and `uplift validate --help` in fresh processes
(wall seconds, median of N runs). A planner feels this on every command.

    python evaluation/bench_startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def timed(argv: list[str], runs: int) -> float:
    """Median wall seconds of ``argv`` over ``runs`` fresh processes."""
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    for argv in (["--help"], ["validate", "--help"], ["plan", "--help"]):
        command = [sys.executable, "-m", "uplift.cli", *argv]
        print(f"uplift {' '.join(argv):<16} {timed(command, args.runs):6.2f} s (median of "
              f"{args.runs})")


if __name__ == "__main__":
    main()
