"""Candidate uplift learners (causalml) behind one small interface, one class per file.

Every learner returns effects as a DataFrame with one column per non-control arm, mapped by
*name* (causalml orders columns by sorted arm name; the uplift forest puts control first).

Learners (LightGBM base learners everywhere, same settings), each registered under its name:

* ``t`` (:mod:`.t`): T-learner, one outcome model per arm;
* ``s`` (:mod:`.s`): S-learner, one model with the arm as a feature;
* ``x`` (:mod:`.x`): X-learner, imputed effects regressed per arm, blended with the assignment
  probabilities (at prediction time the training share of each arm is used);
* ``forest`` (:mod:`.forest`): causalml's uplift random forest (KL criterion; binary outcomes
  only).

A new learner is one module in this package defining a :class:`CausalLearner` subclass with a
``name`` and decorated with :func:`register`; every module here is imported on first use.

causalml's DR and R learners are not offered: in a check with known effects on causalml 0.18 the
DR classifier's multi-arm estimates were biased, and the R learner's internal cross-validated
propensity model is too slow for routine use.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from uplift.errors import InputError, NotFittedError

_REGISTRY: dict[str, type[CausalLearner]] = {}


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


class CausalLearner(BaseEstimator):
    """One causalml learner: ``fit(X, arms, y, p)`` / ``predict(X) -> DataFrame`` (effect of
    each arm in ``arms`` vs ``control``: probability change or currency)."""

    name = ""
    binary_only = False

    def __init__(self, binary: bool = True, arms: list[str] | None = None,
                 control: str = "control", boost: BoostSettings | None = None, seed: int = 0):
        self.binary = binary
        self.arms = arms
        self.control = control
        self.boost = boost
        self.seed = seed

    def _build(self):
        """The unfitted causalml model."""
        raise NotImplementedError

    def _outcome_learner(self):
        boost = self.boost or BoostSettings()
        return boost.classifier(self.seed) if self.binary else boost.regressor(self.seed)

    def _fit(self, X: np.ndarray, arms: np.ndarray, y: np.ndarray,
             p: dict[str, np.ndarray]) -> None:
        self.model_.fit(X=X, treatment=arms, y=y)

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, list[str]]:
        return self.model_.predict(X=X), [str(g) for g in self.model_.t_groups]

    def _only(self, arms: list[str]) -> CausalLearner:
        """This fitted learner predicting ``arms`` only (a shallow copy whose causalml model
        loops over those treatment groups: the same values for a fraction of the trees)."""
        groups = getattr(self.model_, "t_groups", None)
        if groups is None:
            return self
        wanted = set(arms)
        keep = np.asarray([g for g in groups if str(g) in wanted], dtype=groups.dtype)
        narrowed = copy.copy(self)
        narrowed.model_ = copy.copy(self.model_)
        narrowed.model_.t_groups = keep
        narrowed.arms = [str(g) for g in keep]
        return narrowed

    def fit(self, X: np.ndarray, arms: np.ndarray, y: np.ndarray,
            p: dict[str, np.ndarray]) -> CausalLearner:
        if self.binary_only and not self.binary:
            raise InputError(f"the {self.name} learner handles binary outcomes only")
        with quiet():
            self.model_ = self._build()
            self.mean_p_ = {a: float(np.mean(v)) for a, v in p.items()}
            self._fit(X, arms, y, p)
        return self

    def predict(self, X: np.ndarray, arms: list[str] | None = None) -> pd.DataFrame:
        """Effects of every arm (or of ``arms`` only, computed from their models alone)."""
        if not hasattr(self, "model_"):
            raise NotFittedError(f"the {self.name} learner is not fitted")
        learner = self if arms is None else self._only(arms)
        with quiet():
            raw, names = learner._predict(X)
        frame = pd.DataFrame(np.asarray(raw, dtype=float).reshape(len(X), -1), columns=names)
        return frame[list(arms if arms is not None else self.arms or names)]


def register(cls: type[CausalLearner]) -> type[CausalLearner]:
    """Class decorator: make a learner available under its ``name``."""
    _REGISTRY[cls.name] = cls
    return cls


def registry() -> dict[str, type[CausalLearner]]:
    """Every learner by name (each module of this package imported once)."""
    if not _REGISTRY:
        import importlib
        import pkgutil

        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")
    return dict(_REGISTRY)


def make_learner(name: str, *, binary: bool, arms: list[str], control: str,
                 boost: BoostSettings | None, seed: int) -> CausalLearner:
    """A new unfitted learner of the registered ``name``."""
    learners = registry()
    if name not in learners:
        raise InputError(f"unknown learner {name!r}; choose from {', '.join(learners)}")
    return learners[name](binary=binary, arms=arms, control=control, boost=boost, seed=seed)

