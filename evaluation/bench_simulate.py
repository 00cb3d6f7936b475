"""Benchmark: simulate a bank of N customers x M months; print time, events and peak memory.

Usage: python evaluation/bench_simulate.py [--customers 100000] [--months 12] [--seed 0]
Target (issue): 100,000 customers x 12 months in <= 60 s and <= 4 GB peak memory on 2 cores.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd

from uplift.tasks.data import simulate_to_folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bank"
        started = time.perf_counter()
        simulate_to_folder(out, args.customers, args.months, seed=args.seed)
        elapsed = time.perf_counter() - started
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        import pyarrow.parquet as pq

        events = pq.ParquetFile(out / "events.parquet").metadata.num_rows
        size_mb = sum(p.stat().st_size for p in out.iterdir()) / 1024**2
        log = pd.read_parquet(out / "campaign_log.parquet")
        print(f"customers            {args.customers:,}")
        print(f"months               {args.months}")
        print(f"events               {events:,}")
        print(f"campaign rows        {len(log):,}")
        print(f"control churn (30d)  {log.loc[log['arm'] == 'control', 'churned'].mean():.3f}")
        print(f"wall time            {elapsed:.1f} s")
        print(f"peak memory (RSS)    {peak_gb:.2f} GB")
        print(f"files on disk        {size_mb:.0f} MB")


if __name__ == "__main__":
    main()
