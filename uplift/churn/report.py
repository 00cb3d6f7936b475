"""HTML section for a churn model's validation figures."""

from __future__ import annotations

import pandas as pd

from uplift.report import figure, kpis, page, svg, table


def calibration_chart(calibration: list[dict]) -> str:
    frame = pd.DataFrame(calibration)
    fig, ax = figure(4.5, 4.0)
    top = max(frame["predicted"].max(), frame["observed"].max()) * 1.05
    ax.plot([0, top], [0, top], color="#9aa5b1", linestyle="--", label="perfect")
    ax.plot(frame["predicted"], frame["observed"], marker="o", color="#1f6feb", label="model")
    ax.set_xlabel("predicted churn probability")
    ax.set_ylabel("observed churn rate")
    ax.legend(frameon=False)
    return svg(fig)


def validation_section(v: dict) -> str:
    e = v["evaluation"]
    body = kpis({"ROC-AUC": f"{e['roc_auc']:.3f}", "PR-AUC": f"{e['pr_auc']:.3f}",
                 "Brier": f"{e['brier']:.4f}", "ECE": f"{e['ece']:.4f}",
                 "top-decile precision": f"{e['top_decile_precision']:.3f}",
                 "base churn rate": f"{e['churn_rate']:.3f}"})
    body += (f"<p class=\"note\">Validation: {v['scheme']}; rows train / calibration / "
             f"evaluation: {v['rows']['train']:,} / {v['rows']['calibration']:,} / "
             f"{v['rows']['evaluation']:,}. Calibration: {v['calibration_method']} "
             f"(chosen by cross-validated Brier score). Figures are on the evaluation rows, "
             f"which neither training nor calibration saw.</p>")
    body += "<h2>Calibration</h2>" + calibration_chart(e["calibration"])
    body += table(pd.DataFrame(e["calibration"]))
    body += "<h2>Lift and capture by risk decile</h2>" + table(pd.DataFrame(e["deciles"]))
    if "tiers" in e:
        body += "<h2>Tiers</h2>" + table(pd.DataFrame(e["tiers"]))
    if v.get("excluded_columns"):
        rows = pd.DataFrame(list(v["excluded_columns"].items()), columns=["column", "why"])
        body += "<h2>Columns left out</h2>" + table(rows)
    return body


def validation_html(v: dict) -> str:
    return page("Churn model validation", validation_section(v))
