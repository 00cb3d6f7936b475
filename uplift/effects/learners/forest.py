"""Uplift random forest (causalml, KL criterion): binary outcomes only."""

from __future__ import annotations

import numpy as np

from uplift.effects.learners import CausalLearner, register


@register
class ForestLearner(CausalLearner):
    name = "forest"
    binary_only = True

    def _build(self):
        from causalml.inference.tree import UpliftRandomForestClassifier

        return UpliftRandomForestClassifier(
            control_name=self.control, n_estimators=30, max_depth=6, min_samples_leaf=200,
            max_features=5, random_state=self.seed, n_jobs=1)

    def _fit(self, X, arms, y, p) -> None:
        self.model_.max_features = max(5, int(np.sqrt(X.shape[1])))
        self.model_.fit(X, arms, y)

    def _predict(self, X):
        return self.model_.predict(X), [str(c) for c in self.model_.classes_[1:]]
