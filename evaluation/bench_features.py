"""Benchmark: features for N simulated customers x 12 months (time and peak memory).

Usage: python evaluation/bench_features.py [--customers 100000] [--threads 2]
                                           [--memory-limit 2GB] [--data DIR]
Simulates the bank first (unless --data points at one), then times `uplift features` in a
separate process so the peak memory reported is the feature step's own.
Targets (issue): 100,000 customers in <= 60 s; 1,000,000 reported with bounded memory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
from uplift.cli import run
started = time.perf_counter()
code = run(sys.argv[1:])
print(json.dumps({"code": code, "seconds": time.perf_counter() - started,
                  "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default=None)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "bank"
        if args.data is None:
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "uplift.cli", "--quiet", "simulate",
                            "--customers", str(args.customers), "--seed", "0", "--out",
                            str(data)], check=True)
            print(f"simulated {args.customers:,} customers in "
                  f"{time.perf_counter() - started:.1f} s")
        import pyarrow.parquet as pq

        events = pq.ParquetFile(data / "events.parquet").metadata.num_rows
        out = Path(tmp) / "features.parquet"
        cmd = ["--quiet", "features", "--data", str(data), "--as-of", "2026-01-01", "--out",
               str(out), "--threads", str(args.threads)]
        if args.memory_limit:
            cmd += ["--memory-limit", args.memory_limit]
        result = subprocess.run([sys.executable, "-c", CHILD, *cmd], check=True,
                                capture_output=True, text=True)
        stats = json.loads(result.stdout.strip().splitlines()[-1])
        if stats["code"] != 0:
            raise SystemExit(result.stderr)
        rows = pq.ParquetFile(out).metadata
        print(f"events               {events:,}")
        print(f"feature table        {rows.num_rows:,} rows x {rows.num_columns} columns")
        print(f"threads              {args.threads}   memory limit {args.memory_limit or '-'}")
        print(f"features wall time   {stats['seconds']:.1f} s")
        print(f"features peak memory {stats['peak_gb']:.2f} GB")


if __name__ == "__main__":
    main()
