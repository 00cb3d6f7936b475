"""Churn_Modelling.csv through the bring-your-own path: 5-fold cross-validated ROC-AUC.

Each fold fits the product's churn model (`uplift.ChurnModel`, what `uplift churn fit` runs,
with the default settings' tiers) on the training folds (label `Exited`; RowNumber, CustomerId
and Surname are excluded automatically) and scores the held-out fold.

Usage: python evaluation/churn_modelling.py [--folds 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

import uplift
from uplift.churn.metrics import expected_calibration_error
from uplift.config import Settings

DATA = (Path(__file__).resolve().parents[2] / "shared" / "data" / "bank_churn_modelling"
        / "Churn_Modelling.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    frame = pd.read_csv(args.data)
    y = frame["Exited"].to_numpy()
    aucs, eces = [], []
    started = time.perf_counter()
    settings = Settings()
    folds = StratifiedKFold(args.folds, shuffle=True, random_state=args.seed)
    for train, test in folds.split(frame, y):
        model = uplift.ChurnModel(tiers=settings.churn.tiers, random_state=args.seed,
                                  threads=settings.runtime.threads)
        model.fit(frame.iloc[train], label="Exited", id_col="CustomerId", source="train folds")
        held = frame.iloc[test].drop(columns="Exited")
        risk = model.score(held, source="held-out fold")["churn_risk"].to_numpy()
        aucs.append(roc_auc_score(y[test], risk))
        eces.append(expected_calibration_error(y[test], risk))
    print(f"{args.folds}-fold ROC-AUC {np.mean(aucs):.4f} +- {np.std(aucs):.4f} "
          f"(folds {', '.join(f'{a:.3f}' for a in aucs)}); ECE {np.mean(eces):.4f}; "
          f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
