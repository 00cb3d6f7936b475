"""Training tables for the churn model: features + labels over several snapshots."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from uplift.errors import InputError
from uplift.features import FeatureInputs, build_features
from uplift.features.labels import build_labels


def snapshot_table(
    inputs: FeatureInputs, as_of: Sequence[str], *, horizon_days: int = 30, gap_days: int = 0,
    threads: int = 1, progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Rows = customers open at each snapshot; columns = features, ``as_of``, ``churned``."""
    if not as_of:
        raise InputError("give at least one snapshot date")
    parts = []
    for day in sorted(set(as_of)):
        labels = build_labels(inputs, day, horizon_days=horizon_days, gap_days=gap_days,
                              threads=threads)
        features = build_features(inputs, day, threads=threads)
        merged = features.merge(labels[["customer_id", "churned"]], on="customer_id")
        parts.append(merged.drop(columns=["open_at_as_of"]))
        if progress:
            progress(f"  snapshot {day}: {len(merged):,} customers, churn rate "
                     f"{merged['churned'].mean():.3f}")
    table = pd.concat(parts, ignore_index=True)
    table["as_of"] = pd.to_datetime(table["as_of"])
    return table
