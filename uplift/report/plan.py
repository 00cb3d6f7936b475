"""The plan report: one self-contained HTML page a marketing manager can read without help."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from uplift.report import figure, kpis, page, svg, table


def _thousands(value: float, _pos: object = None) -> str:
    return f"{value:,.0f}"


def _curve_chart(curve: pd.DataFrame, budget_used: float, gain: float, currency: str) -> str:
    """Best achievable gain against the budget the selection uses (both before the holdout),
    with this plan's selection as a dot on the same axes."""
    from matplotlib.ticker import FuncFormatter

    fig, ax = figure(6.0, 3.4)
    ax.plot(curve["spend"], curve["expected_gain"], marker="o", color="#1f6feb",
            label="best selection for each budget")
    ax.scatter([budget_used], [gain], color="#d1242f", zorder=5, s=60, label="this plan")
    ax.set_xlabel(f"budget used by the selection ({currency})")
    ax.set_ylabel(f"expected net gain ({currency})")
    ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.legend(frameon=False)
    return svg(fig)


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _human(frame: pd.DataFrame, names: dict[str, str], money: tuple[str, ...] = (),
           counts: tuple[str, ...] = ()) -> pd.DataFrame:
    """Format money and count columns with thousands separators and rename the headers."""
    out = frame.copy()
    for col in money + counts:
        if col in out:
            out[col] = [("-" if pd.isna(v) else _count(v)) for v in out[col]]
    return out.rename(columns=names)


VOCABULARY = (
    "<p class=\"note\"><b>Words used on this page.</b> <i>Selected</i>: customers the "
    "optimiser chose an offer for; the budget, capacities and quotas apply to them. "
    "<i>Held out</i>: a random share of the selected customers who are not contacted, so the "
    "campaign can be measured. <i>Contacted</i>: selected and not held out (the call list). "
    "<i>Spend</i>: the cost of the contacted customers only, so it is below the budget the "
    "selection uses. <i>Expected net gain</i>: retained customer value from lower churn + "
    "margin on new business - offer cost, for the contacted customers.</p>")


def _expectation(outlook: dict, summary: dict, cur: str) -> str:
    """The first screen: what the bank should expect, then how that number is made."""
    text = "<h2>What the bank should expect</h2>"
    items = {}
    if "forecast" in outlook:
        items["forecast net gain"] = _money(outlook["forecast"], cur)
        items["forecast, 95% interval"] = (f"{_count(outlook['forecast_low'])} .. "
                                 f"{_count(outlook['forecast_high'])}")
    else:
        items["expected net gain (model)"] = _money(outlook["expected_gain"], cur)
    if "forecast_kept" in outlook:
        items["customers kept"] = f"about {_count(outlook['forecast_kept'])}"
        items["customers kept, 95% interval"] = (
            f"{_count(outlook['forecast_kept_low'])} .. {_count(outlook['forecast_kept_high'])}")
    elif "customers_kept" in outlook:
        items["customers kept"] = f"about {_count(outlook['customers_kept'])}"
        items["customers kept, 95% interval"] = (
            f"{_count(outlook['customers_kept_low'])} .. "
            f"{_count(outlook['customers_kept_high'])}")
    items["customers contacted"] = f"{summary['treated']:,}"
    items["spend (contacted only)"] = _money(summary["spend"], cur)
    text += kpis(items)
    if outlook.get("warning"):
        text += f"<p class=\"warn\"><b>Warning:</b> {html.escape(outlook['warning'])}</p>"
    if "forecast" in outlook:
        text += (f"<p>The forecast is the model's expected net gain "
                 f"({_money(outlook['expected_gain'], cur)}) times "
                 f"<b>{outlook['realisation']:.2f}</b>, the share of its predicted gain that a "
                 "plan made the same way realised on the past randomised campaign (see below). "
                 "Customers kept = customers who would have left within 30 days and are "
                 "expected to stay because of the offer, on the same basis.</p>")
    else:
        text += ("<p class=\"note\">No backtest is available: this is the model's estimate, "
                 "and the estimates of the customers an optimiser picks tend to run high.</p>")
    if "retained_value" in outlook:
        split = pd.DataFrame([
            {"part": "retained value (lower churn x customer value)",
             f"amount ({cur})": outlook["retained_value"]},
            {"part": "margin on new business", f"amount ({cur})":
             outlook["new_business_margin"]},
            {"part": "offer cost", f"amount ({cur})": -outlook["cost"]},
            {"part": "expected net gain (model)", f"amount ({cur})":
             outlook["expected_gain"]}])
        text += "<h3>Where the expected net gain comes from</h3>"
        text += table(_human(split, {}, money=(f"amount ({cur})",)))
        gross = outlook["retained_value"] + outlook["new_business_margin"]
        if gross > 0 and outlook["new_business_margin"] > 0.5 * gross:
            text += (f"<p class=\"note\">{outlook['new_business_margin'] / gross:.0%} of the "
                     "gross gain is predicted margin on new business, not customers kept: "
                     "judge the campaign on both.</p>")
    if outlook.get("low_confidence"):
        text += (f"<p class=\"note\">{outlook['low_confidence']:,} of the contacted customers "
                 "have a 95% lower bound of their gain below 0 (flagged <i>low</i> in the call "
                 "list).</p>")
    return text


