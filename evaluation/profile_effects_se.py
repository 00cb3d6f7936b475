"""Where the time of per-customer effect standard errors goes (jackknife over fold models).

Fits the default effects estimator's learners one at a time (T, then X; 3-fold cross-fitting)
on a synthetic 5-arm campaign of ``--rows`` rows x ``--features`` features, then times
``predict`` (the refit model) and ``predict_se`` (the 3 fold models) on ``--predict`` rows and
profiles ``predict_se``: the share of its time spent inside LightGBM's tree traversal
(``lightgbm.basic ... __inner_predict_np2d``) is what bounds it from below.

Usage: python evaluation/profile_effects_se.py [--rows 30000] [--features 197]
                                               [--predict 200000]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import numpy as np

from uplift.effects import UpliftEstimator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=30_000)
    parser.add_argument("--features", type=int, default=197)
    parser.add_argument("--predict", type=int, default=200_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.rows, args.features))
    arms = rng.choice(["control", "a", "b", "c", "d"], args.rows)
    y = (rng.random(args.rows) < 0.2 + 0.05 * (arms == "a") * (X[:, 0] > 0)).astype(float)
    X_new = rng.normal(size=(args.predict, args.features))
    for learner in ("t", "x"):
        est = UpliftEstimator(learners=(learner,), goal="decrease", random_state=0)
        est.fit(X, y, treatment=arms)
        started = time.perf_counter()
        est.predict(X_new)
        effects = time.perf_counter() - started
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.runcall(est.predict_se, X_new)
        se = time.perf_counter() - started
        stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
        inner = sum(v[2] for k, v in stats.items() if k[2] == "__inner_predict_np2d")
        calls = sum(v[1] for k, v in stats.items() if k[2] == "__inner_predict_np2d")
        total = sum(v[2] for v in stats.values())
        print(f"learner {learner}: effects {effects:.1f} s, standard errors {se:.1f} s for "
              f"{args.predict:,} rows ({se / effects:.1f}x); LightGBM tree traversal "
              f"{inner / total:.1%} of the standard-error time in {calls} booster "
              f"predictions ({calls // len(est.fold_models_)} per fold model, "
              f"{len(est.fold_models_)} fold models)", flush=True)


if __name__ == "__main__":
    main()
