"""Candidate uplift learners (causalml) behind one small interface.

Every learner returns effects as a DataFrame with one column per non-control arm, mapped by
*name* (causalml orders columns by sorted arm name; the uplift forest puts control first).

Learners (LightGBM base learners everywhere, same settings):

* ``t``: T-learner, one outcome model per arm;
* ``s``: S-learner, one model with the arm as a feature;
* ``x``: X-learner, imputed effects regressed per arm, blended with the assignment
  probabilities (at prediction time the training share of each arm is used);
* ``forest``: causalml's uplift random forest (KL criterion; binary outcomes only).

causalml's DR and R learners are not offered: in a check with known effects on causalml 0.18 the
DR classifier's multi-arm estimates were biased, and the R learner's internal cross-validated
propensity model is too slow for routine use.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from uplift.errors import InputError

LEARNERS = ("t", "s", "x", "forest")


@dataclass(frozen=True)
class BoostSettings:
    """LightGBM settings shared by all base learners."""

    n_estimators: int = 150
    learning_rate: float = 0.05
    num_leaves: int = 15
    min_child_samples: int = 50
    colsample_bytree: float = 0.7
    threads: int = 1

    def classifier(self, seed: int):  # -> LGBMClassifier
        from lightgbm import LGBMClassifier

        return LGBMClassifier(**self._kw(seed))

    def regressor(self, seed: int):  # -> LGBMRegressor
        from lightgbm import LGBMRegressor

        return LGBMRegressor(**self._kw(seed))

    def _kw(self, seed: int) -> dict:
        return {"n_estimators": self.n_estimators, "learning_rate": self.learning_rate,
                "num_leaves": self.num_leaves, "min_child_samples": self.min_child_samples,
                "colsample_bytree": self.colsample_bytree, "subsample": 0.8,
                "subsample_freq": 1, "n_jobs": self.threads, "random_state": seed,
                "verbose": -1, "deterministic": True, "force_row_wise": True}


@contextlib.contextmanager
def quiet():
    """Silence causalml's import chatter and per-call progress prints."""
    import logging

    logging.getLogger("duecredit").setLevel(logging.CRITICAL)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


class CausalLearner:
    """One causalml learner: ``fit(X, arms, y, p)`` / ``predict(X) -> DataFrame``."""

    def __init__(self, name: str, binary: bool, arms: list[str], control: str,
                 boost: BoostSettings, seed: int):
        if name not in LEARNERS:
            raise InputError(f"unknown learner {name!r}; choose from {', '.join(LEARNERS)}")
        if name == "forest" and not binary:
            raise InputError("the uplift forest handles binary outcomes only")
        self.name, self.binary, self.arms, self.control = name, binary, arms, control
        self.boost, self.seed = boost, seed

    def _build(self):
        with quiet():
            from causalml.inference import meta
            from causalml.inference.tree import UpliftRandomForestClassifier
        b, s = self.boost, self.seed
        outcome = b.classifier(s) if self.binary else b.regressor(s)
        if self.name == "t":
            cls = meta.BaseTClassifier if self.binary else meta.BaseTRegressor
            return cls(learner=outcome, control_name=self.control)
        if self.name == "s":
            cls = meta.BaseSClassifier if self.binary else meta.BaseSRegressor
            return cls(learner=outcome, control_name=self.control)
        if self.name == "x":
            cls = meta.BaseXClassifier if self.binary else meta.BaseXRegressor
            if self.binary:
                return cls(outcome_learner=outcome, effect_learner=b.regressor(s),
                           control_name=self.control)
            return cls(learner=outcome, control_name=self.control)
        return UpliftRandomForestClassifier(
            control_name=self.control, n_estimators=30, max_depth=6, min_samples_leaf=200,
            max_features=max(5, int(np.sqrt(1))), random_state=s, n_jobs=1)

    def fit(self, X: np.ndarray, arms: np.ndarray, y: np.ndarray,
            p: dict[str, np.ndarray]) -> CausalLearner:
        self.model_ = self._build()
        self.mean_p_ = {a: float(np.mean(v)) for a, v in p.items()}
        with quiet():
            if self.name == "forest":
                self.model_.max_features = max(5, int(np.sqrt(X.shape[1])))
                self.model_.fit(X, arms, y)
            elif self.name == "x":
                self.model_.fit(X=X, treatment=arms, y=y, p=p)
            else:
                self.model_.fit(X=X, treatment=arms, y=y)
        return self

    def predict(self, X: np.ndarray) -> pd.DataFrame:
        with quiet():
            if self.name == "forest":
                raw = self.model_.predict(X)
                names = [str(c) for c in self.model_.classes_[1:]]
            elif self.name == "x":
                p = {a: np.full(len(X), v) for a, v in self.mean_p_.items()}
                raw = self.model_.predict(X=X, p=p)
                names = [str(g) for g in self.model_.t_groups]
            else:
                raw = self.model_.predict(X=X)
                names = [str(g) for g in self.model_.t_groups]
        frame = pd.DataFrame(np.asarray(raw, dtype=float).reshape(len(X), -1), columns=names)
        return frame[self.arms]
