"""The scikit-learn estimator contract, for every uplift learner and both model classes:
get_params/set_params/clone, no validation or work in __init__, fit never changes its
arguments, one NotFittedError, and load restores everything save wrote."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from uplift.churn import ChurnModel
from uplift.effects import BoostSettings, UpliftEstimator, registry
from uplift.effects.model import EffectsModel
from uplift.errors import InputError, NotFittedError

FAST = BoostSettings(n_estimators=20, min_child_samples=20)
ARMS = ["a", "b"]


def campaign(n: int = 900, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    arm = rng.choice(["none", *ARMS], n)
    lift = np.where(arm == "a", 0.15 * (x1 > 0), np.where(arm == "b", 0.05, 0.0))
    y = (rng.random(n) < 0.3 + lift).astype(int)
    return pd.DataFrame({"customer_id": np.arange(n) + 1000, "x1": x1, "x2": x2,
                         "arm": arm, "p": 1 / 3, "y": y})


def churn_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    logins = rng.poisson(8, n).astype(float)
    return pd.DataFrame({
        "customer_id": np.arange(1, n + 1) + 50_000_000,
        "balance": rng.lognormal(8, 1, n).round(2), "logins_30d": logins,
        "churned": (rng.random(n) < 1 / (1 + np.exp(0.4 * logins - 2))).astype(int)})


@pytest.mark.parametrize("name", sorted(registry()))
def test_every_learner_keeps_the_contract(name):
    cls = registry()[name]
    learner = cls(binary=True, arms=ARMS, control="none", boost=FAST, seed=3)
    assert clone(learner).get_params() == learner.get_params()
    assert set(learner.get_params()) == {"binary", "arms", "control", "boost", "seed"}
    table = campaign()
    X = table[["x1", "x2"]].to_numpy()
    arms, y = table["arm"].to_numpy(), table["y"].to_numpy()
    before = (X.copy(), arms.copy(), y.copy())
    with pytest.raises(NotFittedError):
        learner.predict(X)
    shares = {a: np.full(len(y), 1 / 3) for a in ARMS}
    effects = learner.fit(X, arms, y, shares).predict(X)
    assert list(effects.columns) == ARMS and np.isfinite(effects.to_numpy()).all()
    for original, now in zip(before, (X, arms, y), strict=True):
        np.testing.assert_array_equal(original, now)
    # refitting a clone with the same seed gives the same effects
    again = clone(learner).fit(X, arms, y, shares).predict(X)
    np.testing.assert_allclose(again.to_numpy(), effects.to_numpy())


def test_a_binary_only_learner_refuses_at_fit_not_at_construction():
    forest = registry()["forest"](binary=False, arms=ARMS, control="none")
    table = campaign()
    with pytest.raises(InputError, match="binary outcomes only"):
        forest.fit(table[["x1", "x2"]].to_numpy(), table["arm"].to_numpy(),
                   table["y"].to_numpy().astype(float), {a: np.full(len(table), 0.3)
                                                          for a in ARMS})


def test_an_unknown_learner_is_refused_at_fit_not_at_construction():
    estimator = UpliftEstimator(learners=("nope",), control="none")   # no error yet
    table = campaign()
    with pytest.raises(InputError, match="unknown learner 'nope'"):
        estimator.fit(table[["x1", "x2"]].to_numpy(), table["y"].to_numpy(),
                      treatment=table["arm"].to_numpy())


def effects_model() -> EffectsModel:
    return EffectsModel(treatment="arm", control="none", outcome="y", propensity="p",
                        id_col="customer_id", goal="increase",
                        estimator=UpliftEstimator(learners=("t",), n_folds=2, boost=FAST,
                                                  random_state=4))


def churn_model() -> ChurnModel:
    return ChurnModel(n_estimators=40, tiers={"amber": 0.2, "red": 0.4}, random_state=2,
                      calibration_folds=2)


MODELS = {
    "effects": (effects_model, campaign, lambda m, t: m.fit(t, source="t"),
                lambda m, t: m.predict(t, source="t").drop(columns=["customer_id"])),
    "churn": (churn_model, churn_frame,
              lambda m, t: m.fit(t, label="churned", id_col="customer_id", source="t"),
              lambda m, t: pd.DataFrame({"p": m.predict_proba(t.drop(columns="churned"))})),
}


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_both_model_classes_keep_the_contract(kind, tmp_path):
    make, data, fit, predict = MODELS[kind]
    model = make()
    params = model.get_params(deep=False)
    assert clone(model).get_params(deep=False).keys() == params.keys()
    table = data()
    with pytest.raises(NotFittedError):
        predict(model, table)
    given = table.copy()
    fitted = fit(model, table)
    assert fitted is model
    pd.testing.assert_frame_equal(table, given)          # fit never changes its input
    if kind == "effects":                                # nor the estimator it was given
        assert not hasattr(params["estimator"], "model_")
        assert params["estimator"].learners == ("t",)
        assert model.estimator_ is not params["estimator"]
    model.save(tmp_path / "m")
    loaded = type(model).load(tmp_path / "m")
    assert _comparable(loaded.get_params(deep=False)) == _comparable(params)
    pd.testing.assert_frame_equal(predict(loaded, table), predict(model, table))


def _comparable(params: dict) -> dict:
    return {k: (v.get_params() if hasattr(v, "get_params") else v) for k, v in params.items()}


def test_nothing_is_validated_in_init():
    """Construction never raises, whatever the values: validation happens in fit."""
    ChurnModel(n_estimators=-1, validation_share=7.0, tiers={"x": 9})
    UpliftEstimator(learners=("nope",), n_folds=0, goal="sideways")
    EffectsModel(treatment="", control="", outcome="", outcome_type="weird")
    for cls in registry().values():
        cls(binary=False, arms=None, control="")
