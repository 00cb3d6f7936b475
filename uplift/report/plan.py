"""The plan report: one self-contained HTML page a marketing manager can read without help."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from uplift.report import figure, kpis, page, svg, table


def _curve_chart(curve: pd.DataFrame, spend: float, gain: float, currency: str) -> str:
    fig, ax = figure(6.0, 3.4)
    ax.plot(curve["spend"], curve["expected_gain"], marker="o", color="#1f6feb",
            label="best plan for each budget")
    ax.scatter([spend], [gain], color="#d1242f", zorder=5, s=60, label="this plan")
    ax.set_xlabel(f"spend ({currency})")
    ax.set_ylabel(f"expected net gain ({currency})")
    ax.legend(frameon=False)
    return svg(fig)


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
    if backtest.chosen_with_evidence < backtest.chosen:
        text += (f"<p class=\"note\">{backtest.chosen - backtest.chosen_with_evidence:,} "
                 "replayed choices had no treated or no control customers in the past campaign; "
                 "only their cost is counted.</p>")
    return text


def plan_html(plan: pd.DataFrame, summary: dict, excluded: dict[str, int],
              curve: pd.DataFrame | None, interval: tuple[float, float],
              churn_validation: dict, effects_comparison: pd.DataFrame,
              effects_learner: str, context: dict, backtest=None) -> str:
    cur = summary["currency"]
    treated = plan[plan["holdout"] == 0]
    spend, gain = summary["spend"], summary["expected_gain"]
    lo, hi = interval
    roi = summary["roi"]
    body = (f"<p>Campaign <b>{html.escape(summary['campaign'])}</b>, planning date "
            f"{html.escape(str(context.get('as_of')))}, data {html.escape(context['data'])}. "
            f"{summary['customers_scored']:,} open customers were scored.</p>")
    body += kpis({
        "budget": _money(summary["budget"], cur),
        "spend": _money(spend, cur),
        "customers contacted": f"{summary['treated']:,}",
        "held out (to measure)": f"{summary['held_out']:,}",
        "expected net gain": _money(gain, cur),
        "95% interval": f"{lo:,.0f} .. {hi:,.0f}",
        "ROI (net gain / spend)": f"{roi:.2f}" if roi is not None else "n/a",
        "ROI interval": (f"{lo / spend:.2f} .. {hi / spend:.2f}" if spend > 0 else "n/a"),
    })
    body += ("<p class=\"note\">Expected net gain = retained customer value from lower churn + "
             "change in new business - offer cost, summed over contacted customers. The "
             "interval assumes independent per-customer estimation errors.</p>")
    body += _backtest_section(backtest, gain, cur)
    per_offer = pd.DataFrame([{"offer": o, "customers": v["treated"],
                               f"spend ({cur})": v["spend"],
                               f"expected net gain ({cur})": v["expected_gain"]}
                              for o, v in summary["per_offer"].items()])
    body += "<h2>Who gets what</h2>" + table(per_offer)
    for col in ("segment", "tier"):
        if col in treated.columns:
            cross = pd.crosstab(treated[col], treated["offer"]).reset_index()
            body += f"<h3>Customers per {col} and offer</h3>" + table(cross)
    if curve is not None:
        body += ("<h2>Budget curve</h2><p>Best achievable net gain at each budget; the "
                 "marginal ROI says what the last unit of money buys.</p>")
        body += _curve_chart(curve, spend, summary["plan_value_before_holdout"], cur)
        body += table(curve)
    reasons = [c for c in ("reason_1", "reason_2", "reason_3") if c in treated.columns]
    if reasons:
        top = treated["reason_1"].replace("", np.nan).dropna().value_counts().head(8)
        body += "<h2>Why these customers</h2><h3>Main churn reason of contacted customers</h3>"
        body += table(top.rename_axis("reason").reset_index(name="customers"))
    effect_cols = [c for c in treated.columns if c.startswith("delta_churn_")]
    if effect_cols:
        rows = []
        for offer, group in treated.groupby("offer"):
            col = f"delta_churn_{offer}"
            rows.append({"offer": offer, "customers": len(group),
                         "mean churn risk": group["churn_risk"].mean()
                         if "churn_risk" in group else np.nan,
                         "mean predicted change in churn probability": group[col].mean()
                         if col in group else np.nan,
                         f"mean net gain ({cur})": group["expected_gain"].mean()})
        body += "<h3>Offer effects for the customers who get each offer</h3>"
        body += table(pd.DataFrame(rows))
    body += "<h2>How good is this plan</h2>"
    body += (f"<p>Plan value {_money(summary['plan_value_before_holdout'], cur)} (before the "
             f"holdout) against a proven upper bound of {_money(summary['bound'], cur)}: no plan "
             f"under these rules can do more than {summary['gap']:.3%} better. Solver: "
             f"{html.escape(summary['solver'])}, {summary['solver_seconds']:.2f} s.</p>")
    cons = pd.DataFrame(summary["constraints"])
    body += table(cons)
    body += "<h2>Who was left out, and why</h2>"
    body += table(pd.DataFrame([{"rule": k, "customers": v} for k, v in excluded.items()]))
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
    body += (f"<h3>Offer-effect model (learner {html.escape(effects_learner)}): held-out Qini "
             "per offer</h3>") + table(chosen.drop(columns=["learner"]))
    return page("Retention campaign plan", body)
