"""Cookie Cats A/B test through the library's A/B evaluation (`uplift.evaluate_ab`, what
`uplift evaluate` runs): gate_30 vs gate_40, 1- and 7-day retention.

Usage: python evaluation/cookie_cats.py
Known figures: retention 0.190 (gate_30, 44,700 users) vs 0.182 (gate_40, 45,489 users).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import uplift

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cookie_cats" / "cookie_cats.csv"


def main() -> None:
    frame = pd.read_csv(DATA)
    for metric in ("retention_1", "retention_7"):
        result = uplift.evaluate_ab(frame, arm="version", control="gate_30", metric=metric,
                                    planned_split={"gate_30": 0.5, "gate_40": 0.5},
                                    source=str(DATA))
        arm = result["arms"]["gate_40"]
        print(f"{metric}: gate_30 {arm['mean_control']:.4f} vs gate_40 {arm['mean']:.4f}, lift "
              f"{arm['lift']:+.4f} [{arm['lift_low']:+.4f}, {arm['lift_high']:+.4f}], p "
              f"{arm['p_value']:.3g}; sample ratio p {result['sample_ratio']['p_value']:.3g}")
        print(f"  minimum detectable effect at 80% power: {arm['mde_80']:.4f}\n")


if __name__ == "__main__":
    main()
