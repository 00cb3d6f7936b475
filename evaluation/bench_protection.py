"""Overhead of pseudonymisation + encryption at rest on `uplift plan` (50,000-customer demo).

Runs `uplift plan --budget 500000` as a subprocess, without keys and with both keys
(``UPLIFT_PSEUDONYM_KEY_FILE`` and ``UPLIFT_MASTER_KEY_FILE``), in one cache folder so both
use the same demo bank. Each setting is timed cold (trains its models: the fingerprint includes
the key ids, so protected and unprotected runs never share models) and then warm (models and
features cached) ``--repeats`` times; the median warm time is reported. The plans of the two
settings are compared row by row after the protected one is exported back to raw ids.

With ``--scale`` it instead times the two primitives at city-bank size: pseudonymising
8,000,000 customer ids and encrypting + decrypting 1 GiB.

Usage: python evaluation/bench_protection.py [--work DIR] [--repeats 3] [--scale]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def uplift(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from uplift.cli import main; main()", "--quiet",
                    *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def scale(work: Path) -> None:
    """Pseudonyms for 8 M ids; AES-256-GCM envelope over 1 GiB."""
    import numpy as np

    from uplift.security.envelope import decrypt_file, encrypt_to
    from uplift.security.keys import new_key
    from uplift.security.pseudonym import is_pseudonym, pseudonymise

    ids = pd.Series(np.arange(8_000_000, dtype=np.int64) + 10_000_000)
    started = time.perf_counter()
    pseudonyms = pseudonymise(ids, new_key())
    print(f"pseudonymise 8,000,000 ids: {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    assert is_pseudonym(pseudonyms).all()
    print(f"recognise 8,000,000 pseudonyms: {time.perf_counter() - started:.1f} s")
    data = np.random.default_rng(0).bytes(1 << 30)
    key = new_key()
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    encrypt_to(work / "blob.enc", data, key)
    print(f"encrypt 1 GiB: {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    assert decrypt_file(work / "blob.enc", key) == data
    print(f"decrypt 1 GiB: {time.perf_counter() - started:.1f} s")
    (work / "blob.enc").unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scale", action="store_true")
    options = parser.parse_args()
    if options.scale:
        scale(options.work or Path(tempfile.mkdtemp(prefix="bench-protection-")))
        return
    work = options.work or Path(tempfile.mkdtemp(prefix="bench-protection-"))
    base = {**os.environ, "UPLIFT_CACHE": str(work / "cache"),
            "UPLIFT_AUDIT_LOG": str(work / "audit.jsonl")}
    for name in ("UPLIFT_PSEUDONYM_KEY", "UPLIFT_PSEUDONYM_KEY_FILE", "UPLIFT_MASTER_KEY",
                 "UPLIFT_MASTER_KEY_FILE"):
        base.pop(name, None)
    keys = work / "keys"
    for name in ("pseudonym", "master"):
        if not (keys / f"{name}.key").exists():
            uplift(["keys", "new", "--out", str(keys / f"{name}.key")], base)
    protected = {**base, "UPLIFT_PSEUDONYM_KEY_FILE": str(keys / "pseudonym.key"),
                 "UPLIFT_MASTER_KEY_FILE": str(keys / "master.key")}
    from uplift.pipeline import demo_data

    demo_data(work / "cache")                  # built once, outside the timings
    results = {}
    for label, env in (("plain", base), ("protected", protected)):
        out = work / label
        args = ["plan", "--budget", "500000", "--out", str(out / "plan.parquet"), "--report",
                str(out / "plan.html")]
        cold = uplift(args, env)
        warm = [uplift(args, env) for _ in range(options.repeats)]
        results[label] = (cold, statistics.median(warm), warm)
        print(f"{label:<10} cold {cold:7.1f} s   warm median {statistics.median(warm):6.1f} s  "
              f"({', '.join(f'{w:.1f}' for w in warm)})", flush=True)
    for kind, index in (("cold", 0), ("warm", 1)):
        overhead = results["protected"][index] / results["plain"][index] - 1
        print(f"overhead {kind}: {overhead:+.1%}")
    uplift(["export", "--plan", str(work / "protected" / "plan.parquet"), "--out",
            str(work / "protected" / "export.parquet"), "--include-holdout"], protected)
    plain = pd.read_parquet(work / "plain" / "plan.parquet")
    exported = pd.read_parquet(work / "protected" / "export.parquet")
    plain["customer_id"] = plain["customer_id"].astype(str)
    same = plain.sort_values("customer_id").reset_index(drop=True).equals(
        exported.sort_values("customer_id").reset_index(drop=True))
    print(f"plans identical after export: {same} ({len(plain):,} rows)")


if __name__ == "__main__":
    main()
