"""Churn_Modelling.csv through the bring-your-own path: 5-fold cross-validated ROC-AUC.

Each fold runs the product's own commands: `uplift churn fit` on the training folds (label
`Exited`; RowNumber, CustomerId and Surname are excluded automatically) and `uplift churn score`
on the held-out fold.

Usage: python evaluation/churn_modelling.py [--folds 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from uplift.churn.metrics import expected_calibration_error
from uplift.cli import run

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
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        folds = StratifiedKFold(args.folds, shuffle=True, random_state=args.seed)
        for k, (train, test) in enumerate(folds.split(frame, y)):
            frame.iloc[train].to_csv(tmp / "train.csv", index=False)
            frame.iloc[test].drop(columns="Exited").to_csv(tmp / "test.csv", index=False)
            assert run(["--quiet", "churn", "fit", "--table", str(tmp / "train.csv"), "--label",
                        "Exited", "--id", "CustomerId", "--seed", str(args.seed), "--out",
                        str(tmp / f"m{k}")]) == 0
            assert run(["--quiet", "churn", "score", "--model", str(tmp / f"m{k}"), "--table",
                        str(tmp / "test.csv"), "--out", str(tmp / "s.csv")]) == 0
            risk = pd.read_csv(tmp / "s.csv")["churn_risk"].to_numpy()
            aucs.append(roc_auc_score(y[test], risk))
            eces.append(expected_calibration_error(y[test], risk))
    print(f"{args.folds}-fold ROC-AUC {np.mean(aucs):.4f} +- {np.std(aucs):.4f} "
          f"(folds {', '.join(f'{a:.3f}' for a in aucs)}); ECE {np.mean(eces):.4f}; "
          f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
