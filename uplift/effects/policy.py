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

With money (:meth:`OfferPolicy.predict_net`: a value per outcome unit and a cost per offer) the
policy maximises expected net value and gives an offer only where it beats control. Per offer, a
shallow tree on the predicted advantage over control groups customers, and each leaf stores
every arm's measured (inverse-propensity weighted) mean outcome there. For a customer:

1. an offer is *eligible* when its net advantage over control, ``value * (mean_offer -
   mean_control) - cost``, exceeds ``z`` standard errors in the customer's leaf, or exceeds
   ``z`` standard errors on all rows while the leaf's own estimate is positive;
2. the customer gets the eligible offer with the best net advantage on all rows, unless another
   eligible offer did better in its leaf by ``z`` standard errors; no eligible offer: control.

Costs are applied per customer (a cost column is allowed); value and costs can change without
refitting.
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
    root_: dict = field(default_factory=dict)        # arm -> (mean good outcome, se), all rows
    net_trees_: dict = field(default_factory=dict)   # offer -> tree on advantage over control
    net_leaves_: dict = field(default_factory=dict)  # offer -> (means, ses): leaves x arms
    arms_: list = field(default_factory=list)        # [control, *offers]

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
        self._fit_net(X, good, treatment, weights, predicted, arms, min_leaf)
        return self

    def _fit_net(self, X: np.ndarray, good: np.ndarray, treatment: np.ndarray,
                 weights: np.ndarray, predicted: dict[str, np.ndarray], arms: list[str],
                 min_leaf: int) -> None:
        """Trees on each offer's predicted advantage over control, with every arm's measured
        mean outcome (and its standard error) per leaf: what :meth:`predict_net` needs."""
        from sklearn.tree import DecisionTreeRegressor

        self.arms_ = list(arms)
        by_arm = [treatment == a for a in arms]
        self.root_ = {a: weighted_mean_se(good[m], weights[m])[:2]
                      for a, m in zip(arms, by_arm, strict=True)}
        for arm in arms[1:]:
            tree = DecisionTreeRegressor(max_depth=self.max_depth, min_samples_leaf=min_leaf,
                                         random_state=self.random_state)
            tree.fit(X, predicted[arm])
            leaf_of = tree.apply(X)
            means = np.full((tree.tree_.node_count, len(arms)), np.nan)
            ses = np.full((tree.tree_.node_count, len(arms)), np.inf)
            for leaf in np.unique(leaf_of):
                rows = leaf_of == leaf
                for j, member in enumerate(by_arm):
                    m = rows & member
                    mean, se, n = weighted_mean_se(good[m], weights[m])
                    if n >= MIN_ARM_ROWS_IN_LEAF:
                        means[leaf, j], ses[leaf, j] = mean, se
            self.net_trees_[arm], self.net_leaves_[arm] = tree, (means, ses)

    def predict_net(self, X: np.ndarray, *, value: float, costs: np.ndarray, z: float = 1.0
                    ) -> np.ndarray:
        """The arm per row that maximises expected net value (see the module docstring).

        ``value``: currency per unit of the good outcome; ``costs``: rows x offers (currency,
        offers in ``arms_[1:]`` order); control costs nothing.
        """
        if not getattr(self, "net_trees_", None):      # fitted before money existed
            from uplift.errors import ModelError

            raise ModelError("this effects model's policy cannot weigh money (fitted by an "
                             "older uplift); refit it")
        n, offers = len(X), self.arms_[1:]
        cost_all = np.hstack([np.zeros((n, 1)), np.asarray(costs, dtype=float)])
        root_mean = np.array([self.root_[a][0] for a in self.arms_])
        root_se = np.array([self.root_[a][1] for a in self.arms_])
        leaf = {a: self.net_trees_[a].apply(X) for a in offers}
        # 1. which offers beat control: in the customer's leaf by z standard errors, or on all
        #    rows by z standard errors while the leaf's own estimate is not below control
        root_net = value * (root_mean[1:] - root_mean[0]) - cost_all[:, 1:]
        root_ok = root_net - z * value * np.hypot(root_se[1:], root_se[0]) > 0
        eligible = np.zeros((n, len(offers)), dtype=bool)
        for j, arm in enumerate(offers, start=1):
            means, ses = self.net_leaves_[arm]
            at = leaf[arm]
            net = value * (means[at, j] - means[at, 0]) - cost_all[:, j]
            se = value * np.hypot(ses[at, j], ses[at, 0])
            with np.errstate(invalid="ignore"):
                eligible[:, j - 1] = np.isfinite(net) & (
                    (net - z * se > 0) | (root_ok[:, j - 1] & (net > 0)))
        # 2. default: the eligible offer with the best overall net advantage, else control
        ranked = np.where(eligible, root_net, -np.inf)
        best = ranked.argmax(axis=1)
        choice = np.where(eligible.any(axis=1), best + 1, 0)
        # 3. another eligible offer replaces it where its leaf measured it clearly better
        rows, margin_best = np.arange(n), np.zeros(n)
        default = choice.copy()
        for j, arm in enumerate(offers, start=1):
            means, ses = self.net_leaves_[arm]
            for d in np.unique(default[default > 0]):
                if d == j:
                    continue
                mask = (default == d) & eligible[:, j - 1]
                at = leaf[arm][mask]
                adv = value * (means[at, j] - means[at, d]) - (
                    cost_all[mask, j] - cost_all[mask, d])
                se = value * np.hypot(ses[at, j], ses[at, d])
                with np.errstate(invalid="ignore"):
                    m = np.where(np.isfinite(adv) & np.isfinite(se), adv - z * se, -np.inf)
                idx = rows[mask]
                take = m > margin_best[idx]
                choice[idx[take]], margin_best[idx[take]] = j, m[take]
        return np.asarray(self.arms_, dtype=object)[choice]

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
