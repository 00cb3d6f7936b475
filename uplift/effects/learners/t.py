"""T-learner: one outcome model per arm (causalml BaseT*)."""

from __future__ import annotations

from uplift.effects.learners import CausalLearner, register


@register
class TLearner(CausalLearner):
    name = "t"

    def _build(self):
        from causalml.inference import meta

        cls = meta.BaseTClassifier if self.binary else meta.BaseTRegressor
        return cls(learner=self._outcome_learner(), control_name=self.control)