def _money(value: float, currency: str) -> str:
    return f"{value:,.0f} {currency}"


def _backtest_section(backtest, gain: float, cur: str) -> str:
    """What a plan made the same way delivered on the past campaign (see
    :mod:`uplift.evaluate.backtest`)."""
    if backtest is None:
        return ("<p class=\"note\">No backtest: the models were trained without one "
                "(retrain with this version of uplift).</p>")
    if backtest.realisation is None:
        return ("<p class=\"note\">Backtest: on the past campaign a plan made this way "
                "chose nobody with a positive predicted gain.</p>")
    low, high = backtest.realisation_interval
    text = ("<h2>Will the expected gain come true?</h2><p>The plan contacts the customers "
            "with the highest estimated gains, and the highest estimates tend to be too high. "
            "Replayed on the past randomised campaign (each customer's effects from models "
            f"that never saw them), a plan made this way chose {backtest.chosen:,} of "
            f"{backtest.logged_customers:,} customers and realised "
            f"<b>{backtest.realisation:.2f}</b> (95% interval {low:.2f} .. {high:.2f}) of its "
            "predicted net gain, measured against the campaign's control group.</p>")
    text += kpis({"forecast net gain (expected x realisation)":
                  _money(backtest.realisation * gain, cur),
                  "95% interval": f"{low * gain:,.0f} .. {high * gain:,.0f}"})
    text = text.replace("<h2>Will the expected gain come true?</h2>",
                        "<h2>Why the forecast is below the model's estimate</h2>")
    if backtest.chosen_with_evidence < backtest.chosen:
        text += (f"<p class=\"note\">{backtest.chosen - backtest.chosen_with_evidence:,} "
                 "replayed choices had no treated or no control customers in the past campaign; "
                 "only their cost is counted.</p>")
    return text


