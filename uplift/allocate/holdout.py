"""The randomised holdout: after optimisation, a fraction of the selected customers of each
stratum (``holdout_stratify`` columns x offer) is drawn at random (seeded) and not contacted.
Every plan row records its assignment probability: ``1 - h`` for a treated customer and ``h``
for a held-out one, where ``h`` is the stratum's realised holdout share."""

from __future__ import annotations

import numpy as np
import pandas as pd


def strata_codes(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """One integer per row naming its stratum (the combination of ``columns``' values; a
    missing value is a stratum of its own), numbered in sorted order of those values; zeros
    without columns. Vectorised (per-column factorize and integer arithmetic): no row-wise
    string joins, which are slow on pandas 3's Arrow-backed strings."""
    key = np.zeros(len(frame), dtype=np.int64)
    size = 1
    for col in columns:
        codes, levels = pd.factorize(frame[col], sort=True, use_na_sentinel=False)
        if size * max(len(levels), 1) >= 2**62:          # renumber before it could overflow
            key = pd.factorize(key, sort=True)[0].astype(np.int64)
            size = int(key.max()) + 1
        key = key * max(len(levels), 1) + codes
        size *= max(len(levels), 1)
    return pd.factorize(key, sort=True)[0].astype(np.int64) if columns else key


def draw_holdout(choice: np.ndarray, strata: np.ndarray, fraction: float, seed: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Holdout flags and assignment probabilities for the selected customers.

    ``strata``: stratum per row (integers from :func:`strata_codes`, or any labels, numbered
    in sorted order); the holdout is drawn within
    each (stratum, offer) group, groups in order of stratum then offer, members in row order.
    """
    holdout = np.zeros(len(choice), dtype=bool)
    prob = np.ones(len(choice))
    if fraction <= 0:
        return holdout, prob
    rng = np.random.default_rng(seed)
    selected = np.flatnonzero(choice >= 0)
    width = int(choice.max()) + 1 if len(selected) else 1
    strata = np.asarray(strata)
    if strata.dtype.kind not in "iu":
        strata = pd.factorize(strata, sort=True)[0]
    keys = strata.astype(np.int64)[selected] * width + choice[selected]
    order = np.argsort(keys, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(keys[order]) != 0])
    for members in np.split(selected[order], starts[1:]):
        if not len(members):
            continue
        k = int(np.floor(fraction * len(members) + rng.random()))   # unbiased rounding
        held = rng.choice(members, size=min(k, len(members)), replace=False)
        holdout[held] = True
        share = len(held) / len(members)
        prob[members] = 1 - share
        prob[held] = share
    return holdout, prob
