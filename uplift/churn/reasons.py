"""Plain-language churn reasons from per-customer feature contributions.

Contributions (LightGBM ``pred_contrib``, exact TreeSHAP in log-odds) are summed per reason of
a reviewed dictionary (``uplift/data/reasons.yaml``: feature-name globs -> reason). For tables
whose columns the dictionary does not know (bring-your-own), each column is its own reason,
phrased as "<column>: high" or "<column>: low" against the training median, or
"<column> = <value>" for categories. A customer's reasons are the groups that raise the risk
most, strongest first; at most ``top_k`` with a positive contribution.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from uplift.errors import SpecError

OTHER = "other signals"


@dataclass(frozen=True)
class ReasonRule:
    reason: str
    family: str
    patterns: tuple[str, ...]
    kind: str = "reason"


def load_reason_rules(path: Path | None = None) -> list[ReasonRule]:
    """Read the reason dictionary (the packaged default when ``path`` is None)."""
    try:
        text = (path.read_text(encoding="utf-8") if path is not None else
                resources.files("uplift").joinpath("data/reasons.yaml").read_text("utf-8"))
        raw = yaml.safe_load(text)
        return [ReasonRule(r["reason"], r.get("family", ""), tuple(r["patterns"]),
                           r.get("kind", "reason")) for r in raw["reasons"]]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise SpecError(f"{path or 'reasons.yaml'}: invalid reason dictionary ({exc})") from exc


def group_features(features: list[str], rules: list[ReasonRule]) -> dict[str, str]:
    """Map each feature to a dictionary reason; unmatched features map to themselves."""
    mapping = {}
    for feature in features:
        rule = next((r for r in rules if any(fnmatch.fnmatchcase(feature, p)
                                             for p in r.patterns)), None)
        mapping[feature] = rule.reason if rule else feature
    return mapping


def reason_family(rules: list[ReasonRule]) -> dict[str, str]:
    return {r.reason: r.family for r in rules}


def symptoms(rules: list[ReasonRule]) -> set[str]:
    """Reason texts that describe *that* a customer is leaving rather than *why*."""
    return {r.reason for r in rules if r.kind == "symptom"}


def top_reasons(
    contributions: np.ndarray, X: pd.DataFrame, feature_to_reason: dict[str, str],
    medians: dict[str, float], top_k: int = 3, exclude: set[str] | None = None,
) -> np.ndarray:
    """Top-k reason texts per row (array rows x top_k, "" when fewer raise the risk).

    Groups named in ``exclude`` (symptoms) are not ranked.
    """
    features = list(X.columns)
    groups = sorted(set(feature_to_reason[f] for f in features) - set(exclude or ()))
    if not groups:
        return np.full((len(X), top_k), "", dtype=object)
    index = {g: i for i, g in enumerate(groups)}
    member = np.zeros((len(features), len(groups)))
    for j, f in enumerate(features):
        if feature_to_reason[f] in index:
            member[j, index[feature_to_reason[f]]] = 1.0
    grouped = contributions[:, : len(features)] @ member
    k = min(top_k, len(groups))
    order = np.argsort(-grouped, axis=1, kind="stable")[:, :k]
    strength = np.take_along_axis(grouped, order, axis=1)
    texts = np.asarray(groups, dtype=object)[order]
    for g, name in enumerate(groups):   # bring-your-own columns: say which way they point
        if name not in X.columns or feature_to_reason.get(name) != name:
            continue
        hit = order == g
        if not hit.any():
            continue
        rows = np.nonzero(hit.any(axis=1))[0]
        values = X[name].iloc[rows]
        if name in medians:
            described = np.where(values.to_numpy(dtype=float) > medians[name],
                                 f"{name}: high", f"{name}: low")
        else:
            described = (name + " = " + values.astype(str)).to_numpy()
        for col in range(k):
            sel = hit[rows, col]
            texts[rows[sel], col] = described[sel]
    texts[strength <= 0] = ""
    if k < top_k:
        texts = np.hstack([texts, np.full((len(texts), top_k - k), "", dtype=object)])
    return texts


def symptom_signal(contributions: np.ndarray, features: list[str],
                   feature_to_reason: dict[str, str], symptom_names: set[str]) -> np.ndarray:
    """Per row: the symptom text when its features raise the risk (contribution > 0), else ""."""
    out = np.full(len(contributions), "", dtype=object)
    for name in sorted(symptom_names):
        cols = [j for j, f in enumerate(features) if feature_to_reason.get(f) == name]
        if cols:
            raised = contributions[:, cols].sum(axis=1) > 0
            out[raised & (out == "")] = name
    return out
