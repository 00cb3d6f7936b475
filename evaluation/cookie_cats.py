"""Cookie Cats A/B test through `uplift evaluate` (gate_30 vs gate_40, 7-day retention).

Usage: python evaluation/cookie_cats.py
Known figures: retention 0.190 (gate_30, 44,700 users) vs 0.182 (gate_40, 45,489 users).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from uplift.cli import run

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cookie_cats" / "cookie_cats.csv"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        for metric in ("retention_1", "retention_7"):
            assert run(["evaluate", "--outcomes", str(DATA), "--arm", "version", "--control",
                        "gate_30", "--metric", metric, "--split", "gate_30=0.5,gate_40=0.5",
                        "--json", str(out)]) == 0
            arm = json.loads(out.read_text())["arms"]["gate_40"]
            print(f"  minimum detectable effect at 80% power: {arm['mde_80']:.4f}\n")


if __name__ == "__main__":
    main()
