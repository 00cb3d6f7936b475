"""Post-campaign A/B evaluation: lifts with intervals, corrections, SRM, CUPED, power, money.

For each arm against the control (statsmodels throughout):

* binary metric: rates, absolute lift with a Wald interval (``confint_proportions_2indep``,
  ``compare="diff"``) and the two-proportion z-test p-value (``test_proportions_2indep``);
  continuous metric: means, Welch t-test and interval;
* relative lift ``m_arm / m_control - 1`` with a delta-method interval;
* p-values corrected across arms with Holm (``multipletests``; the method is named in every
  output and can be changed);
* sample-ratio mismatch: chi-square test of the arm counts against the planned split, flagged at
  p < 0.001;
* CUPED when a pre-period metric is given: ``y - theta (x - mean x)`` with
  ``theta = cov(y, x) / var(x)`` pooled over the arms compared; the variance reduction is reported;
* power: the minimum detectable absolute effect at 80% power for the achieved sample sizes;
* money (with a per-customer value column and/or a cost column): incremental value, cost,
  incremental net profit and ROI with delta-method and bootstrap intervals (which should agree),
  and, for a retention metric, incremental retained customers and the cost per one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from uplift.errors import InputError, SchemaError
from uplift.schema import arm_not_planned, flag_numbers, number_problems, rows_text

SRM_ALPHA = 0.001


def metric_values(frame: pd.DataFrame, column: str, source: str) -> tuple[np.ndarray, bool]:
    """The metric as floats and whether it is binary (0/1, also written as the customers
    table's yes/no flags: J/N, yes/no, X for yes); clear errors for text or missing."""
    if column not in frame.columns:
        raise SchemaError(source, [f"metric column '{column}' not found; columns: "
                                   f"{', '.join(map(str, frame.columns[:15]))}"])
    flags = flag_numbers(frame[column])
    if flags is not None:                              # every value a flag or blank
        blank = flags.isna().to_numpy()
        if blank.any():
            raise SchemaError(source, [f"column '{column}': empty values in "
                                       f"{rows_text(blank)}; a 0/1 outcome needs a value in "
                                       "every row"])
        return flags.to_numpy(dtype=float), True
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna()
    if bad.any():
        raise SchemaError(source, [f"column '{column}': expected numbers or 0/1, found "
                                   f"{frame[column][bad].astype(str).unique()[:3].tolist()} "
                                   f"in {rows_text(bad)}"])
    if problems := number_problems(values, column):
        raise SchemaError(source, problems)
    return values.to_numpy(dtype=float), False


def _compare(y1: np.ndarray, y0: np.ndarray, binary: bool, alpha: float) -> dict:
    with np.errstate(divide="ignore", invalid="ignore"):
        return _compare_arms(y1, y0, binary, alpha)


def _compare_arms(y1: np.ndarray, y0: np.ndarray, binary: bool, alpha: float) -> dict:
    from statsmodels.stats.proportion import (
        confint_proportions_2indep,
        test_proportions_2indep,
    )

    n1, n0 = len(y1), len(y0)
    m1, m0 = float(y1.mean()), float(y0.mean())
    v1, v0 = float(y1.var(ddof=1)), float(y0.var(ddof=1))
    if binary:
        c1, c0 = int(y1.sum()), int(y0.sum())
        low, high = confint_proportions_2indep(c1, n1, c0, n0, method="wald", compare="diff",
                                               alpha=alpha)
        p_value = float(test_proportions_2indep(c1, n1, c0, n0, method="wald",
                                                compare="diff").pvalue)
    else:
        result = stats.ttest_ind(y1, y0, equal_var=False)
        se = np.sqrt(v1 / n1 + v0 / n0)
        dof = (v1 / n1 + v0 / n0) ** 2 / ((v1 / n1) ** 2 / (n1 - 1) + (v0 / n0) ** 2 / (n0 - 1))
        t = stats.t.ppf(1 - alpha / 2, dof)
        low, high = (m1 - m0) - t * se, (m1 - m0) + t * se
        p_value = float(result.pvalue)
    z = stats.norm.ppf(1 - alpha / 2)
    rel = m1 / m0 - 1 if m0 != 0 else np.nan
    rel_se = np.sqrt(v1 / n1 / m0**2 + m1**2 * v0 / n0 / m0**4) if m0 != 0 else np.nan
    return {"n": n1, "n_control": n0, "mean": m1, "mean_control": m0, "lift": m1 - m0,
            "lift_low": float(low), "lift_high": float(high), "p_value": p_value,
            "relative_lift": rel, "relative_low": rel - z * rel_se,
            "relative_high": rel + z * rel_se}


def minimum_detectable_effect(n1: int, n0: int, base_mean: float, base_sd: float,
                              binary: bool, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest absolute effect detectable with ``power`` at these sample sizes."""
    from statsmodels.stats.power import NormalIndPower

    size = NormalIndPower().solve_power(effect_size=None, nobs1=n1, alpha=alpha, power=power,
                                        ratio=n0 / n1, alternative="two-sided")
    if binary:   # Cohen's h back to a difference in proportions
        return float(np.sin(np.arcsin(np.sqrt(base_mean)) + size / 2) ** 2 - base_mean)
    return float(size * base_sd)


def cuped(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float, float]:
    """CUPED-adjusted outcome, theta and the variance reduction (share, 0..1)."""
    var_x = float(np.var(x, ddof=1))
    if var_x == 0:
        return y, 0.0, 0.0
    theta = float(np.cov(y, x, ddof=1)[0, 1] / var_x)
    adjusted = y - theta * (x - x.mean())
    reduction = 1 - float(np.var(adjusted, ddof=1) / np.var(y, ddof=1))
    return adjusted, theta, reduction


def sample_ratio(counts: dict[str, int], planned: dict[str, float]) -> dict:
    """Chi-square test of arm counts against the planned split (shares are normalised)."""
    empty = [a for a in planned if counts.get(a, 0) == 0]
    if empty:
        raise InputError(f"planned arm(s) {', '.join(empty)} have zero rows in the outcomes")
    arms = list(counts)
    missing = [a for a in arms if a not in planned]
    if missing:
        raise InputError(f"planned split lacks arm(s) {', '.join(missing)}")
    total = sum(counts.values())
    weights = np.array([planned[a] for a in arms], dtype=float)
    expected = weights / weights.sum() * total
    stat, p_value = stats.chisquare([counts[a] for a in arms], expected)
    return {"observed": counts, "expected": dict(zip(arms, expected.tolist(), strict=True)),
            "chi2": float(stat), "p_value": float(p_value),
            "mismatch": bool(p_value < SRM_ALPHA), "threshold": SRM_ALPHA}


MIN_PER_CELL = 2     # treated and control rows a stratum needs to be compared


def compared_treated(treated: np.ndarray, control: np.ndarray,
                     strata: np.ndarray | None) -> np.ndarray:
    """The treated rows inside strata that have at least MIN_PER_CELL treated and control
    rows (all treated rows when there are enough controls without strata)."""
    if strata is None:
        enough = treated.sum() >= MIN_PER_CELL and control.sum() >= MIN_PER_CELL
        return treated & enough
    cells = pd.DataFrame({"s": strata, "t": treated, "c": control}).groupby("s")[["t", "c"]]
    counts = cells.sum()
    kept = counts.index[(counts["t"] >= MIN_PER_CELL) & (counts["c"] >= MIN_PER_CELL)]
    return treated & np.isin(strata, kept.to_numpy())


def left_out_strata(treated: np.ndarray, control: np.ndarray, strata: np.ndarray | None
                    ) -> dict[str, dict[str, int]]:
    """Strata with treated rows that cannot be compared (fewer than MIN_PER_CELL treated or
    control rows): stratum -> treated and control counts."""
    if strata is None:
        return {}
    out = {}
    for s in np.unique(strata[treated]):
        n_t, n_c = int((treated & (strata == s)).sum()), int((control & (strata == s)).sum())
        if n_t < MIN_PER_CELL or n_c < MIN_PER_CELL:
            out[str(s)] = {"treated": n_t, "control": n_c}
    return out


def _increment(value: np.ndarray, treated: np.ndarray, control: np.ndarray,
               strata: np.ndarray | None) -> tuple[float, float]:
    """Incremental total over the treated rows and its standard error.

    Without strata: n_t x (mean_t - mean_c). With strata (stratified randomisation: the
    assignment probability is constant within a stratum): sum over strata of
    n_t,s x (mean_t,s - mean_c,s), the effect on the treated; strata lacking treated or
    control rows are skipped.
    """
    groups = [slice(None)] if strata is None else [strata == s for s in np.unique(strata)]
    total, var = 0.0, 0.0
    for g in groups:
        t = np.flatnonzero(treated & (g if strata is not None else True))
        c = np.flatnonzero(control & (g if strata is not None else True))
        if len(t) < 2 or len(c) < 2:
            continue
        v1, v0 = value[t], value[c]
        total += len(t) * (v1.mean() - v0.mean())
        var += len(t) ** 2 * (v1.var(ddof=1) / len(t) + v0.var(ddof=1) / len(c))
    return float(total), float(np.sqrt(var))


def _money(value: np.ndarray, cost: np.ndarray | None, treated: np.ndarray, control: np.ndarray,
           retained: np.ndarray | None, alpha: float, n_boot: int, rng: np.random.Generator,
           strata: np.ndarray | None = None) -> dict:
    """Incremental value, cost, net profit and ROI for the treated group, with intervals."""
    z = stats.norm.ppf(1 - alpha / 2)
    left_out = left_out_strata(treated, control, strata)
    treated = compared_treated(treated, control, strata)    # cost and value of the same rows
    n1 = int(treated.sum())
    total_cost = float(cost[treated].sum()) if cost is not None else 0.0
    increment, se = _increment(value, treated, control, strata)
    out = {"treated": n1, "left_out": left_out, "incremental_value": increment,
           "incremental_value_low": increment - z * se,
           "incremental_value_high": increment + z * se, "cost": total_cost,
           "net_profit": increment - total_cost,
           "net_profit_low": increment - z * se - total_cost,
           "net_profit_high": increment + z * se - total_cost,
           "stratified": strata is not None}
    if total_cost > 0:
        out.update(roi=(increment - total_cost) / total_cost,
                   roi_low=(increment - z * se - total_cost) / total_cost,
                   roi_high=(increment + z * se - total_cost) / total_cost)
        draws = []
        idx = np.flatnonzero(treated | control)
        keys = strata[idx] if strata is not None else np.zeros(len(idx))
        by_key = [idx[keys == k] for k in np.unique(keys)]
        for _ in range(n_boot):     # resample rows within each stratum
            inc, spent = 0.0, 0.0
            for g in by_key:
                picked = rng.choice(g, len(g))
                t, c = picked[treated[picked]], picked[control[picked]]
                if len(t) and len(c):
                    inc += len(t) * (value[t].mean() - value[c].mean())
                spent += float(cost[t].sum())
            if spent > 0:
                draws.append((inc - spent) / spent)
        out["roi_boot_low"], out["roi_boot_high"] = (float(q) for q in np.quantile(
            draws, [alpha / 2, 1 - alpha / 2]))
    if retained is not None:
        extra, _ = _increment(retained, treated, control, strata)
        out["incremental_retained"] = extra
        if total_cost > 0 and extra > 0:
            out["cost_per_incremental_retained"] = total_cost / extra
    return out


def check_table(frame: pd.DataFrame, *, source: str, arm: str, control: str,
                cost: str | None, strata: str | None, propensity: str | None,
                segment: str | None, named: dict[str, str | None]) -> None:
    """Refuse, before anything is computed, what would make the evaluation wrong: a named
    column that is missing, a customer in two rows, a negative cost, or an arm other than the
    customer's planned offer (a table from `uplift outcomes` has ``planned_offer``)."""
    columns = {"arm": arm, "cost": cost, "strata": strata, "propensity": propensity,
               "segment": segment, **named}
    missing = [f"{what} column '{name}' not found" for what, name in columns.items()
               if name is not None and name not in frame.columns]
    if missing:
        raise SchemaError(source, [*missing, "columns: " + ", ".join(
            map(str, frame.columns[:20]))])
    problems = []
    if "customer_id" in frame.columns:
        from uplift.ids import parse_ids, repeated_ids

        ids = parse_ids(frame["customer_id"], source=source, allow_missing=True)
        problems += repeated_ids(ids, each="each customer is counted once")
    if cost is not None:
        values = pd.to_numeric(frame[cost], errors="coerce")
        negative = (values < 0).to_numpy(dtype=bool, na_value=False)
        if negative.any():
            problems.append(f"column '{cost}': negative costs in {rows_text(negative)}")
    problems += arm_not_planned(frame, arm, control)
    if problems:
        raise SchemaError(source, problems)


def evaluate_ab(
    frame: pd.DataFrame, *, arm: str, control: str, metric: str,
    pre_metric: str | None = None, cost: str | None = None, value: str | None = None,
    planned_split: dict[str, float] | None = None, segment: str | None = None,
    alpha: float = 0.05, correction: str = "holm", retention_metric: bool = False,
    n_boot: int = 500, seed: int = 0, source: str = "outcomes", strata: str | None = None,
    propensity: str | None = None,
) -> dict:
    """The whole A/B evaluation as a JSON-ready dict (see the module docstring)."""
    from statsmodels.stats.multitest import multipletests

    check_table(frame, source=source, arm=arm, control=control, cost=cost, strata=strata,
                propensity=propensity, segment=segment,
                named={"metric": metric, "pre-metric": pre_metric, "value": value})
    arms = frame[arm].astype(str).to_numpy()
    counts = pd.Series(arms).value_counts()
    if str(control) not in counts.index:
        raise SchemaError(source, [f"control value {control!r} not found in column '{arm}'; "
                                   f"values: {', '.join(map(str, counts.index[:10]))}"])
    others = sorted(a for a in counts.index if a != str(control))
    if not others:
        raise SchemaError(source, [f"column '{arm}' has only the control arm"])
    for a in [str(control), *others]:
        if counts.get(a, 0) < 2:
            raise SchemaError(source, [f"arm {a!r} has {counts.get(a, 0)} row(s); at least 2 "
                                       "are needed"])
    y, binary = metric_values(frame, metric, source)
    cmask = arms == str(control)
    result: dict = {"metric": metric, "binary": binary, "control": str(control),
                    "control_n": int(cmask.sum()), "control_mean": float(y[cmask].mean()),
                    "alpha": alpha, "correction": correction, "arms": {}}
    if planned_split is not None:
        result["sample_ratio"] = sample_ratio(counts.to_dict(), planned_split)
    pre = metric_values(frame, pre_metric, source)[0] if pre_metric is not None else None
    rows = []
    for a in others:
        tmask = arms == a
        comparison = _compare(y[tmask], y[cmask], binary, alpha)
        if pre is not None:
            both = tmask | cmask
            adjusted, theta, reduction = cuped(y[both], pre[both])
            y_adj = np.empty_like(y)
            y_adj[both] = adjusted
            cup = _compare(y_adj[tmask], y_adj[cmask], False, alpha)
            comparison["cuped"] = {"theta": theta, "variance_reduction": reduction,
                                   "lift": cup["lift"], "lift_low": cup["lift_low"],
                                   "lift_high": cup["lift_high"], "p_value": cup["p_value"]}
        comparison["mde_80"] = minimum_detectable_effect(
            int(tmask.sum()), int(cmask.sum()), float(y[cmask].mean()),
            float(y[cmask].std(ddof=1)), binary, alpha)
        result["arms"][a] = comparison
        rows.append(a)
    if strata is not None:
        cells = frame[strata].astype(str).to_numpy()
        for a in rows:          # each arm against the controls of its own strata
            result["arms"][a].update(stratified_lift(y, arms == a, cmask, cells, alpha))
    for a in rows:
        r = result["arms"][a]
        if not r["lift_high"] - r["lift_low"] > 0:
            r["note"] = (f"every {metric} value is the same in the compared rows: the interval "
                         "has no width and says nothing (too few customers)")
    pvals = [result["arms"][a]["p_value"] for a in rows]
    reject, adjusted, _, _ = multipletests(pvals, alpha=alpha, method=correction)
    for a, p_adj, rej in zip(rows, adjusted, reject, strict=True):
        result["arms"][a]["p_adjusted"] = float(p_adj)
        result["arms"][a]["significant"] = bool(rej)
    strata_values = None
    if strata is not None:
        strata_values = frame[strata].astype(str).to_numpy()
    if propensity is not None:
        p = pd.to_numeric(frame[propensity], errors="coerce")
        if p.isna().any():
            raise SchemaError(source, [f"column '{propensity}': missing propensities in "
                                       f"{rows_text(p.isna())}"])
        by = [arm] if strata is None else [strata, arm]
        spread = frame.assign(_p=p).groupby(by)["_p"].agg(["min", "max"])
        varying = spread[spread["max"] - spread["min"] > 1e-9]
        if len(varying):
            where = ("within an arm" if strata is None else
                     f"within arm and stratum ('{strata}'), e.g. "
                     + ", ".join(f"{k[0]} / {k[1]}: {r['min']:.3g} .. {r['max']:.3g}"
                                 for k, r in varying.head(3).iterrows()))
            raise InputError(f"{source}: assignment probabilities vary {where} (non-uniform "
                             "design): give the strata column the randomisation was "
                             "stratified by, so arms are compared within strata (a customer "
                             "column such as segment can be joined with --customers)")
    result["strata"] = strata
    if strata_values is not None:
        result["campaign"] = campaign_total(y, ~cmask, cmask, strata_values, metric, alpha)
    if value is not None or cost is not None:
        rng = np.random.default_rng(seed)
        values = metric_values(frame, value, source)[0] if value else y
        costs = metric_values(frame, cost, source)[0] if cost else None
        retained = y if (binary and retention_metric) else None
        result["money"] = {}
        for a in others:
            tmask = arms == a
            result["money"][a] = _money(values, costs, tmask, cmask, retained, alpha, n_boot,
                                        rng, strata_values)
            if segment is not None:
                seg = frame[segment].astype(str).to_numpy()
                result["money"][a]["by_segment"] = {
                    s: _money(values, costs, tmask & (seg == s), cmask & (seg == s), retained,
                              alpha, min(n_boot, 200), rng)
                    for s in sorted(set(seg)) if (tmask & (seg == s)).sum() > 1
                    and (cmask & (seg == s)).sum() > 1}
    if strata_values is not None and "money" in result:
        rng = np.random.default_rng(seed)
        values = metric_values(frame, value, source)[0] if value else y
        costs = metric_values(frame, cost, source)[0] if cost else None
        result["campaign"]["money"] = _money(values, costs, ~cmask, cmask, None, alpha, n_boot,
                                             rng, strata_values)
    return result


def stratified_lift(y: np.ndarray, treated: np.ndarray, control: np.ndarray,
                    strata: np.ndarray, alpha: float = 0.05) -> dict:
    """Mean difference treated - control within strata, weighted by the treated counts (the
    effect on the treated under stratified randomisation), with a normal interval; strata
    without treated or control rows are left out (``n_compared`` counts the treated kept)."""
    increment, se = _increment(y, treated, control, strata)
    kept = [s for s in np.unique(strata[treated])
            if (treated & (strata == s)).sum() >= 2 and (control & (strata == s)).sum() >= 2]
    n = int(sum((treated & (strata == s)).sum() for s in kept))
    if n == 0:
        return {"lift": float("nan"), "lift_low": float("nan"), "lift_high": float("nan"),
                "p_value": 1.0, "stratified": True, "n_compared": 0}
    z = stats.norm.ppf(1 - alpha / 2)
    lift, half = increment / n, z * se / n
    weights = {s: (treated & (strata == s)).sum() / n for s in kept}
    base = float(sum(w * y[control & (strata == s)].mean() for s, w in weights.items()))
    p_value = float(2 * stats.norm.sf(abs(lift) / (se / n))) if se > 0 else 1.0
    return {"lift": lift, "lift_low": lift - half, "lift_high": lift + half,
            "p_value": p_value, "mean_control": base, "stratified": True, "n_compared": n,
            "left_out": left_out_strata(treated, control, strata),
            "relative_lift": lift / base if base else float("nan"),
            "relative_low": (lift - half) / base if base else float("nan"),
            "relative_high": (lift + half) / base if base else float("nan")}


def campaign_total(y: np.ndarray, treated: np.ndarray, control: np.ndarray,
                   strata: np.ndarray, metric: str, alpha: float = 0.05) -> dict:
    """Every treated arm together against the control, within strata: the total change in
    ``metric`` over the treated customers (e.g. customers kept for a retention 0/1 metric)
    with a normal interval."""
    increment, se = _increment(y, treated, control, strata)
    z = stats.norm.ppf(1 - alpha / 2)
    left_out = left_out_strata(treated, control, strata)
    return {"metric": metric, "treated": int(compared_treated(treated, control, strata).sum()),
            "treated_total": int(treated.sum()), "left_out": left_out,
            "control": int(control.sum()),
            "incremental": increment, "incremental_low": increment - z * se,
            "incremental_high": increment + z * se}