def plan_html(plan: pd.DataFrame, summary: dict, excluded: dict[str, int],
              curve: pd.DataFrame | None, interval: tuple[float, float],
              churn_validation: dict, effects_comparison: pd.DataFrame,
              effects_learner: str, context: dict, backtest=None,
              outlook: dict | None = None, evidence: list[dict] | None = None) -> str:
    from uplift.allocate.calllist import outlook as make_outlook

    cur = summary["currency"]
    treated = plan[plan["holdout"] == 0]
    spend, gain = summary["spend"], summary["expected_gain"]
    lo, hi = interval
    roi = summary["roi"]
    if outlook is None:
        realisation = None
        if backtest is not None and backtest.realisation is not None:
            realisation = (backtest.realisation, *backtest.realisation_interval)
        outlook = make_outlook(plan, realisation)
    body = (f"<p>Campaign <b>{html.escape(summary['campaign'])}</b>, planning date "
            f"{html.escape(str(context.get('as_of')))}, data {html.escape(context['data'])}. "
            f"{summary['customers_scored']:,} open customers were scored.</p>")
    body += _expectation(outlook, summary, cur)
    body += VOCABULARY
    body += "<h2>The plan in numbers</h2>"
    body += kpis({
        "budget": _money(summary["budget"], cur),
        "budget used by the selection": _money(summary.get("budget_used", spend), cur),
        "spend (contacted only)": _money(spend, cur),
        "selected": f"{summary['selected']:,}",
        "contacted": f"{summary['treated']:,}",
        "held out (to measure)": f"{summary['held_out']:,}",
        "expected net gain (model)": _money(gain, cur),
        "95% interval (estimation noise only)": f"{lo:,.0f} .. {hi:,.0f}",
        "ROI (net gain / spend)": f"{roi:.2f}" if roi is not None else "n/a",
    })
    body += _backtest_section(backtest, gain, cur)
    per_offer = pd.DataFrame([{"offer": o, "customers contacted": v["treated"],
                               f"spend ({cur})": v["spend"],
                               f"expected net gain ({cur})": v["expected_gain"]}
                              for o, v in summary["per_offer"].items()])
    body += "<h2>Who gets what</h2>" + table(_human(
        per_offer, {}, money=(f"spend ({cur})", f"expected net gain ({cur})"),
        counts=("customers contacted",)))
    for col, title in (("segment", "segment"), ("tier", "risk tier")):
        if col in treated.columns and len(treated):
            cross = pd.crosstab(treated[col], treated["offer"])
            cross = cross.reset_index().rename(columns={col: title})
            cross.columns.name = None
            body += (f"<h3>Contacted customers per {title} and offer</h3>"
                     + table(_human(cross, {}, counts=tuple(c for c in cross.columns
                                                            if c != title))))
    if curve is not None:
        body += ("<h2>Budget curve</h2><p>Best achievable expected net gain for each budget, "
                 "counted like the budget itself: for the whole selection, before the holdout "
                 "is drawn (the dot is this plan on the same basis). The marginal ROI says what "
                 "the last unit of money buys.</p>")
        body += _curve_chart(curve, summary.get("budget_used", spend),
                             summary["plan_value_before_holdout"], cur)
        shown = curve.copy()
        shown["marginal_roi"] = shown["marginal_roi"].round(2)
        body += table(_human(shown, {
            "budget": f"budget ({cur})", "spend": f"budget used ({cur})",
            "expected_gain": f"best expected net gain ({cur})",
            "bound": f"upper bound ({cur})", "selected": "customers selected",
            "marginal_roi": "marginal ROI", "rules": "rules changed at this budget"},
            money=("budget", "spend", "expected_gain", "bound"), counts=("selected",)))
        if summary.get("curve_rules"):
            body += ("<p class=\"note\">Rules given as a share of the budget scale with each "
                     "budget; absolute minimums that a smaller budget cannot meet are dropped "
                     "at that point, as the table says.</p>")
    if "reason_1" in treated.columns:
        top = treated["reason_1"].replace("", np.nan).dropna().value_counts().head(8)
        body += "<h2>Why these customers</h2><h3>Main churn reason of contacted customers</h3>"
        body += table(_human(top.rename_axis("main churn reason").reset_index(
            name="customers"), {}, counts=("customers",)))
    if "churn_change" in treated.columns and len(treated):
        rows = []
        for offer, group in treated.groupby("offer"):
            rows.append({"offer": offer, "customers": len(group),
                         "mean churn risk": group["churn_risk"].mean()
                         if "churn_risk" in group else np.nan,
                         "mean predicted change in churn probability":
                         group["churn_change"].mean(),
                         f"mean net gain ({cur})": group["expected_gain"].mean()})
        body += "<h3>Offer effects for the customers who get each offer</h3>"
        body += table(_human(pd.DataFrame(rows), {}, counts=("customers",)))
    body += "<h2>How good is this plan</h2>"
    body += (f"<p>The selection is worth {_money(summary['plan_value_before_holdout'], cur)} "
             f"(before the holdout) against a proven upper bound of "
             f"{_money(summary['bound'], cur)}: no selection under these rules can do more than "
             f"{summary['gap']:.3%} better. Solver: {html.escape(summary['solver'])}, "
             f"{summary['solver_seconds']:.2f} s.</p>")
    if summary.get("solver_note"):
        body += f"<p class=\"note\">{html.escape(summary['solver_note'])}.</p>"
    body += rules_table(summary["constraints"], cur)
    body += "<h2>Who was left out, and why</h2>"
    for note in summary.get("notes", []):
        body += f"<p><b>Note:</b> {html.escape(note)}.</p>"
    left = summary.get("left_out")
    if left:
        body += ("<p>Each scored customer who was not selected, counted once, under the rule "
                 "that finally removed them from every offer.</p>")
        body += table(_human(pd.DataFrame([{"reason": k, "customers": v}
                                           for k, v in left.items()]), {},
                             counts=("customers",)))
        body += ("<h3>Rule by rule (a customer can be counted under several offers)</h3>")
    body += table(_human(pd.DataFrame([{"rule": k, "customers": v}
                                       for k, v in excluded.items()]), {},
                         counts=("customers",)))
    e = churn_validation.get("evaluation", {})
    body += "<h2>Model checks</h2>"
    if e:
        body += kpis({"churn ROC-AUC": f"{e['roc_auc']:.3f}",
                      "calibration error (ECE)": f"{e['ece']:.4f}",
                      "top-decile precision": f"{e['top_decile_precision']:.3f}"})
        scheme = html.escape(churn_validation["scheme"])
        body += (f"<p class=\"note\">Churn model validated {scheme}; figures on rows neither "
                 "training nor calibration saw.</p>")
    chosen = effects_comparison[effects_comparison["learner"] == effects_learner]
    chosen = chosen.drop(columns=["learner"]).rename(columns=lambda c: c.replace("_", " "))
    body += (f"<h3>Offer-effect model (learner {html.escape(effects_learner)}): held-out Qini "
             "per offer</h3>") + table(chosen)
    if "policy value" in chosen.columns:
        body += ("<p class=\"note\">Policy value: the held-out outcome of the model's "
                 "own best-offer policy, the same for every offer row.</p>")
    if evidence:
        body += _evidence_section(evidence, cur)
    return page("Retention campaign plan", body)



