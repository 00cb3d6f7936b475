"""Multi-offer uplift estimator with honest model selection and per-customer uncertainty.

``UpliftEstimator.fit(X, y, treatment=..., propensity=...)``:

1. checks the campaign table: control present, every arm with at least ``min_rows_per_arm``
   rows, binary outcome when ``outcome="binary"``, propensities in (0, 1];
2. cross-fits every candidate learner over ``n_folds`` folds (stratified by arm), so each row
   gets an out-of-fold effect per offer;
3. compares candidates on those held-out predictions, per offer against control: Qini
   coefficient, AUUC, uplift@30% (scikit-uplift), and the self-normalised IPW value of the
   best-offer policy using the logged propensities; the winner has the highest mean Qini
   coefficient over offers (ties: higher policy value);
4. refits the winner on all rows for prediction; its fold models give a per-customer,
   per-offer standard error by the delete-a-group jackknife:
   ``se^2 = (K - 1) / K * sum_k (effect_k - mean)^2``.

5. learns an offer policy (:class:`uplift.effects.policy.OfferPolicy`, used by
   :meth:`UpliftEstimator.recommend`): the best single arm, departed from only for groups of
   customers whose measured outcomes favour another arm.

Without logged propensities (observational data) the propensity of the assigned arm is
estimated by a cross-fitted multinomial logistic regression, and a warning is raised when more
than 1% of rows fall outside [0.02, 0.98] (poor overlap).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from uplift.effects.learners import BoostSettings, CausalLearner, make_learner
from uplift.effects.metrics import arm_metrics, snipw_value
from uplift.effects.policy import OfferPolicy
from uplift.errors import InputError, NotFittedError, SchemaError
from uplift.schema import DataWarning

OVERLAP_LIMITS = (0.02, 0.98)


class UpliftEstimator(BaseEstimator):
    """Per-offer treatment effects (offer minus control) for a binary or continuous outcome."""

    def __init__(
        self, *, learners: tuple[str, ...] = ("t", "x"), n_folds: int = 3,
        outcome: str = "binary", goal: str = "decrease", control: str = "control",
        min_rows_per_arm: int = 50,
        boost: BoostSettings | None = None, random_state: int = 0,
    ):
        self.learners = learners
        self.n_folds = n_folds
        self.outcome = outcome
        self.goal = goal
        self.control = control
        self.min_rows_per_arm = min_rows_per_arm
        self.boost = boost
        self.random_state = random_state

    # -- checks ----------------------------------------------------------------------------
    def _check(self, y: np.ndarray, treatment: np.ndarray, propensity: np.ndarray | None,
               source: str) -> list[str]:
        problems = []
        arms, counts = np.unique(treatment, return_counts=True)
        if self.control not in arms:
            raise SchemaError(source, [f"control value {self.control!r} not found in the "
                                       f"treatment column; values are "
                                       f"{', '.join(map(str, arms[:10]))}"])
        small = [f"{a} ({n})" for a, n in zip(arms, counts, strict=True)
                 if n < self.min_rows_per_arm]
        if small:
            problems.append(f"arm(s) with fewer than {self.min_rows_per_arm} rows: "
                            f"{', '.join(small)}: an offer's effect cannot be learned from so "
                            "few customers; use a larger campaign (or history), or leave "
                            "that arm out of the campaign log")
        if len(arms) < 2:
            problems.append("only the control arm is present; nothing to compare")
        if self.outcome == "binary" and not np.isin(y, [0, 1]).all():
            problems.append("outcome must be 0/1 for a binary (churn) outcome; found "
                            f"{', '.join(map(str, pd.unique(y[~np.isin(y, [0, 1])])[:5]))}")
        if not np.isfinite(y).all():
            problems.append("outcome has missing or infinite values")
        if propensity is not None:
            bad = ~((propensity > 0) & (propensity <= 1))
            if bad.any():
                rows = ", ".join(map(str, np.flatnonzero(bad)[:5] + 1))
                problems.append(f"propensities must be in (0, 1]; {int(bad.sum())} are not "
                                f"(rows {rows})")
        if problems:
            raise SchemaError(source, problems)
        return sorted(str(a) for a in arms if a != self.control)

    # -- propensity --------------------------------------------------------------------------
    def _estimate_propensity(self, X: np.ndarray, treatment: np.ndarray,
                             folds: np.ndarray) -> np.ndarray:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        p = np.zeros(len(treatment))
        for k in range(self.n_folds):
            train, test = folds != k, folds == k
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
            model.fit(np.nan_to_num(X[train]), treatment[train])
            proba = model.predict_proba(np.nan_to_num(X[test]))
            col = {c: i for i, c in enumerate(model.classes_)}
            p[test] = proba[np.arange(test.sum()), [col[t] for t in treatment[test]]]
        lo, hi = OVERLAP_LIMITS
        extreme = float(np.mean((p < lo) | (p > hi)))
        if extreme > 0.01:
            warnings.warn(f"poor overlap: {extreme:.1%} of rows have an estimated assignment "
                          f"probability outside [{lo}, {hi}]; effects there rest on "
                          "extrapolation", DataWarning, stacklevel=3)
        return np.clip(p, 1e-3, 1.0)

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray, *, treatment: np.ndarray,
            propensity: np.ndarray | None = None, source: str = "table",
            progress: Callable[[str], None] | None = None) -> UpliftEstimator:
        """Fit on a campaign table. ``X``: features (rows x columns, numeric). ``progress``
        is told each cross-fitting step (learner and fold) and the final refit."""
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        treatment = np.asarray(treatment).astype(str)
        prop = None if propensity is None else np.asarray(propensity, dtype=float)
        if self.goal not in ("increase", "decrease"):
            raise InputError(f"goal must be 'increase' or 'decrease', not {self.goal!r}")
        self.arms_ = self._check(y, treatment, prop, source)
        boost = self.boost or BoostSettings()
        binary = self.outcome == "binary"
        rng = np.random.default_rng(self.random_state)
        folds = np.empty(len(y), dtype=int)
        for arm in np.unique(treatment):     # stratify folds by arm
            idx = rng.permutation(np.flatnonzero(treatment == arm))
            folds[idx] = np.arange(len(idx)) % self.n_folds
        self.propensity_estimated_ = prop is None
        if prop is None:
            prop = self._estimate_propensity(X, treatment, folds)
        shares = {a: float(np.mean(treatment[np.isin(treatment, [a, self.control])] == a))
                  for a in self.arms_}

        def p_for(rows: np.ndarray) -> dict[str, np.ndarray]:
            return {a: np.full(int(rows.sum()), s) for a, s in shares.items()}

        oof: dict[str, pd.DataFrame] = {}
        fold_models: dict[str, list[CausalLearner]] = {}
        for name in self.learners:
            pred = pd.DataFrame(np.nan, index=range(len(y)), columns=self.arms_)
            models = []
            for k in range(self.n_folds):
                if progress is not None:
                    progress(f"  learner {name}, fold {k + 1} of {self.n_folds}")
                train, test = folds != k, folds == k
                learner = make_learner(name, binary=binary, arms=self.arms_,
                                       control=self.control, boost=boost,
                                       seed=self.random_state + k)
                learner.fit(X[train], treatment[train], y[train], p_for(train))
                pred.loc[test, :] = learner.predict(X[test]).to_numpy()
                models.append(learner)
            oof[name], fold_models[name] = pred, models
        self.comparison_ = self._compare(oof, y, treatment, prop)
        summary = self.comparison_.groupby("learner").agg(
            qini=("qini", "mean"), policy_value=("policy_value", "first"))
        self.learner_ = str(summary.sort_values(["qini", "policy_value"],
                                                ascending=False).index[0])
        if progress is not None:
            progress(f"  refitting learner {self.learner_} on all rows")
        final = make_learner(self.learner_, binary=binary, arms=self.arms_,
                             control=self.control, boost=boost, seed=self.random_state)
        self.model_ = final.fit(X, treatment, y, p_for(np.ones(len(y), dtype=bool)))
        self.fold_models_ = fold_models[self.learner_]
        self.oof_ = oof[self.learner_]
        self.n_features_ = X.shape[1]
        good = self.good(y)
        self.curve_data_ = {"arm": treatment, "good": good,
                            **{f"effect_{a}": self.oof_[a].to_numpy() for a in self.arms_}}
        self.ate_ = {a: float(y[treatment == a].mean() - y[treatment == self.control].mean())
                     for a in self.arms_}
        benefit = pd.DataFrame(self.benefit(self.oof_[self.arms_].to_numpy(dtype=float)),
                               columns=self.arms_)
        self.policy_ = OfferPolicy(random_state=self.random_state).fit(
            X, good, treatment, prop, benefit, self.control)
        return self

    def benefit(self, effects: np.ndarray) -> np.ndarray:
        """Benefit of treating (higher is better): effects flipped when the goal is lower."""
        return -effects if self.goal == "decrease" else effects

    def good(self, y: np.ndarray) -> np.ndarray:
        """Outcome on a higher-is-better scale (retained = 1 - churned for churn)."""
        if self.goal == "increase":
            return y
        return 1 - y if self.outcome == "binary" else -y

    def _compare(self, oof: dict[str, pd.DataFrame], y: np.ndarray, treatment: np.ndarray,
                 prop: np.ndarray) -> pd.DataFrame:
        good = self.good(y)
        rows = []
        for name, pred in oof.items():
            benefit = self.benefit(pred.to_numpy())
            best = np.asarray(self.arms_)[benefit.argmax(axis=1)]
            policy = np.where(benefit.max(axis=1) > 0, best, self.control)
            value = snipw_value(good, treatment, policy, prop)
            for j, arm in enumerate(self.arms_):
                mask = np.isin(treatment, [arm, self.control])
                metrics = arm_metrics(good[mask], benefit[mask, j],
                                      (treatment[mask] == arm).astype(int))
                rows.append({"learner": name, "arm": arm, **metrics, "policy_value": value})
        return pd.DataFrame(rows)

    # -- prediction --------------------------------------------------------------------------
    def _check_fitted(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise NotFittedError("the effects estimator is not fitted")
        X = np.asarray(X, dtype=float)
        if X.shape[1] != self.n_features_:
            raise InputError(f"expected {self.n_features_} feature columns, got {X.shape[1]}")
        return X

    def set_threads(self, threads: int) -> UpliftEstimator:
        """LightGBM threads for prediction (refit and fold models); predictions are the same
        for any thread count, only faster on idle cores."""
        from lightgbm import LGBMModel

        seen: set[int] = set()

        def visit(obj: object, depth: int) -> None:
            if id(obj) in seen or depth > 4:
                return
            seen.add(id(obj))
            if isinstance(obj, LGBMModel):
                obj.n_jobs = threads
            elif isinstance(obj, dict):
                for value in obj.values():
                    visit(value, depth + 1)
            elif isinstance(obj, list | tuple):
                for value in obj:
                    visit(value, depth + 1)
            elif hasattr(obj, "__dict__") and not isinstance(obj, type):
                for value in vars(obj).values():
                    visit(value, depth + 1)

        visit(getattr(self, "model_", None), 0)
        visit(getattr(self, "fold_models_", None), 0)
        return self

    def predict(self, X: np.ndarray) -> pd.DataFrame:
        """Effect per offer (offer minus control): probability change or currency."""
        return self.model_.predict(self._check_fitted(X))

    def predict_se(self, X: np.ndarray, arms: list[str] | None = None) -> pd.DataFrame:
        """Jackknife standard error of each effect (of ``arms`` only, from their models
        alone, when given), from the cross-fitting fold models."""
        X = self._check_fitted(X)
        stack = np.stack([m.predict(X, arms=arms).to_numpy() for m in self.fold_models_])
        k = len(self.fold_models_)
        se = np.sqrt((k - 1) / k * ((stack - stack.mean(axis=0)) ** 2).sum(axis=0))
        return pd.DataFrame(se, columns=self.arms_ if arms is None else arms)

    def predict_se_of(self, X: np.ndarray, arm_per_row: np.ndarray) -> pd.DataFrame:
        """The standard error of one effect per row, ``arm_per_row`` (an arm name, anything
        else: none), in the column of that arm; NaN elsewhere. Rows of one arm are predicted
        by that arm's models only, so this costs a fraction of :meth:`predict_se`."""
        X = self._check_fitted(X)
        arm_per_row = np.asarray(arm_per_row, dtype=object)
        out = pd.DataFrame(np.nan, index=range(len(X)), columns=self.arms_)
        for arm in self.arms_:
            rows = np.flatnonzero(arm_per_row == arm)
            if len(rows):
                out.loc[rows, arm] = self.predict_se(X[rows], arms=[arm])[arm].to_numpy()
        return out

    def predict_shrunk(self, X: np.ndarray) -> pd.DataFrame:
        """Effects shrunk toward each arm's average effect (empirical Bayes).

        ``shrunk = ate + w * (effect - ate)`` with ``w = s2 / (s2 + se^2)``, where ``s2`` is the
        spread of the effects beyond their noise (variance of the predicted effects minus the
        mean squared standard error, at least 0). Where heterogeneity is weak relative to the
        noise, decisions fall back to the best average arm instead of chasing noise.
        """
        X = self._check_fitted(X)
        effects = self.predict(X)
        se = self.predict_se(X)
        out = {}
        for arm in self.arms_:
            e, s2_noise = effects[arm].to_numpy(), se[arm].to_numpy() ** 2
            signal = max(float(np.var(e) - np.mean(s2_noise)), 0.0)
            weight = signal / (signal + s2_noise + 1e-18)
            out[arm] = self.ate_[arm] + weight * (e - self.ate_[arm])
        return pd.DataFrame(out)


    def recommend(self, X: np.ndarray, z: float = 1.0) -> np.ndarray:
        """Arm per row from the policy tree (:mod:`uplift.effects.policy`): the best single arm
        unless a group of similar customers did measurably better with another one (by more
        than ``z`` standard errors)."""
        return self.policy_.predict(self._check_fitted(X), z=z)
