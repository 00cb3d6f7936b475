"""Effects estimator: recovers known effects, model selection, uncertainty, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uplift.cli import run
from uplift.effects import UpliftEstimator
from uplift.effects.metrics import arm_metrics


def campaign(n: int = 6000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    arm = rng.choice(["control", "a", "b"], n, p=[0.3, 0.35, 0.35])
    base = 0.3 + 0.1 * np.tanh(x2)
    effect_a = np.where(x1 > 0, -0.15, 0.0)          # helps half the customers
    effect_b = np.where(x1 < 0, -0.10, 0.05)         # helps the other half, harms the rest
    p = base + np.where(arm == "a", effect_a, 0) + np.where(arm == "b", effect_b, 0)
    churned = (rng.random(n) < p).astype(int)
    prop = np.select([arm == "control", arm == "a"], [0.3, 0.35], 0.35)
    return pd.DataFrame({"customer_id": range(n), "x1": x1, "x2": x2, "arm": arm,
                         "churned": churned, "propensity": prop,
                         "true_a": effect_a, "true_b": effect_b})


@pytest.fixture(scope="module")
def fitted():
    table = campaign()
    est = UpliftEstimator(learners=("t", "x"), goal="decrease", random_state=0)
    est.fit(table[["x1", "x2"]].to_numpy(), table["churned"].to_numpy(),
            treatment=table["arm"].to_numpy(), propensity=table["propensity"].to_numpy())
    return est, table


def test_effects_track_the_truth_and_arms_map_by_name(fitted):
    est, table = fitted
    effects = est.predict(table[["x1", "x2"]].to_numpy())
    assert list(effects.columns) == ["a", "b"]
    assert np.corrcoef(effects["a"], table["true_a"])[0, 1] > 0.4
    assert np.corrcoef(effects["b"], table["true_b"])[0, 1] > 0.4
    assert set(est.comparison_["learner"]) == {"t", "x"}
    assert est.learner_ in {"t", "x"}


def test_standard_errors_are_positive_and_shrinkage_pulls_toward_the_average(fitted):
    est, table = fitted
    X = table[["x1", "x2"]].to_numpy()
    se = est.predict_se(X)
    assert (se.to_numpy() > 0).all()
    raw, shrunk = est.predict(X), est.predict_shrunk(X)
    for arm in ("a", "b"):
        assert (shrunk[arm] - est.ate_[arm]).abs().mean() <= (raw[arm] - est.ate_[arm]).abs().mean()


def test_evidence_policy_follows_strong_differences_and_defaults_to_the_best_arm(fitted):
    est, table = fitted
    X = table[["x1", "x2"]].to_numpy()
    plain = est.recommend(X, z=0.0)
    careful = est.recommend(X, z=2.0)
    default = "a"                               # best on average: -0.075 vs -0.025 churn
    assert max(est.ate_, key=lambda k: -est.ate_[k]) == default
    # where a clearly helps (x1 > 0) both keep it; b is taken where it helps (x1 < 0)
    positive = table["x1"].to_numpy() > 0.5
    assert (careful[positive] == "a").mean() > 0.9
    negative = table["x1"].to_numpy() < -0.5
    assert (plain[negative] == "b").mean() > 0.8
    assert (careful[negative] == "b").mean() > 0.8    # a strong, well-measured difference
    # asking for more evidence never moves more customers away from the default
    assert (careful != default).sum() <= (est.recommend(X, z=1.0) != default).sum() <= \
        (plain != default).sum()
    truth = np.column_stack([np.zeros(len(table)), table["true_a"], table["true_b"]])
    arms = np.array(["control", "a", "b"])
    index = {a: i for i, a in enumerate(arms)}
    true_gain = lambda c: truth[np.arange(len(table)), [index[x] for x in c]].mean()  # noqa: E731
    # lower churn than sending everyone the best average offer
    assert true_gain(careful) < true_gain(np.full(len(table), default, dtype=object)) + 1e-9


def test_metrics_prefer_a_good_ranking():
    rng = np.random.default_rng(1)
    n = 4000
    treated = rng.integers(0, 2, n)
    benefit = rng.normal(size=n)
    y = (rng.random(n) < 0.3 + 0.2 * treated * (benefit > 0)).astype(int)
    good, bad = arm_metrics(y, benefit, treated), arm_metrics(y, -benefit, treated)
    assert good["qini"] > 0 > bad["qini"]


@pytest.mark.parametrize("mutate, extra, message", [
    (lambda t: t, ["--control", "nobody"], "control value 'nobody' not found"),
    (lambda t: t[~((t["arm"] == "b") & (t.index > 100))], [], "fewer than 50 rows"),
    (lambda t: t.assign(churned=t["churned"] * 2.5), ["--outcome-type", "binary"],
     "outcome must be 0/1"),
    (lambda t: t.assign(propensity=1.5), [], "propensities must be in (0, 1]"),
])
def test_bad_input_exit_2(tmp_path, capsys, mutate, extra, message):
    mutate(campaign(1500)).drop(columns=["true_a", "true_b"]).to_csv(tmp_path / "c.csv",
                                                                     index=False)
    argv = ["effects", "fit", "--table", str(tmp_path / "c.csv"), "--treatment", "arm",
            "--control", "control", "--outcome", "churned", "--propensity", "propensity",
            "--id", "customer_id", "--out", str(tmp_path / "m")]
    for flag, value in zip(extra[::2], extra[1::2], strict=True):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    assert run(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_cli_fit_predict_evaluate(tmp_path, capsys):
    table = campaign(3000).drop(columns=["true_a", "true_b"])
    table.to_csv(tmp_path / "c.csv", index=False)
    assert run(["effects", "fit", "--table", str(tmp_path / "c.csv"), "--treatment", "arm",
                "--control", "control", "--outcome", "churned", "--goal", "decrease",
                "--propensity", "propensity", "--id", "customer_id", "--out",
                str(tmp_path / "m")]) == 0
    printed = capsys.readouterr().out
    assert "chosen learner" in printed and "policy tree: default a" in printed
    table.drop(columns=["arm", "churned", "propensity"]).to_csv(tmp_path / "x.csv", index=False)
    assert run(["--quiet", "effects", "predict", "--model", str(tmp_path / "m"), "--table",
                str(tmp_path / "x.csv"), "--out", str(tmp_path / "p.csv")]) == 0
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert {"effect_a", "effect_b", "se_a", "se_b", "recommended"} <= set(predictions.columns)
    left = table["x1"].to_numpy() < -0.5            # b helps there, a does not
    assert (predictions["recommended"].to_numpy()[left] == "b").mean() > 0.5
    assert set(predictions["recommended"]) <= {"a", "b", "control"}
    assert run(["effects", "evaluate", "--model", str(tmp_path / "m"), "--table",
                str(tmp_path / "c.csv"), "--boot", "30", "--seed", "2", "--json",
                str(tmp_path / "ev.json")]) == 0
    capsys.readouterr()
    import json

    metrics = json.loads((tmp_path / "ev.json").read_text())["metrics"]
    retained = 1 - table["churned"].to_numpy()
    for arm in ("a", "b"):
        rows = table["arm"].isin([arm, "control"]).to_numpy()
        benefit = -predictions[f"effect_{arm}"].to_numpy()[rows]   # lower churn is better
        treated = (table["arm"].to_numpy()[rows] == arm)
        y = retained[rows]
        # uplift@30% by hand: among the 30% with the largest predicted benefit, retention of
        # the offer's rows minus retention of control rows
        top = np.argsort(-benefit, kind="stable")[: int(0.3 * len(y))]
        by_hand = y[top][treated[top]].mean() - y[top][~treated[top]].mean()
        value, low, high = metrics[arm]["uplift_at_30"]
        assert value == pytest.approx(by_hand, abs=0.01), arm
        assert low <= value <= high
        # each offer helps a half of the customers: ranking by the model finds them
        qini, qini_low, _ = metrics[arm]["qini"]
        assert qini > 0 and qini_low > 0, arm
    assert run(["simulate-policy", "--log", str(tmp_path / "c.csv"), "--arm", "arm",
                "--control", "control", "--outcome", "churned", "--propensity", "propensity",
                "--goal", "decrease", "--features", "x1,x2", "--policy", "all:a", "--policy",
                f"tree:{tmp_path / 'm'}", "--json", str(tmp_path / "sim.json")]) == 0
    import json

    simulated = json.loads((tmp_path / "sim.json").read_text())
    values = simulated["policies"]
    # the tree was fitted on this very log: said loudly, and recorded in the results
    assert "WARNING: policy 'tree:" in capsys.readouterr().err
    assert len(simulated["warnings"]) == 1 and "trained on this log" in simulated["warnings"][0]
    other = campaign(3000, seed=7).drop(columns=["true_a", "true_b"])
    other.to_csv(tmp_path / "other.csv", index=False)
    assert run(["simulate-policy", "--log", str(tmp_path / "other.csv"), "--arm", "arm",
                "--control", "control", "--outcome", "churned", "--propensity", "propensity",
                "--goal", "decrease", "--features", "x1,x2", "--policy",
                f"model:{tmp_path / 'm'}"]) == 0
    assert "WARNING" not in capsys.readouterr().err         # another campaign: no warning
    tree = values[f"tree:{tmp_path / 'm'}"]["dr"]["value"]
    assert tree <= values["all:a"]["dr"]["value"] + 0.005   # lower churn than a-to-all
    (tmp_path / "m" / "estimator.pkl").write_bytes(b"tampered")
    assert run(["effects", "predict", "--model", str(tmp_path / "m"), "--table",
                str(tmp_path / "x.csv"), "--out", str(tmp_path / "p2.csv")]) == 2
    assert "refusing to load" in capsys.readouterr().err


def test_prediction_threads_change_nothing_but_speed(fitted):
    from lightgbm import LGBMModel

    est, table = fitted
    X = table[["x1", "x2"]].to_numpy()[:500]
    one_effects, one_se = est.predict(X), est.predict_se(X)
    est.set_threads(2)
    found = []

    def collect(obj, depth=0):
        if isinstance(obj, LGBMModel):
            found.append(obj.n_jobs)
        elif isinstance(obj, dict):
            for v in obj.values():
                collect(v, depth + 1)
        elif isinstance(obj, list):
            for v in obj:
                collect(v, depth + 1)
        elif hasattr(obj, "__dict__") and depth < 4:
            for v in vars(obj).values():
                collect(v, depth + 1)

    collect(est.model_)
    assert found and set(found) == {2}
    pd.testing.assert_frame_equal(est.predict(X), one_effects)
    pd.testing.assert_frame_equal(est.predict_se(X), one_se)
    est.set_threads(1)


def test_cli_fit_min_rows_seed_threads_and_predict_evidence_id(tmp_path, capsys):
    """effects fit --min-rows refuses an arm with fewer rows (count by hand), --seed repeats,
    --threads changes no number; predict --evidence moves recommendations toward the best
    single arm and --id carries the named column; evaluate reads --encoding."""
    table = campaign(1500, seed=3).drop(columns=["true_a", "true_b"])
    table = table.rename(columns={"customer_id": "client"}).assign(
        branch=lambda t: "b" + (t["client"] % 7).astype(str))
    table.to_csv(tmp_path / "c.csv", index=False)
    smallest = int(table["arm"].value_counts().min())
    base = ["effects", "fit", "--table", str(tmp_path / "c.csv"), "--treatment", "arm",
            "--control", "control", "--outcome", "churned", "--goal", "decrease",
            "--propensity", "propensity", "--id", "client", "--features", "x1,x2",
            "--learners", "t", "--folds", "2"]
    assert run([*base, "--min-rows", str(smallest + 1), "--out", str(tmp_path / "no")]) == 2
    assert f"fewer than {smallest + 1} rows" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()
    predicted = {}
    for name, extra in {"one": ["--threads", "1"], "again": ["--threads", "1"],
                        "two": ["--threads", "2"]}.items():
        assert run(["--quiet", *base, "--min-rows", str(smallest), "--seed", "4", *extra,
                    "--out", str(tmp_path / name)]) == 0
        assert run(["--quiet", "effects", "predict", "--model", str(tmp_path / name),
                    "--table", str(tmp_path / "c.csv"), "--id", "branch", "--threads", "2",
                    "--evidence", "0", "--out", str(tmp_path / f"{name}.csv")]) == 0
        predicted[name] = pd.read_csv(tmp_path / f"{name}.csv")
    capsys.readouterr()
    pd.testing.assert_frame_equal(predicted["one"], predicted["again"])
    np.testing.assert_allclose(predicted["two"]["effect_a"], predicted["one"]["effect_a"],
                               atol=1e-9)
    assert predicted["one"].columns[0] == "branch"
    assert list(predicted["one"]["branch"]) == list(table["branch"])
    # with an evidence bar no group can clear, everyone gets the single best arm
    assert run(["--quiet", "effects", "predict", "--model", str(tmp_path / "one"), "--table",
                str(tmp_path / "c.csv"), "--evidence", "1000", "--out",
                str(tmp_path / "strict.csv")]) == 0
    strict = pd.read_csv(tmp_path / "strict.csv")["recommended"]
    assert strict.nunique() == 1
    assert predicted["one"]["recommended"].nunique() > 1
    assert run(["--quiet", "effects", "evaluate", "--model", str(tmp_path / "one"), "--table",
                str(tmp_path / "c.csv"), "--boot", "20", "--encoding", "utf-8", "--evidence",
                "0.5", "--value", "100", "--cost", "a=2,b=3", "--json",
                str(tmp_path / "ev.json")]) == 0
    import json

    report = json.loads((tmp_path / "ev.json").read_text())
    assert set(report["metrics"]) == {"a", "b"} and "net_value" in report


@pytest.mark.parametrize("learner", ["t", "x", "s", "forest"])
@pytest.mark.parametrize("n_arms", [1, 2, 4])
def test_the_standard_error_of_each_rows_own_arm_equals_the_full_one(learner, n_arms):
    """`predict_se_of` (the plan's selected customers: one offer each) gives exactly the
    standard errors `predict_se` gives for that offer, and NaN for the others; a learner asked
    for some arms predicts exactly those columns of the full prediction."""
    rng = np.random.default_rng(n_arms)
    n = 1500
    X = rng.normal(size=(n, 3))
    names = [f"offer {k}" for k in range(n_arms)]
    arm = rng.choice(["control", *names], n)
    churned = (rng.random(n) < 0.3 + 0.1 * (X[:, 0] > 0) * (arm != "control")).astype(int)
    est = UpliftEstimator(learners=(learner,), goal="decrease", random_state=0)
    est.fit(X, churned, treatment=arm)
    wanted = rng.choice([*names, "none"], n)
    one = est.predict_se_of(X, wanted)
    full = est.predict_se(X)
    assert list(one.columns) == names
    for name in names:
        rows = wanted == name
        np.testing.assert_array_equal(one.loc[rows, name].to_numpy(), full.loc[rows, name])
        assert one.loc[~rows, name].isna().all()
        fold = est.fold_models_[0]
        pd.testing.assert_frame_equal(fold.predict(X[:200], arms=[name]),
                                      fold.predict(X[:200])[[name]])
