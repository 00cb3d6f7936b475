"""Model commands: churn dataset/fit/score and effects fit/predict/evaluate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from uplift.commands.shell import (
    CostOption,
    EncodingOption,
    ValueOption,
    echo,
    money_note,
    say,
)


def churn_dataset(
    data: Annotated[Path, typer.Option(help="Folder with customers and events tables.")],
    as_of: Annotated[list[str], typer.Option("--as-of", help="Snapshot date; repeat for "
                                             "several monthly snapshots.")],
    out: Annotated[Path, typer.Option(help="Output table (.parquet or .csv).")],
    horizon: Annotated[int, typer.Option(help="Label window (days).")] = 30,
    gap: Annotated[int, typer.Option(help="Gap before the label window (days).")] = 0,
    threads: Annotated[int, typer.Option(help="DuckDB threads.")] = 1,
) -> None:
    """Features + churn labels for one or more snapshots, stacked into one training table."""
    from uplift.tasks.data import churn_dataset_to_file, open_inputs

    table = churn_dataset_to_file(open_inputs(data), as_of, out, horizon=horizon, gap=gap,
                                  threads=threads, progress=say)
    say(f"wrote {out}: {len(table):,} rows, {len(as_of)} snapshot(s), churn rate "
        f"{table['churned'].mean():.3f}")


def churn_fit(
    table: Annotated[Path, typer.Option(help="Training table (.csv or .parquet).")],
    label: Annotated[str, typer.Option(help="Binary label column (1 = churned).")],
    out: Annotated[Path, typer.Option(help="Model folder to write.")],
    id_col: Annotated[str | None, typer.Option("--id", help="Customer id column.")] = None,
    time_col: Annotated[str | None, typer.Option(
        "--time-col", help="Snapshot date column: validate on the latest snapshot.")] = None,
    config: Annotated[Path | None, typer.Option(help="Settings YAML (tiers, threads).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    threads: Annotated[int | None, typer.Option(help="LightGBM threads.")] = None,
    encoding: EncodingOption = None,
) -> None:
    """Fit the churn model on any customer table with a label column."""
    from uplift.tasks.models import fit_churn

    model = fit_churn(table, label, out, id_col=id_col, time_col=time_col, config=config,
                      seed=seed, threads=threads, encoding=encoding)
    e, v = model.validation_["evaluation"], model.validation_
    typer.echo(f"churn model -> {out}: ROC-AUC {e['roc_auc']:.3f}, PR-AUC {e['pr_auc']:.3f}, "
               f"Brier {e['brier']:.4f}, ECE {e['ece']:.4f}, top-decile precision "
               f"{e['top_decile_precision']:.3f} ({v['scheme']}; {v['calibration_method']} "
               "calibration)")


def churn_score(
    model: Annotated[Path, typer.Option(help="Model folder from `uplift churn fit`.")],
    table: Annotated[Path, typer.Option(help="Customers to score (.csv or .parquet).")],
    out: Annotated[Path, typer.Option(help="Scores table to write.")],
    id_col: Annotated[str | None, typer.Option("--id", help="Id column (default: the "
                                               "model's).")] = None,
    encoding: EncodingOption = None,
) -> None:
    """Score customers: id, churn_risk, tier, reason_1..reason_3."""
    from uplift.tasks.models import score_churn

    scores, id_note = score_churn(model, table, out, id_col=id_col, encoding=encoding)
    say(id_note)
    counts = scores["tier"].value_counts()
    say(f"wrote {out}: {len(scores):,} customers; " + ", ".join(
        f"{t} {n:,}" for t, n in counts.items()))


def effects_fit(
    table: Annotated[Path, typer.Option(help="Campaign table: one row per customer.")],
    treatment: Annotated[str, typer.Option(help="Column naming the arm received.")],
    control: Annotated[str, typer.Option(help="Value of the control arm.")],
    outcome: Annotated[str, typer.Option(help="Outcome column (0/1 or a number).")],
    out: Annotated[Path, typer.Option(help="Model folder to write.")],
    features: Annotated[str | None, typer.Option(
        help="Comma-separated feature columns (default: all other usable columns).")] = None,
    propensity: Annotated[str | None, typer.Option(
        help="Column with the assigned arm's probability (estimated when absent).")] = None,
    id_col: Annotated[str | None, typer.Option("--id", help="Customer id column.")] = None,
    goal: Annotated[str, typer.Option(help="'increase' (visits, value) or 'decrease' "
                                      "(churn): which direction of the outcome is good.")
                    ] = "increase",
    outcome_type: Annotated[str, typer.Option(
        "--outcome-type", help="auto, binary (0/1 required, e.g. churn) or continuous.")
    ] = "auto",
    learners: Annotated[str, typer.Option(help="Candidate learners: t,s,x,forest.")] = "t,x",
    folds: Annotated[int, typer.Option(help="Cross-fitting folds.")] = 3,
    min_rows: Annotated[int, typer.Option("--min-rows", help="Minimum rows per arm.")] = 50,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    threads: Annotated[int, typer.Option(help="LightGBM threads.")] = 1,
    value: ValueOption = None,
    cost: CostOption = None,
    encoding: EncodingOption = None,
) -> None:
    """Fit per-offer effects with cross-fitted model selection; prints the comparison.

    With --value (and --cost) the model stores what outcomes are worth and offers cost:
    `effects predict` then adds gain_<arm> and recommends by expected net value."""
    from uplift.tasks.models import fit_effects

    model, frame = fit_effects(
        table, out, treatment=treatment, control=control, outcome=outcome,
        features=features.split(",") if features else None, propensity=propensity,
        id_col=id_col, goal=goal, outcome_type=outcome_type,
        learners=tuple(x.strip() for x in learners.split(",") if x), folds=folds,
        min_rows=min_rows, seed=seed, threads=threads, value=value, cost=cost,
        encoding=encoding)
    estimator = model.estimator_
    typer.echo(estimator.comparison_.round(4).to_string(index=False))
    typer.echo(f"chosen learner: {estimator.learner_} -> {out}")
    if model.money is None:
        switches = {arm: sum(1 for adv, se in leaves.values() if adv - se > 0)
                    for arm, leaves in estimator.policy_.leaves_.items()}
        typer.echo(f"policy tree: default {estimator.policy_.default_}; groups (leaves) that "
                   "measurably do better with another arm: " + (", ".join(
                       f"{a} {n}" for a, n in switches.items() if n) or "none"))
    else:
        import pandas as pd

        shares = pd.Series(model.recommend(frame, source=str(table))).value_counts(
            normalize=True)
        typer.echo("net-value policy on the training rows: " + ", ".join(
            f"{a} {s:.1%}" for a, s in shares.items()))
    typer.echo(money_note(model.money))


def effects_predict(
    model: Annotated[Path, typer.Option(help="Model folder from `uplift effects fit`.")],
    table: Annotated[Path, typer.Option(help="Customers with the model's feature columns.")],
    out: Annotated[Path, typer.Option(help="Output table: effect_<arm>, se_<arm>, "
                                      "recommended.")],
    evidence: Annotated[float, typer.Option(
        "--evidence", help="Standard errors by which a group must do better with another arm "
        "before `recommended` departs from the best single arm (with money: by which an "
        "offer's net gain must beat control).")] = 1.0,
    id_col: Annotated[str | None, typer.Option("--id", help="Id column to carry into the "
                                               "output (default: the fit's, else the column "
                                               "the fit found id-like, else 'row').")] = None,
    value: ValueOption = None,
    cost: CostOption = None,
    threads: Annotated[int, typer.Option(help="LightGBM threads for prediction (same "
                                         "results; faster on idle cores).")] = 1,
    encoding: EncodingOption = None,
) -> None:
    """Predict each offer's effect (and its standard error) per customer, and the recommended
    arm from the model's policy tree; with money (--value/--cost here or at fit) also
    gain_<arm>, the expected net gain in currency, and recommendations by net value."""
    from uplift.tasks.models import predict_effects

    predictions, fitted, money, id_note = predict_effects(
        model, table, out, evidence=evidence, id_col=id_col, value=value, cost=cost,
        threads=threads, encoding=encoding)
    shares = predictions["recommended"].value_counts(normalize=True)
    say(f"wrote {out}: {len(predictions):,} rows, arms {', '.join(fitted.arms)}; {id_note}")
    say("recommended: " + ", ".join(f"{a} {s:.1%}" for a, s in shares.items()))
    say(money_note(money))


def effects_evaluate(
    model: Annotated[Path, typer.Option(help="Model folder from `uplift effects fit`.")],
    table: Annotated[Path, typer.Option(help="Labelled campaign table (arm and outcome).")],
    boot: Annotated[int, typer.Option(help="Bootstrap resamples for the intervals.")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    evidence: Annotated[float, typer.Option(
        "--evidence", help="Evidence rule of the recommended policy (as in `effects "
        "predict`).")] = 1.0,
    value: ValueOption = None,
    cost: CostOption = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="JSON results to write.")
                        ] = None,
    encoding: EncodingOption = None,
) -> None:
    """Qini, AUUC and uplift@30% per offer vs control, with 95% bootstrap intervals; with
    money (--value/--cost here or at fit) the net value of the recommended policy against
    treating everyone with one offer and treating no one, with 95% intervals, and the
    incremental response rate and net incremental revenue of the recommended set."""
    from uplift.report.console import effects_metric_lines, net_value_lines
    from uplift.tasks.models import evaluate_effects

    results, money = evaluate_effects(model, table, boot=boot, seed=seed, evidence=evidence,
                                      value=value, cost=cost, json_out=json_out,
                                      encoding=encoding)
    for line in effects_metric_lines(results["metrics"]):
        echo(line)
    if money is None:
        echo(money_note(None) + "; pass --value/--cost for the net value of the recommended "
             "policy")
    else:
        for line in net_value_lines(results["net_value"], money.describe()):
            echo(line)
