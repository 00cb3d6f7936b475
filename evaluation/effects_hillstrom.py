"""Hillstrom e-mail experiment: our effects estimator side by side with peer libraries.

30% stratified test split (by arm and visit), 5 seeds. Outcome `visit`, arms "Mens E-Mail" and
"Womens E-Mail" against "No E-Mail". Every model uses the same LightGBM settings. Qini
coefficient = scikit-uplift `qini_auc_score` on the test split, each e-mail arm against the
no-e-mail arm only. Policy value = self-normalised IPW estimate of the visit rate on the test
split when each customer gets the arm with the highest predicted uplift (or no e-mail when both
are negative), compared with "Mens e-mail to everyone"; and of our estimator's policy tree
(`UpliftEstimator.recommend`: the best single arm unless a leaf of similar customers measurably
did better with another arm), at z = 0 and z = 1 standard errors.

Usage: python evaluation/effects_hillstrom.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from uplift.effects import BoostSettings, UpliftEstimator
from uplift.effects.learners import make_learner, quiet
from uplift.effects.metrics import snipw_value

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hillstrom" / "hillstrom.csv"
CONTROL, ARMS = "No E-Mail", ["Mens E-Mail", "Womens E-Mail"]


def prepare(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = pd.get_dummies(frame[["recency", "history_segment", "history", "mens", "womens",
                              "zip_code", "newbie", "channel"]], dtype=float)
    return X.to_numpy(float), frame["visit"].to_numpy(float), frame["segment"].to_numpy(str)


def sklift_models(boost: BoostSettings, seed: int):
    from sklift.models import ClassTransformation, TwoModels

    return {
        "sklift TwoModels": lambda: TwoModels(estimator_trmnt=boost.classifier(seed),
                                              estimator_ctrl=boost.classifier(seed),
                                              method="vanilla"),
        "sklift ClassTransformation": lambda: ClassTransformation(boost.classifier(seed)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with quiet():
        from sklift.metrics import qini_auc_score
    frame = pd.read_csv(args.data)
    X, y, arm = prepare(frame)
    boost = BoostSettings()
    strata = arm + "|" + y.astype(int).astype(str)
    rows = []
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        test = np.zeros(len(y), dtype=bool)
        for s in np.unique(strata):
            idx = np.flatnonzero(strata == s)
            test[rng.choice(idx, int(round(0.3 * len(idx))), replace=False)] = True
        train = ~test
        p_test = np.array([np.mean(arm[train] == a) for a in arm[test]])
        predictions: dict[str, pd.DataFrame] = {}
        timings = {}
        started = time.perf_counter()
        ours = UpliftEstimator(learners=("t", "x", "s"), outcome="binary", goal="increase",
                               control=CONTROL, boost=boost, random_state=seed)
        ours.fit(X[train], y[train], treatment=arm[train])
        predictions[f"uplift (selected: {ours.learner_})"] = ours.predict(X[test])
        predictions["uplift, shrunk effects"] = ours.predict_shrunk(X[test])
        timings["uplift"] = time.perf_counter() - started
        for name, key in (("causalml T", "t"), ("causalml S", "s"), ("causalml X", "x"),
                          ("causalml uplift RF", "forest")):
            started = time.perf_counter()
            shares = {a: np.full(int(train.sum()), np.mean(arm[train][np.isin(
                arm[train], [a, CONTROL])] == a)) for a in ARMS}
            learner = make_learner(key, binary=True, arms=ARMS, control=CONTROL, boost=boost,
                                   seed=seed)
            predictions[name] = learner.fit(X[train], arm[train], y[train], shares).predict(
                X[test])
            timings[name] = time.perf_counter() - started
        for name, make in sklift_models(boost, seed).items():
            cols = {}
            for a in ARMS:
                mask = np.isin(arm[train], [a, CONTROL])
                model = make()
                model.fit(X[train][mask], y[train][mask], (arm[train][mask] == a).astype(int))
                cols[a] = model.predict(X[test])
            predictions[name] = pd.DataFrame(cols)
        for name, pred in predictions.items():
            record = {"seed": seed, "model": name.split(" (")[0], "detail": name}
            if name.startswith("uplift, shrunk"):
                record["model"] = name
            for a in ARMS:
                mask = np.isin(arm[test], [a, CONTROL])
                record[f"qini {a}"] = qini_auc_score(y[test][mask], pred[a].to_numpy()[mask],
                                                     (arm[test][mask] == a).astype(int))
            benefit = pred[ARMS].to_numpy()
            policy = np.where(benefit.max(axis=1) > 0, np.asarray(ARMS)[benefit.argmax(axis=1)],
                              CONTROL)
            record["policy value"] = snipw_value(y[test], arm[test], policy, p_test)
            rows.append(record)
        for z in (0.0, 1.0):
            rows.append({"seed": seed, "model": f"uplift, policy tree (z={z:g})",
                         "detail": "", "policy value": snipw_value(
                             y[test], arm[test], ours.recommend(X[test], z=z), p_test)})
        rows.append({"seed": seed, "model": "Mens e-mail to everyone", "detail": "",
                     "policy value": snipw_value(y[test], arm[test],
                                                 np.full(test.sum(), "Mens E-Mail"), p_test)})
        print(f"seed {seed} done ({', '.join(f'{k} {v:.0f}s' for k, v in timings.items())})",
              flush=True)
    table = pd.DataFrame(rows)
    summary = table.groupby("model", sort=False)[[f"qini {a}" for a in ARMS] + [
        "policy value"]].agg(["mean", "std"])
    pd.set_option("display.width", 160)
    print(summary.round(4).to_string())
    chosen = table[table["model"] == "uplift"]["detail"].value_counts().to_dict()
    print("learner chosen by our selection per seed:", chosen)


if __name__ == "__main__":
    main()
