"""S-learner: one outcome model with the arm as a feature (causalml BaseS*)."""

from __future__ import annotations

from uplift.effects.learners import CausalLearner, register


@register
class SLearner(CausalLearner):
    name = "s"

    def _build(self):
        from causalml.inference import meta

        cls = meta.BaseSClassifier if self.binary else meta.BaseSRegressor
        return cls(learner=self._outcome_learner(), control_name=self.control)
