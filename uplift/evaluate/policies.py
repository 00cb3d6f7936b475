"""Candidate targeting policies for offline simulation, from short text specs.

* ``none``: nobody gets an offer (everyone control);
* ``all:ARM``: everyone gets ARM;
* ``rule:COLUMN:value=ARM,value=ARM,*=ARM``: by a column of the log (``*`` = every other value;
  unmatched rows get control), e.g. ``rule:segment:private_banking=advisor_visit,*=rate_coupon``;
* ``topk:COLUMN:K:ARM``: the K rows with the highest COLUMN (e.g. churn_risk) get ARM;
* ``random:SHARE:ARM``: a random SHARE of rows (seeded) gets ARM;
* ``plan:FILE``: a plan file (customer_id, offer, holdout); held-out or absent customers get
  control;
* ``model:DIR``: an effects model's best arm where its benefit (with money: its expected net
  gain) is positive, else control (DIR: an effects model folder, or a trained model folder such
  as the plan's cache, whose churn effects model is used);
* ``tree:DIR[:Z]``: the effects model's policy tree (the best single arm unless a group of
  similar customers measurably did better with another, by more than Z standard errors;
  default 1; with money: the arm of highest expected net value, see
  :meth:`uplift.effects.policy.OfferPolicy.predict_net`).

Model and tree policies use the money given to ``simulate-policy`` (``--value``/``--cost``),
else the money stored with the effects model, else none.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from uplift.errors import InputError


def policy_file(spec: str) -> Path | None:
    """The file or folder a policy spec reads (``plan:FILE``, ``model:DIR``,
    ``tree:DIR[:Z]``); None for the other kinds."""
    kind, _, rest = spec.partition(":")
    if kind == "tree":
        return Path(rest.split(":")[0])
    return Path(rest) if kind in ("plan", "model") else None


def policy_arms(spec: str, log: pd.DataFrame, *, control: str, arms: list[str],
                id_col: str = "customer_id", seed: int = 0, money=None) -> np.ndarray:
    """Arm chosen by the policy ``spec`` for each row of ``log``; with ``money``
    (:class:`uplift.effects.money.Money`) model and tree policies weigh net value."""
    kind, _, rest = spec.partition(":")
    n = len(log)
    out = np.full(n, control, dtype=object)

    def check_arm(arm: str) -> str:
        if arm not in arms and arm != control:
            raise InputError(f"policy {spec!r}: arm {arm!r} is not in the log "
                             f"({', '.join([control, *arms])})")
        return arm

    if kind == "none":
        return out
    if kind == "all":
        out[:] = check_arm(rest)
        return out
    if kind == "rule":
        column, _, rules = rest.partition(":")
        if column not in log.columns:
            raise InputError(f"policy {spec!r}: column {column!r} not in the log")
        mapping = dict(part.split("=", 1) for part in rules.split(",") if "=" in part)
        values = log[column].astype(str).to_numpy()
        default = mapping.pop("*", None)
        if default is not None:
            out[:] = check_arm(default)
        for value, arm in mapping.items():
            out[values == value] = check_arm(arm)
        return out
    if kind == "topk":
        column, k, arm = (rest.split(":") + ["", "", ""])[:3]
        if column not in log.columns:
            raise InputError(f"policy {spec!r}: column {column!r} not in the log")
        order = np.argsort(-log[column].to_numpy(dtype=float), kind="stable")
        out[order[: int(k)]] = check_arm(arm)
        return out
    if kind == "random":
        share, _, arm = rest.partition(":")
        rng = np.random.default_rng(seed)
        out[rng.random(n) < float(share)] = check_arm(arm)
        return out
    if kind == "plan":
        from uplift import io
        from uplift.ids import judge, match, parse_ids
        from uplift.schema import parse_flags

        plan = io.read_table(Path(rest), derived=True)
        missing = [c for c in ("customer_id", "offer") if c not in plan.columns]
        if missing:
            raise InputError(f"{rest}: plan lacks column(s) {', '.join(missing)}")
        if id_col not in log.columns:
            raise InputError(f"policy {spec!r}: the log has no {id_col!r} column to find the "
                             "plan's customers")
        planned = parse_ids(plan["customer_id"], source=rest)
        logged = parse_ids(log[id_col], source="log", column=id_col)
        # customers of the plan absent from the log are fine (e.g. new since); none found, or
        # ids written another way (zero padding, pseudonyms), is a plan of other customers
        judge(match(planned, logged), what="planned customers", source=rest,
              reference="the log", min_share=0.0, refuse_diagnosed=True)
        if "holdout" in plan.columns:
            held = parse_flags(plan["holdout"], "holdout", rest)
            plan, planned = plan[~held], planned[~held]
        chosen = pd.Series(plan["offer"].to_numpy(), index=planned.to_numpy())
        mapped = pd.Series(logged.to_numpy()).map(chosen)
        for arm in mapped.dropna().unique():
            check_arm(str(arm))
        return np.where(mapped.notna(), mapped.astype(object), control)
    if kind == "model":
        from uplift.effects.model import EffectsModel
        from uplift.evaluate.simulation import effects_folder

        model = EffectsModel.load(effects_folder(Path(rest)))
        usable = log[[c for c in log.columns if c in model.spec_.features]]
        if model.id_col is not None:      # rows are matched by position here: any id will do
            usable = usable.assign(**{model.id_col: np.arange(len(log))})
        effects = model.predict(usable, source="log", with_se=False)
        cols = [f"effect_{a}" for a in model.arms]
        money = model.money_for(money)
        benefit = (model.estimator_.benefit(effects[cols].to_numpy()) if money is None else
                   model.net_gains(effects[cols].to_numpy(), log, money, source="log"))
        best = np.asarray(model.arms, dtype=object)[benefit.argmax(axis=1)]
        return np.where(benefit.max(axis=1) > 0, best, control)
    if kind == "tree":
        from uplift.effects.model import EffectsModel

        folder, _, z_text = rest.partition(":")
        try:
            z = float(z_text) if z_text else 1.0
        except ValueError as exc:
            raise InputError(f"policy {spec!r}: Z must be a number") from exc
        from uplift.evaluate.simulation import effects_folder

        model = EffectsModel.load(effects_folder(Path(folder)))
        money = model.money_for(money)
        costs = money.cost_columns() if money is not None else []
        usable = [c for c in log.columns if c in model.spec_.features or c in costs]
        return model.recommend(log[usable], z=z, source="log", money=money)
    raise InputError(f"unknown policy {spec!r}; use none, all:, rule:, topk:, random:, plan:, "
                     "model: or tree:")