def rules_table(constraints: list[dict], cur: str) -> str:
    """The plan's rules as HTML: use, limit, whether each limits the plan (or is used up at a
    price of 0: 'at its limit') and its shadow price (currency per unit)."""
    cons = pd.DataFrame(constraints)
    cons["binding"] = np.where(cons["binding"], "yes", np.where(
        cons.get("at_limit", False), "at its limit", "no"))
    cons["shadow_price"] = [("-" if v is None or pd.isna(v) else f"{v:,.2f}")
                            for v in cons["shadow_price"]]
    body = table(_human(cons.drop(columns=["at_limit"], errors="ignore"), {
        "constraint": "rule", "used": "used by the selection", "limit": "limit",
        "binding": "limits the plan",
        "shadow_price": f"value of loosening it by one unit ({cur})"},
        money=("used", "limit")))
    return body + (
        "<p class=\"note\">A rule limits the plan when loosening it by one unit would "
        "raise the expected net gain (its value is then above 0). A rule <i>at its "
        "limit</i> is used up, but one more unit alone buys nothing: no left-out "
        "candidate fits in it, or the solver's price settled at 0 within its "
        "tolerance.</p>")

def _evidence_section(evidence: list[dict], cur: str) -> str:
    """Per offer: per-customer or effect-group-average effects, and the held-out test behind it."""
    def pm(value: float | None, se: float | None, fmt: str) -> str:
        return "untested" if value is None else f"{value:{fmt}} +- {se:{fmt}}"

    rows = pd.DataFrame([{
        "offer": e["offer"], "effect on": e["outcome"], "effects used": e["use"],
        "average effect": pm(e["average_effect"], e["average_effect_se"],
                             ".4f" if e["outcome"] == "churn" else ",.2f"),
        "slope on the prediction": pm(e["slope"], e["slope_se"], ".2f"),
        "slope on the group averages": pm(e.get("group_slope"), e.get("group_slope_se"),
                                          ".2f") if e["use"] != "per-customer" else "",
        "why": e["why"]} for e in evidence])
    return ("<h3>Which offers use per-customer effects</h3><p>Per offer, the predicted "
            "effects on churn (probability) and on value (" + cur + ") were tested on held-out "
            "rows of the past campaign (best linear predictor: the outcome regressed on the "
            "prediction; slope 1 = calibrated, 0 = no signal, +- one standard error). Where "
            "that slope, or the slope of the money gain built from the offer's effects, is "
            "not above 0 at 5%, the plan uses the average effect of the customer's effect "
            "group instead of per-customer predictions: the churn tier and, above green, the "
            "top churn reason (a group of fewer than 30 scored customers eligible for the "
            "offer takes its tier's average). The same test on the groups' average "
            "predictions scales their spread: each group gets the eligible customers' mean "
            "prediction, corrected by the bias the held-out rows measured (the average effect "
            "above minus the mean prediction), plus its average's distance from that mean "
            "times that slope, shrunk by its standard error and clipped to 0..1.</p>") + table(rows)
