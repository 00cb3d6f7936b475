"""X-learner: imputed effects regressed per arm and blended with the assignment probabilities
(causalml BaseX*); at prediction the training share of each arm is used."""

from __future__ import annotations

import numpy as np

from uplift.effects.learners import BoostSettings, CausalLearner, register


@register
class XLearner(CausalLearner):
    name = "x"

    def _build(self):
        from causalml.inference import meta

        if self.binary:
            boost = self.boost or BoostSettings()
            return meta.BaseXClassifier(outcome_learner=self._outcome_learner(),
                                        effect_learner=boost.regressor(self.seed),
                                        control_name=self.control)
        return meta.BaseXRegressor(learner=self._outcome_learner(), control_name=self.control)

    def _fit(self, X, arms, y, p) -> None:
        self.model_.fit(X=X, treatment=arms, y=y, p=p)

    def _predict(self, X):
        p = {a: np.full(len(X), v) for a, v in self.mean_p_.items()}
        return self.model_.predict(X=X, p=p), [str(g) for g in self.model_.t_groups]
