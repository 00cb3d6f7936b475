"""What outcomes are worth and what offers cost, for money-aware recommendations.

``Money(value, costs)``:

* ``value``: currency per unit of the outcome on its "good" side: one more visit, purchase or
  unit of spend for an ``increase`` goal; one prevented churner (or unit) for ``decrease``;
* ``costs``: per offer (arm other than control), either a number (currency per customer who
  gets the offer) or the name of a column holding each customer's cost (currency). Control
  costs nothing.

The expected net gain of offer ``a`` for a customer is ``value * benefit_a - cost_a`` (currency),
where ``benefit_a`` is the predicted effect on the good side (the effect itself for
``increase``, minus the effect for ``decrease``). Control's net gain is 0.

On the command line costs are written ``--cost ARM=AMOUNT`` or ``--cost ARM=COLUMN`` (repeat the
option or separate by commas), or ``--cost AMOUNT`` / ``--cost COLUMN`` for every offer alike.
An offer left without a cost while others have one is an error, never a silent 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from uplift.errors import InputError, SchemaError
from uplift.schema import number_problems, rows_text

ALL_ARMS = "*"


@dataclass(frozen=True)
class Money:
    """Worth of one outcome unit and cost per offer (number or column name)."""

    value: float
    costs: dict[str, float | str] = field(default_factory=dict)

    def cost_columns(self) -> list[str]:
        return sorted({c for c in self.costs.values() if isinstance(c, str)})

    def describe(self, currency: str = "") -> str:
        unit = f" {currency}" if currency else ""
        parts = [f"{arm} {c:g}{unit}" if not isinstance(c, str) else f"{arm} column {c!r}"
                 for arm, c in self.costs.items()]
        return (f"value {self.value:g}{unit} per outcome unit; cost per customer: "
                + (", ".join(parts) if parts else "none given (offers treated as free)"))

    def to_json(self) -> dict:
        return {"value": self.value, "costs": dict(self.costs)}

    @classmethod
    def from_json(cls, data: dict | None) -> Money | None:
        return None if data is None else cls(float(data["value"]), dict(data["costs"]))


def parse_costs(specs: list[str] | None) -> dict[str, float | str]:
    """``["email=0.15", "sms=cost_sms", "0.2"]`` -> {arm or "*": amount or column name}."""
    out: dict[str, float | str] = {}
    for spec in specs or []:
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            arm, sep, amount = part.rpartition("=")
            arm = arm.strip() if sep else ALL_ARMS
            amount = amount.strip()
            if not amount or (sep and not arm):
                raise InputError(f"cost {spec!r}: expected ARM=AMOUNT, ARM=COLUMN, AMOUNT "
                                 "or COLUMN")
            if arm in out:
                raise InputError(f"cost: arm {arm!r} is given a cost twice")
            try:
                number: float | str = float(amount)
            except ValueError:
                number = amount                       # a column name
            if isinstance(number, float):
                if not np.isfinite(number) or number < 0:
                    raise InputError(f"cost {part!r}: a cost must be a finite amount >= 0")
            out[arm] = number
    return out


def build_money(value: float | None, costs: list[str] | None, arms: list[str],
                control: str) -> Money | None:
    """Money settings checked against the model's offers; ``None`` without a value."""
    parsed = parse_costs(costs)
    if value is None:
        if parsed:
            raise InputError("costs need a value (what one unit of the outcome is worth) to "
                             "compare gains with costs; give the value 1 when the outcome is "
                             "already in currency")
        return None
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"the value must be a positive amount (currency per outcome unit), not "
                         f"{value}")
    if control in parsed:
        raise InputError(f"cost: {control!r} is the control arm; control costs nothing")
    unknown = sorted(a for a in parsed if a != ALL_ARMS and a not in arms)
    if unknown:
        raise InputError(f"cost: unknown arm(s) {', '.join(unknown)}; the offers are "
                         f"{', '.join(arms)}")
    if not parsed:
        return Money(float(value), {})
    default = parsed.get(ALL_ARMS)
    missing = [a for a in arms if a not in parsed and default is None]
    if missing:
        raise InputError(f"cost: no cost given for {', '.join(missing)}; give every offer a "
                         "cost (0 if it is free), or one cost for all")
    return Money(float(value), {a: parsed.get(a, default) for a in arms})  # type: ignore[misc]


def cost_matrix(money: Money | None, table: pd.DataFrame, arms: list[str], *,
                source: str = "table") -> np.ndarray:
    """Cost of each offer per row (rows x offers, currency); zeros without costs."""
    out = np.zeros((len(table), len(arms)))
    if money is None:
        return out
    for j, arm in enumerate(arms):
        cost = money.costs.get(arm, 0.0)
        if not isinstance(cost, str):
            out[:, j] = float(cost)
            continue
        if cost not in table.columns:
            raise SchemaError(source, [f"cost column {cost!r} (cost of {arm}) not found; "
                                       f"columns: {', '.join(map(str, table.columns[:15]))}"])
        values = pd.to_numeric(table[cost], errors="coerce")
        bad = values.isna()
        if bad.any():
            raise SchemaError(source, [f"column '{cost}': cost missing or not a number in "
                                       f"{rows_text(bad)}"])
        array = values.to_numpy(dtype=float)
        problems = number_problems(array, cost)
        if (array < 0).any():
            problems.append(f"column '{cost}': negative costs in {rows_text(array < 0)}")
        if problems:
            raise SchemaError(source, problems)
        out[:, j] = array
    return out


def net_gains(benefit: np.ndarray, money: Money, costs: np.ndarray) -> np.ndarray:
    """``value * benefit - cost`` per row and offer (currency)."""
    return money.value * np.asarray(benefit, dtype=float) - costs


def logged_cost(costs: np.ndarray, arms: list[str], logged: np.ndarray) -> np.ndarray:
    """Cost of the arm each row received (0 for control and unknown arms)."""
    out = np.zeros(len(logged))
    for j, arm in enumerate(arms):
        hit = logged == arm
        out[hit] = costs[hit, j]
    return out
