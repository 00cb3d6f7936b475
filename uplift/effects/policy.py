"""Best-offer policy learned as a shallow tree, with each leaf's advantage measured on outcomes.

Per-customer effect predictions are noisy where heterogeneity is weak; sending each customer
the offer with the highest predicted effect then follows noise and can do worse than sending
everyone the best single offer. ``OfferPolicy`` instead:

1. takes as default the arm (offer or control) with the best self-normalised IPW value on the
   training rows;
2. for every other arm, grows a shallow regression tree (``max_depth``, leaves of at least
   ``min_leaf_share`` of the rows) on the out-of-fold predicted advantage of that arm over the
   default: the tree groups customers whose predictions agree, which averages the noise out;
3. measures each leaf's advantage directly on the observed outcomes (difference of
   inverse-propensity-weighted means, with its standard error from the effective sample sizes);
4. sends a customer another arm only when that arm's leaf advantage exceeds ``z`` standard
   errors (``z = 0``: when it is positive).

It is a policy tree in the sense of Athey and Wager (2021), with the leaf values estimated from
the campaign's outcomes rather than from the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MIN_ARM_ROWS_IN_LEAF = 30


def weighted_mean_se(values: np.ndarray, weights: np.ndarray) -> tuple[float, float, int]:
    """Weighted mean, its standard error (effective sample size) and the row count."""
    if len(values) == 0:
        return float("nan"), float("inf"), 0
    total = weights.sum()
    mean = float((weights * values).sum() / total)
    n_eff = total**2 / (weights**2).sum()
    var = float((weights * (values - mean) ** 2).sum() / total)
    return mean, float(np.sqrt(var / max(n_eff - 1, 1))), len(values)


@dataclass
class OfferPolicy:
    """Default arm plus, per alternative arm, a tree whose leaves carry measured advantages."""

    max_depth: int = 3
    min_leaf_share: float = 0.05
    random_state: int = 0
    default_: str = ""
    trees_: dict = field(default_factory=dict)       # arm -> fitted DecisionTreeRegressor
    leaves_: dict = field(default_factory=dict)      # arm -> {leaf id: (advantage, se)}

    def fit(self, X: np.ndarray, good: np.ndarray, treatment: np.ndarray,
            propensity: np.ndarray, benefit: pd.DataFrame, control: str) -> OfferPolicy:
        """``good``: outcome on a higher-is-better scale; ``benefit``: out-of-fold predicted
        benefit per offer (columns = offers; control's benefit is 0)."""
        from sklearn.tree import DecisionTreeRegressor

        weights = 1.0 / propensity
        arms = [control, *benefit.columns]
        value = {a: weighted_mean_se(good[treatment == a], weights[treatment == a])[0]
                 for a in arms}
        self.default_ = max(arms, key=lambda a: (value[a], a == control))
        predicted = {a: (np.zeros(len(good)) if a == control else benefit[a].to_numpy())
                     for a in arms}
        min_leaf = max(int(self.min_leaf_share * len(good)), 2 * MIN_ARM_ROWS_IN_LEAF)
        for arm in arms:
            if arm == self.default_:
                continue
            tree = DecisionTreeRegressor(max_depth=self.max_depth, min_samples_leaf=min_leaf,
                                         random_state=self.random_state)
            tree.fit(X, predicted[arm] - predicted[self.default_])
            leaf_of = tree.apply(X)
            leaves = {}
            for leaf in np.unique(leaf_of):
                rows = leaf_of == leaf
                a = rows & (treatment == arm)
                d = rows & (treatment == self.default_)
                mean_a, se_a, n_a = weighted_mean_se(good[a], weights[a])
                mean_d, se_d, n_d = weighted_mean_se(good[d], weights[d])
                if min(n_a, n_d) < MIN_ARM_ROWS_IN_LEAF:
                    leaves[int(leaf)] = (float("-inf"), float("inf"))
                else:
                    leaves[int(leaf)] = (mean_a - mean_d, float(np.hypot(se_a, se_d)))
            self.trees_[arm], self.leaves_[arm] = tree, leaves
        return self

    def predict(self, X: np.ndarray, z: float = 0.0) -> np.ndarray:
        """The arm for each row (object array of arm names)."""
        choice = np.full(len(X), self.default_, dtype=object)
        best = np.zeros(len(X))
        for arm, tree in self.trees_.items():
            leaf_of = tree.apply(X)
            table = self.leaves_[arm]
            advantage = np.full(tree.tree_.node_count, -np.inf)
            se = np.full(tree.tree_.node_count, np.inf)
            for leaf, (adv, err) in table.items():
                advantage[leaf], se[leaf] = adv, err
            advantage, se = advantage[leaf_of], se[leaf_of]
            with np.errstate(invalid="ignore"):
                margin = np.where(np.isfinite(advantage), advantage - z * se, -np.inf)
            take = margin > best
            choice[take], best[take] = arm, margin[take]
        return choice
