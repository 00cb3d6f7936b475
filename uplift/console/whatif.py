"""The what-if budget curve: precomputed once per plan so a budget slider answers at once.

Each candidate customer (not removed by an absolute rule, with an allowed offer of positive
expected net gain) keeps the best such offer. Customers are taken in order of gain per unit
of cost (the order in which a budget constraint's Lagrangian takes them); an offer whose
``max_count`` capacity is full is skipped for later customers. At a budget B the selection is
the longest prefix that fits: its spend, gain, offer mix, the budget's shadow price (the
marginal ROI: gain per currency of the next customer that does not fit) and each binding
capacity with its shadow price. This is the greedy relaxation of the allocator's problem,
labelled as such on the page; segment quotas, minimum counts and offer fall-backs are not in
it (the plan's own solved points are shown next to it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from uplift.campaign import CampaignSpec


def candidates(scores: pd.DataFrame, spec: CampaignSpec,
               do_not_contact: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per candidate customer: segment, best allowed offer, its expected net gain and
    cost (currency). ``scores`` as the planner scores customers (``gain_<offer>`` and
    ``cost_<offer>`` columns and the customer columns the spec's rules read)."""
    from uplift.allocate.rules import allowed_matrix, excluded_customers

    offers = spec.offer_names
    gains = scores[[f"gain_{o}" for o in offers]].to_numpy(dtype=float)
    costs = scores[[f"cost_{o}" for o in offers]].to_numpy(dtype=float)
    blocked, _ = excluded_customers(scores, spec, do_not_contact=do_not_contact,
                                    source="scores")
    allowed, _ = allowed_matrix(scores, spec, gains, costs, blocked, lower=None,
                                source="scores")
    worth = np.where(allowed & (gains > 0), gains, -np.inf)
    best = worth.argmax(axis=1)
    keep = np.isfinite(worth.max(axis=1))
    rows = np.flatnonzero(keep)
    segment = (scores["segment"].astype(str).to_numpy() if "segment" in scores.columns
               else np.full(len(scores), ""))
    return pd.DataFrame({"segment": segment[rows],
                         "offer": np.asarray(offers, dtype=object)[best[rows]],
                         "gain": gains[rows, best[rows]], "cost": costs[rows, best[rows]]})


def curve(frame: pd.DataFrame, spec: CampaignSpec, *, points: int = 401,
          top: float | None = None) -> dict:
    """The what-if curve on a budget grid of ``points`` from 0 to ``top`` (default: the
    spend that takes every candidate). JSON-ready; money in the spec's currency."""
    offers = spec.offer_names
    gain = frame["gain"].to_numpy(dtype=float)
    cost = frame["cost"].to_numpy(dtype=float)
    offer_idx = pd.Categorical(frame["offer"], categories=offers).codes
    ratio = np.divide(gain, cost, out=np.full(len(gain), np.inf), where=cost > 0)
    order = np.argsort(-ratio, kind="stable")
    caps = {r.offer: r.max_count for r in spec.capacities if r.max_count is not None}
    skipped = np.zeros(len(order), dtype=bool)        # in the order's positions
    ordered_offer = offer_idx[order]
    for name, cap in caps.items():
        k = offers.index(name)
        mine = np.flatnonzero(ordered_offer == k)
        skipped[mine[cap:]] = True
    taken_pos = np.flatnonzero(~skipped)
    seq = order[taken_pos]
    spend = np.cumsum(cost[seq])
    total = np.cumsum(gain[seq])
    onehot = np.zeros((len(seq), len(offers)), dtype=np.int64)
    onehot[np.arange(len(seq)), offer_idx[seq]] = 1
    mix = np.cumsum(onehot, axis=0)
    top = float(top if top is not None else (spend[-1] if len(spend) else 0.0))
    grid = np.linspace(0.0, top, points)
    skipped_pos = np.flatnonzero(skipped)
    out = []
    for budget in grid:
        i = int(np.searchsorted(spend, budget, side="right"))
        nxt = seq[i] if i < len(seq) else None
        shadow = float(ratio[nxt]) if nxt is not None else 0.0
        # a free offer (cost 0) has no finite gain per cost: it is taken before any budget
        shadow = shadow if np.isfinite(shadow) else 0.0
        binding = []
        if nxt is not None:
            binding.append({"rule": "budget", "shadow_price": shadow,
                            "unit": "gain per currency unit"})
        cut = taken_pos[i - 1] if i > 0 else -1
        before = skipped_pos[skipped_pos < cut] if cut >= 0 else skipped_pos[:0]
        for name in caps:
            k = offers.index(name)
            lost = order[before[ordered_offer[before] == k]]
            if len(lost):
                price = float(np.max(gain[lost] - shadow * cost[lost]))
                binding.append({"rule": f"capacity of {name} (at most {caps[name]:,})",
                                "shadow_price": max(price, 0.0),
                                "unit": "gain per extra customer"})
        out.append({"budget": float(budget), "spend": float(spend[i - 1]) if i else 0.0,
                    "gain": float(total[i - 1]) if i else 0.0, "selected": i,
                    "marginal_roi": shadow,
                    "mix": {o: int(mix[i - 1, k]) if i else 0 for k, o in enumerate(offers)},
                    "binding": binding})
    return {"currency": spec.currency, "offers": offers, "candidates": int(len(frame)),
            "points": out, "method": "greedy by gain per cost, capacities applied; segment "
            "quotas and minimum counts are not in the what-if curve"}
