"""Model tasks: fit, save and record the churn and effects models; score and predict tables."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from uplift import io
from uplift.errors import InputError


def save_fitted(model: Any, out: Path, command: str, arguments: Mapping[str, Any], *,
                seed: int | None, table: Path, rows: int) -> None:
    """Save a fitted model folder (replaced whole) and record the run in its manifest."""
    model.save(out)
    io.record_run(out, command, arguments, seed=seed, inputs=[table], outputs={"rows": rows})


def id_columns(name: str, note: str) -> list[str]:
    """Columns to pseudonymise in an output: customer ids, never generated row numbers."""
    return ["customer_id"] + ([name] if not note.startswith("no id column") else [])


def fit_churn(table: Path, label: str, out: Path, *, id_col: str | None = None,
              time_col: str | None = None, config: Path | None = None, seed: int = 0,
              threads: int | None = None, encoding: str | None = None):
    """Fit the churn model on a labelled customer table and save it in ``out``."""
    from uplift.churn import ChurnModel
    from uplift.config import load_settings

    settings = load_settings(config)
    io.ensure_not_input([out], [table])
    frame = io.read_table(table, encoding=encoding)
    model = ChurnModel(tiers=settings.churn.tiers, random_state=seed,
                       threads=threads or settings.runtime.threads)
    model.fit(frame, label=label, id_col=id_col, time_col=time_col, source=str(table))
    save_fitted(model, out, "churn fit", {"table": table, "label": label, "id": id_col,
                                          "time_col": time_col},
                seed=seed, table=table, rows=len(frame))
    return model


def score_churn(model: Path, table: Path, out: Path, *, id_col: str | None = None,
                encoding: str | None = None) -> tuple[pd.DataFrame, str]:
    """Score a table with a saved churn model; returns the scores and the id note."""
    from uplift.churn import ChurnModel

    io.ensure_not_input([out], [table, model])
    fitted = ChurnModel.load(model)
    frame = io.read_table(table, encoding=encoding)
    scores = fitted.score(frame, source=str(table), id_col=id_col)
    io.write_table(scores, out, ids=id_columns(scores.columns[0], fitted.id_note_))
    io.record_run(out, "churn score", {"model": model, "table": table}, seed=None,
                  inputs=[table], outputs={out.name: len(scores)})
    return scores, fitted.id_note_


def fit_effects(table: Path, out: Path, *, treatment: str, control: str, outcome: str,
                features: list[str] | None = None, propensity: str | None = None,
                id_col: str | None = None, goal: str = "increase", outcome_type: str = "auto",
                learners: tuple[str, ...] = ("t", "x"), folds: int = 3, min_rows: int = 50,
                seed: int = 0, threads: int = 1, value: float | None = None,
                cost: list[str] | None = None, encoding: str | None = None):
    """Fit per-offer effects on a randomised campaign table and save them in ``out``; returns
    the fitted model and the training frame."""
    from uplift.effects import BoostSettings, UpliftEstimator
    from uplift.effects.model import EffectsModel
    from uplift.effects.money import build_money

    io.ensure_not_input([out], [table])
    frame = io.read_table(table, encoding=encoding)
    arms = (sorted(set(frame[treatment].astype(str)) - {str(control)})
            if treatment in frame.columns else [])
    money = build_money(value, cost, arms, str(control))
    estimator = UpliftEstimator(learners=learners, n_folds=folds, min_rows_per_arm=min_rows,
                                random_state=seed, boost=BoostSettings(threads=threads))
    model = EffectsModel(treatment=treatment, control=control, outcome=outcome,
                         features=features, propensity=propensity, id_col=id_col,
                         estimator=estimator, goal=goal, outcome_type=outcome_type, money=money)
    model.fit(frame, source=str(table))
    save_fitted(model, out, "effects fit", {"table": table, "treatment": treatment,
                                            "control": control, "outcome": outcome,
                                            "learners": ",".join(learners), "folds": folds},
                seed=seed, table=table, rows=len(frame))
    return model, frame


def predict_effects(model: Path, table: Path, out: Path, *, evidence: float = 1.0,
                    id_col: str | None = None, value: float | None = None,
                    cost: list[str] | None = None, threads: int = 1,
                    encoding: str | None = None):
    """Effects, standard errors and the recommended arm per row, written to ``out``; returns
    (predictions, fitted model, money settings used, id note)."""
    from uplift.effects.model import EffectsModel
    from uplift.effects.money import build_money

    io.ensure_not_input([out], [table, model])
    if threads < 1:
        raise InputError(f"threads must be at least 1, not {threads}")
    fitted = EffectsModel.load(model)
    fitted.estimator_.set_threads(threads)
    money = fitted.money_for(build_money(value, cost, fitted.arms, str(fitted.control)))
    frame = io.read_table(table, encoding=encoding)
    predictions = fitted.predict(frame, source=str(table), money=money, id_col=id_col)
    predictions["recommended"] = fitted.recommend(frame, z=evidence, source=str(table),
                                                  money=money, id_col=id_col)
    _, _, id_note = fitted.ids(frame, id_col=id_col, source=str(table))
    io.write_table(predictions, out, ids=id_columns(predictions.columns[0], id_note))
    io.record_run(out, "effects predict", {"model": model, "table": table, "value": value,
                                           "cost": cost},
                  seed=None, inputs=[table], outputs={out.name: len(predictions)})
    return predictions, fitted, money, id_note


def evaluate_effects(model: Path, table: Path, *, boot: int = 200, seed: int = 0,
                     evidence: float = 1.0, value: float | None = None,
                     cost: list[str] | None = None, json_out: Path | None = None,
                     encoding: str | None = None) -> tuple[dict, Any]:
    """Qini, AUUC and uplift@30% per offer with bootstrap intervals on a labelled campaign
    table; with money, the net value of the recommended policy. Returns (results, money)."""
    import numpy as np

    from uplift.effects.metrics import bootstrap_arm_metrics
    from uplift.effects.model import EffectsModel
    from uplift.effects.money import build_money
    from uplift.effects.netvalue import net_value_report

    io.ensure_not_input([json_out], [table, model])
    fitted = EffectsModel.load(model)
    money = fitted.money_for(build_money(value, cost, fitted.arms, str(fitted.control)))
    frame = io.read_table(table, encoding=encoding)
    for col in (fitted.treatment, fitted.outcome):
        if col not in frame.columns:
            raise InputError(f"{table}: column {col!r} needed for evaluation is missing")
    inputs = frame.drop(columns=[c for c in (fitted.treatment, fitted.outcome,
                                             fitted.propensity) if c and c in frame.columns])
    effects = fitted.predict(inputs, source=str(table), with_se=False, money=money)
    arms = frame[fitted.treatment].astype(str).to_numpy()
    good = fitted.estimator_.good(frame[fitted.outcome].to_numpy(dtype=float))
    results: dict = {"metrics": {}}
    for arm in fitted.arms:
        mask = np.isin(arms, [arm, str(fitted.control)])
        if not (arms[mask] == arm).any():
            continue
        benefit = fitted.estimator_.benefit(effects[f"effect_{arm}"].to_numpy())
        results["metrics"][arm] = bootstrap_arm_metrics(
            good[mask], benefit[mask], (arms[mask] == arm).astype(int), n_boot=boot, seed=seed)
    if money is not None:
        results["net_value"] = net_value_report(fitted, frame, money, z=evidence,
                                                source=str(table))
    if json_out:
        io.write_json(results, json_out)
    return results, money
