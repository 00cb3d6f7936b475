"""Benchmark: `uplift plan` on a large simulated bank, cold and warm, and the Spark engine.

For each size in ``--customers`` it simulates a bank (seed 0, 12 months; kept under
``--work`` for reruns), then runs the command a planner runs, as a separate process under
``/usr/bin/time -v``:

* cold: ``uplift plan --budget B --data BANK --config S`` with an empty cache (features,
  training, scoring, allocation, report); B is the demo's budget per customer (1.8 EUR) times
  the size, S sets ``runtime.threads`` to ``--threads`` (default 2, this machine's cores);
* warm: the same command again (models and the planning date's features cached);
* with ``--spark``: ``uplift plan --engine spark --model <the cold run's models>`` on
  ``local[2]`` with an empty features cache (Spark features + scoring + allocation; a
  correctness run on one machine, not a speed claim), beside the warm DuckDB run.

Prints wall time, peak memory (the largest process's maximum resident set, as ``time -v``
reports it; the Spark JVM is a separate process and is reported by the Spark run's line) and
the plan's certificate.

Usage: python evaluation/bench_scale.py --customers 100000[,1000000] [--work DIR] [--spark]
       [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

BUDGET_PER_CUSTOMER = 1.8


def timed(command: list[str], env: dict[str, str], log: Path) -> dict:
    """Run ``command`` under ``/usr/bin/time -v``; wall seconds, peak GB, exit code."""
    started = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.call(["/usr/bin/time", "-v", *command], stdout=out,
                               stderr=subprocess.STDOUT, env=env)
    wall = time.perf_counter() - started
    text = log.read_text()
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    return {"seconds": round(wall, 1), "peak_gb": round(int(peak.group(1)) / 1024**2, 2)
            if peak else None, "exit": code}


def plan_summary(folder: Path) -> dict:
    """Certificate and counts from the plan's manifest."""
    manifest = json.loads((folder / "plan.csv.manifest.json").read_text())
    summary = manifest.get("summary", manifest.get("extra", {}).get("summary", {}))
    keys = ("customers_scored", "treated", "spend", "plan_value_before_holdout", "bound", "gap",
            "solver", "engine")
    return {k: summary[k] for k in keys if k in summary}


def bench(customers: int, work: Path, spark: bool, threads: int) -> None:
    bank = work / f"bank-{customers}"
    if not (bank / "events.parquet").exists():
        started = time.perf_counter()
        subprocess.check_call([sys.executable, "-m", "uplift.cli", "--quiet", "simulate",
                               "--customers", str(customers), "--seed", "0", "--out",
                               str(bank)])
        print(f"{customers:,}: simulated in {time.perf_counter() - started:.0f} s")
    budget = BUDGET_PER_CUSTOMER * customers
    cache = work / f"cache-{customers}"
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, "UPLIFT_CACHE": str(cache)}
    config = work / f"settings-threads-{threads}.yaml"
    config.write_text(f"runtime:\n  threads: {threads}\n")
    base = [sys.executable, "-m", "uplift.cli", "plan", "--budget", f"{budget:.0f}", "--data",
            str(bank), "--config", str(config)]
    for label in ("cold", "warm"):
        out = work / f"run-{customers}-{label}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        result = timed(base + ["--out", str(out / "plan.csv"), "--report",
                               str(out / "plan.html")], env, out / "log.txt")
        result.update(plan_summary(out) if result["exit"] == 0 else {})
        print(f"{customers:,} {label}: {json.dumps(result)}", flush=True)
    if spark:
        models = next(p for p in (cache / "models").iterdir()
                      if p.is_dir() and not p.name.startswith("."))
        shutil.rmtree(cache / "features", ignore_errors=True)
        out = work / f"run-{customers}-spark"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        result = timed(base + ["--engine", "spark", "--spark-master", "local[2]", "--model",
                               str(models), "--out", str(out / "plan.csv"), "--report",
                               str(out / "plan.html")], env, out / "log.txt")
        result.update(plan_summary(out) if result["exit"] == 0 else {})
        print(f"{customers:,} spark local[2] (features + scores + allocation, models cached): "
              f"{json.dumps(result)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", default="100000")
    parser.add_argument("--work", type=Path, default=Path("bench-scale"))
    parser.add_argument("--spark", action="store_true")
    parser.add_argument("--threads", type=int, default=2,
                        help="runtime.threads of the plan's settings (DuckDB, LightGBM)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    for size in (int(s) for s in args.customers.split(",")):
        bench(size, args.work.resolve(), args.spark, args.threads)


if __name__ == "__main__":
    main()
