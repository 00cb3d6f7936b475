"""`uplift allocate` with every option, against the optimum found by trying every plan."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from uplift.cli import run

OFFERS = ("a", "b")
SPEC = """name: t
budget: 10
holdout_fraction: {holdout}
offers:
  - {{name: a, channel: email, cost: {{fixed: 1.0}}}}
  - {{name: b, channel: email, cost: {{fixed: 1.0}}}}
{extra}"""


def scores(n: int = 7, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"customer_id": np.arange(1, n + 1), "marketing_consent": True})
    for offer, (mean, low, high) in zip(OFFERS, ((3, 1, 4), (4, 2, 6)), strict=True):
        table[f"gain_{offer}"] = rng.normal(mean, 3, n).round(2)
        table[f"gain_lo_{offer}"] = (table[f"gain_{offer}"] - rng.uniform(0, 4, n)).round(2)
        table[f"cost_{offer}"] = rng.uniform(low, high, n).round(2)
    return table


def best_by_trying_every_plan(table: pd.DataFrame, budget: float, *,
                              gain: str = "gain", skip: frozenset = frozenset()
                              ) -> tuple[float, dict[int, str]]:
    """The optimum of the multiple-choice knapsack by enumeration (3^n plans)."""
    best, best_plan = 0.0, {}
    rows = list(table.itertuples(index=False))
    for choice in itertools.product((None, *OFFERS), repeat=len(rows)):
        spend = value = 0.0
        plan = {}
        for row, offer in zip(rows, choice, strict=True):
            if offer is None:
                continue
            if row.customer_id in skip or getattr(row, f"{gain}_{offer}") <= 0 and gain != "gain":
                break
            spend += getattr(row, f"cost_{offer}")
            value += getattr(row, f"gain_{offer}")
            plan[row.customer_id] = offer
        else:
            if spend <= budget + 1e-9 and value > best + 1e-9:
                best, best_plan = value, plan
    return best, best_plan


def allocate_cli(folder: Path, table: pd.DataFrame, *args: str, holdout: float = 0.0,
                 extra: str = "", capsys=None) -> tuple[dict, pd.DataFrame]:
    table.to_csv(folder / "s.csv", index=False)
    (folder / "spec.yaml").write_text(SPEC.format(holdout=holdout, extra=extra))
    out = folder / "plan.csv"
    assert run(["allocate", "--scores", str(folder / "s.csv"), "--campaign",
                str(folder / "spec.yaml"), "--out", str(out), "--json", *args]) == 0
    summary = json.loads(capsys.readouterr().out)
    return summary, pd.read_csv(out)


@pytest.mark.parametrize("solver", ["exact", "lagrangian", "auto"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_json_summary_is_the_optimum_and_the_plan_file(tmp_path, capsys, solver, seed):
    table = scores(seed=seed)
    summary, plan = allocate_cli(tmp_path, table, "--budget", "8", "--solver", solver,
                                 "--time-limit", "20", capsys=capsys)
    best, _ = best_by_trying_every_plan(table, 8.0)
    # the Lagrangian plan may sit below the optimum, but never by more than its stated gap
    assert summary["expected_gain"] <= best + 1e-6
    assert best - summary["expected_gain"] <= summary["gap"] * abs(summary["bound"]) + 1e-6
    assert summary["bound"] >= best - 1e-6
    if solver == "exact":
        assert summary["expected_gain"] == pytest.approx(best, abs=1e-6)
    assert summary["spend"] == pytest.approx(plan["cost"].sum()) and summary["spend"] <= 8
    assert summary["expected_gain"] == pytest.approx(plan["expected_gain"].sum())
    assert summary["treated"] == len(plan)
    by_id = table.set_index("customer_id")
    for row in plan.itertuples():
        assert row.cost == pytest.approx(by_id.loc[row.customer_id, f"cost_{row.offer}"])
        assert row.expected_gain == pytest.approx(by_id.loc[row.customer_id,
                                                            f"gain_{row.offer}"])


def test_budget_curve_brackets_the_optimum_at_every_budget(tmp_path, capsys):
    table = scores(seed=3)
    summary, _ = allocate_cli(tmp_path, table, "--budget", "8", "--curve",
                              str(tmp_path / "curve.csv"), capsys=capsys)
    curve = pd.read_csv(tmp_path / "curve.csv")
    assert len(curve) >= 5 and curve["budget"].is_monotonic_increasing
    for point in curve.itertuples():
        best, _ = best_by_trying_every_plan(table, point.budget)
        assert point.spend <= point.budget + 1e-9
        assert point.expected_gain <= best + 1e-6 <= point.bound + 2e-6
    at_plan = curve[np.isclose(curve["budget"], 8.0)]
    assert at_plan["expected_gain"].iloc[0] == pytest.approx(summary["expected_gain"])


def test_confident_uses_only_offers_whose_lower_bound_is_positive(tmp_path, capsys):
    table = scores(seed=4)
    loose, loose_plan = best_by_trying_every_plan(table, 8.0)
    doubtful, offer = next(iter(loose_plan.items()))      # make one chosen offer uncertain
    table.loc[table["customer_id"] == doubtful, f"gain_lo_{offer}"] = -0.5
    summary, plan = allocate_cli(tmp_path, table, "--budget", "8", "--solver", "exact",
                                 "--confident", capsys=capsys)
    best, _ = best_by_trying_every_plan(table, 8.0, gain="gain_lo")
    assert best < loose                       # the option changes this instance's plan
    assert summary["expected_gain"] == pytest.approx(best, abs=1e-6)
    by_id = table.set_index("customer_id")
    assert all(by_id.loc[r.customer_id, f"gain_lo_{r.offer}"] > 0 for r in plan.itertuples())


def test_contact_history_and_as_of_move_the_contact_window(tmp_path, capsys):
    table = scores(seed=0)
    _, free_plan = allocate_cli(tmp_path, table, "--budget", "8", "--solver", "exact",
                                capsys=capsys)
    busy = int(free_plan["customer_id"].iloc[0])
    pd.DataFrame({"customer_id": [busy, busy],
                  "contacted_at": ["2026-01-10", "2026-02-01"]}).to_csv(
        tmp_path / "contacts.csv", index=False)
    limit = "contact_limit: {max_contacts: 2, window_days: 90}\n"
    args = ["--budget", "8", "--solver", "exact", "--contacts", str(tmp_path / "contacts.csv")]
    summary, plan = allocate_cli(tmp_path, table, *args, "--as-of", "2026-03-01", extra=limit,
                                 capsys=capsys)
    best, _ = best_by_trying_every_plan(table, 8.0, skip=frozenset({busy}))
    assert busy not in set(plan["customer_id"])
    assert summary["excluded"]["contact limit reached"] == 1
    assert summary["expected_gain"] == pytest.approx(best, abs=1e-6)
    # 90 days after the first contact only one falls in the window: the customer is back
    _, later = allocate_cli(tmp_path, table, *args, "--as-of", "2026-04-15", extra=limit,
                            capsys=capsys)
    assert busy in set(later["customer_id"])


def test_seed_draws_the_holdout_reproducibly(tmp_path, capsys):
    table = scores(n=40, seed=5).assign(gain_a=lambda t: t["gain_a"].abs() + 1)
    draws = {}
    for seed in ("1", "1", "2"):
        summary, plan = allocate_cli(tmp_path, table, "--budget", "1000", "--seed", seed,
                                     holdout=0.5, capsys=capsys)
        assert summary["held_out"] == pytest.approx(0.5 * len(plan), abs=2)
        draws.setdefault(seed, []).append(frozenset(plan.loc[plan["holdout"] == 1,
                                                             "customer_id"]))
    assert draws["1"][0] == draws["1"][1]
    assert draws["1"][0] != draws["2"][0]
