"""Qini curves and the learner comparison as an HTML section."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from uplift.effects.metrics import qini_points
from uplift.report import page, panel_axes, svg, table


def qini_chart(model) -> str:
    """Out-of-fold Qini curve per offer (benefit-ranked) with the random-targeting line."""
    est = model.estimator_
    data = est.curve_data_
    fig, axes = panel_axes(max(3.2 * len(est.arms_), 4.0), 3.0, len(est.arms_))
    for j, (arm, ax) in enumerate(zip(est.arms_, axes, strict=True)):
        mask = np.isin(data["arm"], [arm, est.control])
        benefit = est.benefit(np.asarray(data[f"effect_{arm}"]))
        points = qini_points(data["good"][mask], np.asarray(benefit)[mask],
                             (data["arm"][mask] == arm).astype(int))
        ax.plot(points["share"], points["qini"], color="#1f6feb", label="model")
        ax.plot(points["share"], points["random"], color="#9aa5b1", linestyle="--",
                label="random")
        ax.set_title(arm, fontsize=9)
        ax.set_xlabel("share targeted", fontsize=8)
        ax.tick_params(labelsize=7)
        if j == 0:
            ax.set_ylabel("incremental outcomes", fontsize=8)
            ax.legend(frameon=False, fontsize=7)
    return svg(fig)


def effects_section(model) -> str:
    est = model.estimator_
    body = (f"<p>Outcome <b>{html.escape(model.outcome)}</b> ({est.outcome}); arms vs "
            f"<b>{html.escape(str(est.control))}</b>: {html.escape(', '.join(est.arms_))}; "
            f"goal: {est.goal}. "
            f"Chosen learner: <b>{est.learner_}</b> (highest mean out-of-fold Qini "
            f"coefficient). Propensities: "
            f"{'estimated (observational)' if est.propensity_estimated_ else 'logged'}.</p>")
    body += "<h2>Learner comparison (held-out folds)</h2>" + table(est.comparison_)
    ate = pd.DataFrame([{"arm": a, "average effect": v} for a, v in est.ate_.items()])
    body += "<h2>Average effect per arm (difference in means)</h2>" + table(ate)
    body += "<h2>Qini curves (out-of-fold)</h2>" + qini_chart(model)
    return body


def effects_html(model) -> str:
    return page(f"Offer effects on {model.outcome}", effects_section(model))
