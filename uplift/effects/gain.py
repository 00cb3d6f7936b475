"""Expected gain of each offer per customer, in currency, for the allocator.

``gain_k = (-delta_churn_k) * customer_value + delta_value_k - cost_k``

* ``delta_churn_k``: effect of offer k on the churn probability within the horizon;
* ``customer_value``: value of keeping the customer a year (``configs/default.yaml``,
  ``customer_value``: rate on AUM + per product + base; currency per year);
* ``delta_value_k``: effect on ``value_after`` (currency; 0 when no value model is given);
* ``cost_k``: the campaign spec's cost model (currency).

``gain_lo_k`` is a one-sided lower confidence bound, ``gain_k - z * se_k`` with
``se_k = sqrt((se_churn_k * customer_value)^2 + se_value_k^2)`` (z = 1.645: 95% one-sided),
so the allocator can act only where the gain is confidently positive.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from uplift.campaign import CampaignSpec
from uplift.config import CustomerValue
from uplift.errors import InputError
from uplift.valuation import Z_ONE_SIDED_95, gain_se, lower_bound, net_gain


def expected_gains(
    customers: pd.DataFrame, churn_effects: pd.DataFrame, spec: CampaignSpec,
    value: CustomerValue, *, value_effects: pd.DataFrame | None = None,
    z: float = Z_ONE_SIDED_95,
) -> pd.DataFrame:
    """Rows aligned with ``customers``; columns gain_/gain_lo_/cost_ per offer of ``spec``."""
    known = {c.removeprefix("effect_") for c in churn_effects.columns
             if c.startswith("effect_")}
    unknown = [o for o in spec.offer_names if o not in known]
    if unknown:
        raise InputError(f"campaign {spec.name!r}: offer(s) {', '.join(unknown)} have no "
                         f"learned effect; the model knows {', '.join(sorted(known))}")
    aum = customers["aum"].to_numpy(float) if "aum" in customers else np.zeros(len(customers))
    products = (customers["products_held"].to_numpy(float) if "products_held" in customers
                else np.zeros(len(customers)))
    worth = value.value(aum, products)
    out = {"customer_id": customers["customer_id"].to_numpy(),
           "customer_value": np.round(worth, 2)}
    for offer in spec.offers:
        name = offer.name
        d_churn = churn_effects[f"effect_{name}"].to_numpy(float)
        se_churn = churn_effects.get(f"se_{name}", pd.Series(0.0, index=churn_effects.index))
        d_value = np.zeros(len(customers)) if value_effects is None else \
            value_effects[f"effect_{name}"].to_numpy(float)
        se_value = 0.0 if value_effects is None else value_effects.get(
            f"se_{name}", pd.Series(0.0, index=value_effects.index)).to_numpy(float)
        cost = np.asarray(offer.cost.cost(_aum_for(customers, offer, aum)), dtype=float)
        gain = net_gain(d_churn, worth, d_value, cost)
        out[f"gain_{name}"] = gain
        out[f"gain_lo_{name}"] = lower_bound(gain, gain_se(se_churn, worth, se_value), z)
        out[f"cost_{name}"] = cost
    return pd.DataFrame(out)


def _aum_for(customers: pd.DataFrame, offer, default: np.ndarray) -> np.ndarray:
    """The AUM (currency) an offer's cost is computed from: its cost model's ``aum_column``
    when the cost depends on AUM (a missing or non-numeric column is refused, never read as
    zero), else ``default``."""
    from uplift.errors import SchemaError

    column = offer.cost.aum_column
    if offer.cost.per_aum == 0:
        return default
    if column not in customers.columns:
        raise SchemaError("customers", [f"missing column {column!r}: offer {offer.name!r} "
                                        "costs a share of AUM (cost.aum_column)"])
    values = pd.to_numeric(customers[column], errors="coerce")
    if values.isna().any():
        raise SchemaError("customers", [f"column {column!r}: AUM missing or not a number for "
                                        f"{int(values.isna().sum())} customer(s); offer "
                                        f"{offer.name!r} costs a share of it"])
    return values.to_numpy(float)
