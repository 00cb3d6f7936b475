"""The planner's chain: data -> features -> churn risk -> offer effects -> gains -> plan.

``train`` fits the models a plan needs and stores them in a model folder:

* ``churn/``: churn model on monthly snapshots before the planning date (out-of-time
  validation on the latest), features as of each snapshot, labels from closures;
* ``effects_churn/`` and ``effects_value/``: offer effects on churn (goal: decrease) and on
  ``value_after`` (goal: increase), learned from the campaign log with features as of each
  customer's assignment date;
* ``backtest.parquet``: the campaign log with each customer's out-of-fold effects, on which
  ``plan`` replays its rule to measure how much of its predicted gain came true
  (``uplift.evaluate.backtest``).

A model folder records a fingerprint of its inputs (data file hashes, seed, settings, the id
of the pseudonym key, whether encryption is on — not the master key's id, so a cache re-wrapped
by ``uplift keys rotate`` stays valid); ``plan``
reuses it when the fingerprint matches and retrains otherwise, so a second run with the same
inputs and seed reuses the models and gives the identical plan.

``plan`` scores every customer open at the planning date, turns effects into gains
(``uplift.effects.gain``) with the campaign's costs, and allocates under the budget.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from uplift import __version__, io
from uplift.campaign import CampaignSpec
from uplift.config import Settings
from uplift.errors import InputError, ModelError, SchemaError
from uplift.features import FeatureInputs, build_features, write_features
from uplift.memory import release_memory
from uplift.security import protect_ids
from uplift.security.keys import protection_state

DEMO_CUSTOMERS = 50_000
DEMO_SEED = 0
SNAPSHOTS = 3
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def demo_data(cache: Path, progress: Progress = _quiet) -> Path:
    """The embedded demo bank (simulated, fixed seed), built on first use under ``cache``."""
    from uplift.tasks.data import simulate_to_folder

    folder = cache / f"demo-bank-{DEMO_CUSTOMERS}-seed{DEMO_SEED}-v{__version__}-triggers"
    if (folder / "manifest.json").exists():
        return folder
    progress(f"building the demo bank ({DEMO_CUSTOMERS:,} customers, seed {DEMO_SEED}) in "
             f"{folder}")
    simulate_to_folder(folder, DEMO_CUSTOMERS, 12, seed=DEMO_SEED)
    return folder


def planning_date(data: Path, inputs: FeatureInputs, as_of: str | None) -> str:
    """``as_of`` if given; else the day after the last event (the data's 'today'), in UTC: the
    events' times read as the features read them (an offset converted, text without one taken
    as UTC)."""
    if as_of:
        return str(pd.Timestamp(as_of).date())
    from uplift.features.build import duckdb_connection, events_view

    con = duckdb_connection()
    try:
        events_view(con, inputs)
        last = con.execute("SELECT max(ts) FROM events_src").fetchall()[0][0]
    finally:
        con.close()
    if last is None:
        raise InputError(f"{inputs.events}: no events")
    return str((pd.Timestamp(last).normalize() + pd.Timedelta(days=1)).date())


def fingerprint(inputs: FeatureInputs, as_of: str, settings: Settings, seed: int) -> str:
    """Identity of a training run: input file hashes, planning date, settings, seed, version."""
    files = [inputs.customers, inputs.events, inputs.campaign_log]
    from uplift.features import FEATURES

    keys = protection_state()
    payload = {"files": {str(p.name): io.file_sha256(p) for p in files if p is not None},
               "as_of": as_of, "settings": settings.model_dump(), "seed": seed,
               "version": __version__, "features": [f.name for f in FEATURES],
               "parts": ["churn", "effects_churn", "effects_value", "backtest with baseline",
                         "signed models v2", "text ids", "learner registry v3",
                         "effect groups v3"],
               "pseudonym_key": keys["pseudonym_key"],
               "encrypted": keys["master_key"] is not None}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


MODEL_MARKER = "fingerprint.json"


@dataclass
class Models:
    churn: object          # ChurnModel
    effects_churn: object  # EffectsModel
    effects_value: object | None
    folder: Path


def campaign_table(inputs: FeatureInputs, threads: int = 1, progress: Progress = _quiet,
                   *, sample: int | None = None, seed: int = 0) -> pd.DataFrame:
    """The campaign log joined with each customer's features as of their assignment date.
    In a bank of more than ``sample`` customers the log is cut to a random ``sample`` rows,
    stratified by arm and segment with the same share in each (so every arm keeps its
    assignment probability), and the features are computed for those customers only (their
    RFM quintiles then rank them among themselves)."""
    if inputs.campaign_log is None:
        raise InputError(f"{inputs.customers.parent}: no campaign_log table; effects need a "
                         "past randomised campaign")
    log = inputs.read("campaign_log")
    if sample is not None and len(inputs.read("customers")) > sample:
        if len(log) > sample:
            strata = [log["arm"].astype(str)]
            if "segment" in log.columns:
                strata.append(log["segment"].astype(str))
            whole = len(log)
            log = log.groupby(strata, group_keys=False, observed=True).sample(
                frac=sample / whole, random_state=seed).sort_index()
            progress(f"  effect models trained on a random sample of {len(log):,} of "
                     f"{whole:,} campaign rows (stratified by arm; settings "
                     "training.sample_customers)")
        inputs = inputs.restricted_to(log["customer_id"])
    parts = []
    for day, rows in log.groupby(log["assigned_at"].dt.normalize()):
        progress(f"  features as of campaign date {day.date()} ({len(rows):,} customers)")
        features = build_features(inputs, str(day.date()), threads=threads)
        parts.append(rows.merge(features.drop(columns=["as_of", "open_at_as_of"]),
                                on="customer_id"))
    return pd.concat(parts, ignore_index=True)


def train(inputs: FeatureInputs, as_of: str, folder: Path, settings: Settings, *, seed: int,
          progress: Progress = _quiet, stamp: dict | None = None) -> Models:
    """Fit churn and effects models and save them in ``folder``, replacing it as a whole (a
    failed run leaves an existing folder untouched); ``stamp`` (the run's fingerprint) is
    written as ``fingerprint.json`` with them."""
    from uplift.churn import ChurnModel
    from uplift.churn.dataset import snapshot_table
    from uplift.effects import BoostSettings, UpliftEstimator
    from uplift.effects.model import EffectsModel
    from uplift.evaluate.backtest import backtest_table

    threads = settings.runtime.threads
    horizon = settings.churn.horizon_days
    last_label_end = pd.Timestamp(as_of) - pd.Timedelta(days=horizon + settings.churn.gap_days)
    snapshots = [str((last_label_end.normalize() - pd.DateOffset(months=k)).date())
                 for k in range(SNAPSHOTS)]
    progress(f"training churn model on snapshots {', '.join(sorted(snapshots))}")
    sample = training_sample(inputs, settings, seed, progress)
    table = snapshot_table(sample, snapshots, horizon_days=horizon,
                           gap_days=settings.churn.gap_days, threads=threads, progress=progress)
    churn = ChurnModel(tiers=settings.churn.tiers, threads=threads, random_state=seed)
    try:
        churn.fit(table, label="churned", id_col="customer_id", time_col="as_of",
                  source="churn training snapshots")
    except InputError as exc:
        raise InputError(f"cannot train the churn model from {inputs.customers} and "
                         f"{inputs.events}: {exc}") from exc
    e = churn.validation_["evaluation"]
    progress(f"  churn model: ROC-AUC {e['roc_auc']:.3f}, ECE {e['ece']:.4f}")
    progress("training offer-effect models on the campaign log")
    campaign = campaign_table(inputs, threads, progress,
                              sample=settings.training.sample_customers, seed=seed)
    drop = ["campaign_id", "assigned_at"]
    effect_models = {}
    for name, outcome, goal, other, kind in (
            ("effects_churn", "churned", "decrease", "value_after", "binary"),
            ("effects_value", "value_after", "increase", "churned", "continuous")):
        estimator = UpliftEstimator(learners=("t", "x"), random_state=seed,
                                    boost=BoostSettings(threads=threads))
        model = EffectsModel(treatment="arm", control="control", outcome=outcome,
                             propensity="propensity", id_col="customer_id",
                             estimator=estimator, goal=goal, outcome_type=kind)
        try:
            progress(f"  effects on {outcome}: cross-fitting learners "
                     f"{', '.join(estimator.learners)}")
            model.fit(campaign.drop(columns=drop + [other]), source=f"campaign log ({outcome})",
                      progress=progress)
        except InputError as exc:
            raise InputError(f"cannot learn offer effects from {inputs.campaign_log}: "
                             f"{exc}") from exc
        effect_models[name] = model
        progress(f"  effects on {outcome}: learner {model.estimator_.learner_}")
    customers = read_customers(inputs)
    logged = protect_ids(campaign, source=str(inputs.campaign_log))
    # the logged customers' churn risk, tier and top reason at assignment (reasons above
    # green, as in a plan's scores): the risk is the backtest's baseline, tier and reason the
    # effect groups of the offers without per-customer signal
    logged_features = logged[list(churn.spec_.features)]
    risk = churn.predict_proba(logged_features, source="campaign log")
    reasons_from, churn.reasons_from = churn.reasons_from, min(churn.tiers_.values(),
                                                               default=0.0)
    at_assignment = churn.score(logged[["customer_id", *churn.spec_.features]],
                                source="campaign log", id_col="customer_id", top_k=1)
    churn.reasons_from = reasons_from
    backtest = backtest_table(logged, customers, effect_models["effects_churn"],
                              effect_models["effects_value"], baseline_risk=risk,
                              effect_groups=effect_groups_of(at_assignment))
    from uplift.effects.calibration import EVIDENCE_FILE, all_evidence, describe, evidence_rows
    from uplift.report.console import wrapped

    evidence = all_evidence(backtest, value=settings.customer_value)
    progress("held-out calibration test of each offer's predicted effects (BLP slope):")
    for line in describe(evidence):
        for part in wrapped(line.strip()):
            progress(part)
    with io.replaced_directory(folder, marker=MODEL_MARKER) as stage:
        io.write_json(evidence_rows(evidence), stage / EVIDENCE_FILE)
        churn.save(stage / "churn")
        for name, model in effect_models.items():
            model.save(stage / name)
        io.write_table(backtest, stage / "backtest.parquet")
        io.write_json(stamp or {}, stage / MODEL_MARKER)
    return Models(churn, effect_models["effects_churn"], effect_models["effects_value"],
                  folder)


def training_sample(inputs: FeatureInputs, settings: Settings, seed: int,
                    progress: Progress = _quiet) -> FeatureInputs:
    """The inputs restricted to a random sample of ``settings.training.sample_customers``
    customers, stratified by segment (when the table has one), when the bank is larger; the
    inputs themselves otherwise. The same customers at every snapshot."""
    limit = settings.training.sample_customers
    customers = inputs.read("customers")
    if limit is None or len(customers) <= limit:
        return inputs
    share = limit / len(customers)
    if "segment" in customers.columns:
        sample = customers.groupby(customers["segment"].astype(str), group_keys=False,
                                   observed=True).sample(frac=share, random_state=seed)
    else:
        sample = customers.sample(n=limit, random_state=seed)
    progress(f"  churn model trained on a random sample of {len(sample):,} of "
             f"{len(customers):,} customers (stratified by segment; settings "
             "training.sample_customers)")
    return inputs.restricted_to(sample["customer_id"])


def trained_fingerprint(folder: Path) -> str | None:
    """The fingerprint a model folder was trained for (None: absent or damaged stamp)."""
    stamp = folder / MODEL_MARKER
    try:
        return json.loads(stamp.read_text())["fingerprint"] if stamp.exists() else None
    except (ValueError, KeyError, TypeError):
        return None


def ensure_models(inputs: FeatureInputs, as_of: str, folder: Path, settings: Settings, *,
                  seed: int, data: Path, key: str, progress: Progress = _quiet) -> bool:
    """Train into ``folder`` unless it already holds models for this exact run (``key``, its
    :func:`fingerprint`); concurrent callers wait on a lock and then reuse. Returns whether it
    trained."""
    with io.directory_lock(folder):
        if trained_fingerprint(folder) == key:
            return False
        train(inputs, as_of, folder, settings, seed=seed, progress=progress,
              stamp={"fingerprint": key, "data": str(data), "as_of": as_of, "seed": seed})
        return True


def load_models(folder: Path) -> Models:
    from uplift.churn import ChurnModel
    from uplift.effects.model import EffectsModel

    if not (folder / "churn").is_dir() or not (folder / "effects_churn").is_dir():
        raise ModelError(f"{folder}: not a trained model folder (run `uplift train`)")
    value = folder / "effects_value"
    return Models(ChurnModel.load(folder / "churn"), EffectsModel.load(folder / "effects_churn"),
                  EffectsModel.load(value) if value.is_dir() else None, folder)


def check_consent_column(customers: pd.DataFrame, spec: CampaignSpec, *, source: str) -> None:
    """A spec that requires consent needs a consent column: refuse (never assume consent)."""
    from uplift.allocate.rules import CONSENT_MISSING

    if spec.require_consent and "marketing_consent" not in customers.columns:
        raise SchemaError(source, [CONSENT_MISSING])


def read_customers(inputs: FeatureInputs) -> pd.DataFrame:
    """The customers table, checked against its contract, ids pseudonymised when keyed."""
    customers = inputs.read("customers")
    return protect_ids(customers, source=str(inputs.customers))


def score_customers(inputs: FeatureInputs, as_of: str, models: Models, spec: CampaignSpec,
                    settings: Settings, *, features: pd.DataFrame | None = None,
                    progress: Progress = _quiet) -> pd.DataFrame:
    """One row per customer open at ``as_of``: risk, tier, reasons, gains and costs per offer."""
    return scoring(inputs, as_of, models, spec, settings, features=features,
                   progress=progress).table


@dataclass
class Scoring:
    """Scores with what it took to make them: the open customers' features and customers-table
    rows (same order as ``table``), the effect groups' means, the calibration evidence and the raw
    predictions (:func:`predict_rows`)."""

    table: pd.DataFrame
    current: pd.DataFrame
    info: pd.DataFrame
    means: dict
    evidence: dict | None
    predicted: pd.DataFrame


def scoring(inputs: FeatureInputs, as_of: str, models: Models, spec: CampaignSpec,
            settings: Settings, *, features: pd.DataFrame | None = None, with_se: bool = True,
            progress: Progress = _quiet) -> Scoring:
    """:func:`score_customers` with its parts; ``with_se=False`` leaves the effects' standard
    errors and the churn reasons out (``gain_lo_*`` then equal the gains, reasons are empty;
    :func:`with_uncertainty` adds both for the customers a plan selected)."""
    customers = read_customers(inputs)
    check_consent_column(customers, spec, source=str(inputs.customers))
    if features is None:
        progress(f"computing features as of {as_of}")
        features = build_features(inputs, as_of, threads=settings.runtime.threads)
    features = protect_ids(features, source="features")
    current = features[features["open_at_as_of"] == 1].drop(columns=["open_at_as_of", "as_of"])
    current = current.reset_index(drop=True)
    progress(f"scoring {len(current):,} open customers")
    info = customers.set_index("customer_id").reindex(current["customer_id"]).reset_index()
    predicted = pd.concat([predict_rows(current.iloc[rows], models, spec, with_se=with_se,
                                        reasons=with_se) for rows in chunks(len(current))],
                          ignore_index=True)
    evidence = offer_evidence(models, settings)
    means = effect_means(evidence, predicted, info, spec)
    table = finish_rows(predicted, info, models, spec, settings, means, evidence)
    return Scoring(table, current, info, means, evidence, predicted)


def with_uncertainty(allocation, scored: Scoring, models: Models, spec: CampaignSpec,
                     settings: Settings):
    """The allocation's plan with the expected-gain lower bounds (``expected_gain_low``) and
    churn reasons of its customers, computed now (row by row, so equal to scoring everyone
    with them; the standard error of the chosen offer's effects only); returns (allocation,
    scores without ``gain_lo_*`` columns, which were not computed for everyone, and with
    reasons for the selected customers only). The plan's choices depend on neither (no
    ``--confident``)."""
    from uplift.allocate.plan import ScoreTable
    from uplift.allocate.result import plan_frame

    plan = allocation.plan
    choice = np.asarray(allocation.solution.choice)
    rows = np.flatnonzero(choice >= 0)
    offer_of_row = np.asarray(spec.offer_names, dtype=object)[choice[rows]]
    predicted = selected_rows(scored, rows, offer_of_row, models)
    chosen = finish_rows(predicted, scored.info.iloc[rows].reset_index(drop=True), models,
                         spec, settings, scored.means, scored.evidence)
    table = scored.table.copy()
    for column in chosen.columns:
        if column.startswith(("gain_lo_", "se_churn_")):
            table[column] = np.nan            # not computed for customers left out
            table.loc[rows, column] = chosen[column].to_numpy()
        elif column.startswith("reason_") or column == "exit_signal":
            table.loc[rows, column] = chosen[column].to_numpy()
    order = pd.Series(np.arange(len(table)), index=table["customer_id"].to_numpy())
    where = order.loc[plan["customer_id"].to_numpy()].to_numpy()
    holdout = np.zeros(len(table), dtype=bool)
    holdout[where] = plan["holdout"].to_numpy(bool)
    prob = np.zeros(len(table))
    prob[where] = plan["assignment_probability"].to_numpy(float)
    matrices = ScoreTable.from_frame(table.fillna({c: 0.0 for c in table.columns
                                                   if c.startswith("gain_lo_")}),
                                     spec.offer_names, "scores")
    allocation.plan = plan_frame(table, spec, allocation.solution.choice, holdout, prob,
                                 matrices.gains, matrices.costs, matrices.lower)
    return allocation, table.drop(columns=[c for c in table.columns
                                           if c.startswith(("gain_lo_", "se_churn_"))])


#: customers scored at a time: each model's input matrix is built for this many rows (~170 MB
#: at 200 features), so the scores' memory does not grow with the bank (the scores are row by
#: row: any split gives the same values)
SCORING_CHUNK = 100_000


def chunks(n: int, size: int | None = None) -> list[slice]:
    """Consecutive slices of ``size`` (default :data:`SCORING_CHUNK`) covering ``range(n)``
    (one empty slice when n is 0, so an empty table still gives the scores' columns)."""
    size = size or SCORING_CHUNK
    return [slice(s, min(s + size, n)) for s in range(0, n, size)] or [slice(0, 0)]


def selected_rows(scored: Scoring, rows: np.ndarray, offer_of_row: np.ndarray,
                  models: Models) -> pd.DataFrame:
    """:func:`predict_rows` of the customers at ``rows`` of the scores with churn reasons and,
    of each effect, the standard error of the customer's offer (``offer_of_row``) only: the
    effects are the ones already predicted, the standard errors come from that offer's
    models alone (NaN for the other offers)."""
    models.churn.reasons_from = 0.0
    out = []
    for part in chunks(len(rows)):
        current = scored.current.iloc[rows[part]].reset_index(drop=True)
        effects = scored.predicted.iloc[rows[part]].reset_index(drop=True)
        pieces = [models.churn.score(current, source="features", id_col="customer_id")
                  .reset_index(drop=True),
                  effects[[c for c in effects.columns
                           if c.startswith((CHURN_EFFECT, VALUE_EFFECT))]]]
        for prefix, model in ((CHURN_EFFECT, models.effects_churn),
                              (VALUE_EFFECT, models.effects_value)):
            if model is not None:
                pieces.append(model.predict_se_of(current, offer_of_row[part],
                                                  source="features").add_prefix(prefix))
        out.append(pd.concat(pieces, axis=1))
    return pd.concat(out, ignore_index=True)


def offer_evidence(models: Models, settings: Settings) -> dict | None:
    """The held-out calibration test of each offer's predicted effects, as trained with the
    models (:func:`uplift.effects.calibration.evidence_for_models`); None without one."""
    from uplift.effects.calibration import evidence_for_models

    return evidence_for_models(models.folder, settings.customer_value)


CHURN_EFFECT, VALUE_EFFECT = "churn__", "value__"


def predict_rows(current: pd.DataFrame, models: Models, spec: CampaignSpec, *,
                 with_se: bool = True, reasons: bool = True) -> pd.DataFrame:
    """Row by row (no statistic across customers, so any batch scores the same; the Spark
    engine runs it on partitions): customer_id, churn risk, tier, reasons, and every arm's
    predicted effects on churn (columns ``churn__effect_<arm>``, ``churn__se_<arm>``) and on
    value (``value__...``). ``reasons=False`` gives reasons to the customers above the green
    tier only (they are TreeSHAP, the costly part of a churn score; those customers' top reason
    forms their effect group, :func:`effect_groups_of`); ``with_se=False`` leaves the effects'
    standard errors out."""
    # every planned customer gets reasons, even green; the others' reasons are the same
    models.churn.reasons_from = 0.0 if reasons else min(models.churn.tiers_.values(),
                                                         default=0.0)
    churn = models.churn.score(current, source="features", id_col="customer_id")
    known = set(models.effects_churn.arms)
    unknown = [o for o in spec.offer_names if o not in known]
    if unknown:
        raise InputError(f"campaign {spec.name!r}: offer(s) {', '.join(unknown)} were not in "
                         f"the past campaign, so their effect is unknown; the model knows "
                         f"{', '.join(sorted(known))}")
    parts = [churn.reset_index(drop=True),
             models.effects_churn.predict(current, source="features", with_se=with_se)
             .add_prefix(CHURN_EFFECT).reset_index(drop=True)]
    if models.effects_value is not None:
        parts.append(models.effects_value.predict(current, source="features", with_se=with_se)
                     .add_prefix(VALUE_EFFECT).reset_index(drop=True))
    return pd.concat(parts, axis=1)


def _effects(predicted: pd.DataFrame, prefix: str) -> pd.DataFrame | None:
    cols = [c for c in predicted.columns if c.startswith(prefix)]
    return predicted[cols].rename(columns=lambda c: c.removeprefix(prefix)) if cols else None


def effect_groups_of(predicted: pd.DataFrame) -> np.ndarray:
    """The effect group of each row of :func:`predict_rows` (churn tier, and above green the
    top reason; :func:`uplift.effects.calibration.effect_groups`)."""
    from uplift.effects.calibration import effect_groups

    return effect_groups(predicted["tier"].to_numpy(), predicted["reason_1"].to_numpy())


def effect_sums(evidence: dict | None, predicted: pd.DataFrame, info: pd.DataFrame,
                spec: CampaignSpec) -> pd.DataFrame:
    """Per outcome (``churn`` / ``value``), offer without per-customer signal (``evidence``,
    :func:`offer_evidence`) and effect group: the sum and count of predicted effects over the
    customers eligible for the offer (rows of batches add up; :func:`effect_means`)."""
    from uplift.effects.calibration import group_sums

    columns = ["outcome", "offer", "group", "total", "count"]
    if not evidence:
        return pd.DataFrame({c: [] for c in columns})
    groups = effect_groups_of(predicted)
    from uplift.campaign import offer_eligibility

    allowed = offer_eligibility(info, spec)
    parts = []
    for outcome, prefix in (("churn", CHURN_EFFECT), ("value", VALUE_EFFECT)):
        effects = _effects(predicted, prefix)
        if effects is not None:
            parts.append(group_sums(evidence[outcome], effects, groups, allowed)
                         .assign(outcome=outcome))
    return pd.concat(parts, ignore_index=True)[columns]


def effect_means(evidence: dict | None, predicted: pd.DataFrame | None,
                 info: pd.DataFrame | None, spec: CampaignSpec | None, *,
                 sums: pd.DataFrame | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """outcome -> offer -> effect group -> mean predicted effect over the scored customers
    eligible for the offer, for the offers whose predictions failed the held-out calibration
    test (from ``sums`` when the customers were scored in batches)."""
    from uplift.effects.calibration import group_means

    if sums is None:
        sums = effect_sums(evidence, predicted, info, spec)
    return {outcome: group_means(sums[sums["outcome"] == outcome])
            for outcome in ("churn", "value")}


def finish_rows(predicted: pd.DataFrame, info: pd.DataFrame, models: Models,
                spec: CampaignSpec, settings: Settings,
                means: dict[str, dict[str, dict[str, float]]], evidence: dict | None
                ) -> pd.DataFrame:
    """Scores from :func:`predict_rows` and the customers' rows: offers without per-customer
    signal (``evidence``) take their effect group's mean effect (``means``,
    :func:`effect_means`), then gains and costs per offer. Row by row."""
    from uplift.effects.calibration import coarse_effects
    from uplift.effects.gain import expected_gains

    churn_effects = _effects(predicted, CHURN_EFFECT)
    value_effects = _effects(predicted, VALUE_EFFECT)
    if evidence:
        groups = effect_groups_of(predicted)
        churn_effects = coarse_effects(evidence["churn"], churn_effects, groups,
                                       means=means["churn"])
        if value_effects is not None:
            value_effects = coarse_effects(evidence["value"], value_effects, groups,
                                           means=means["value"])
    gains = expected_gains(info, churn_effects, spec, settings.customer_value,
                           value_effects=value_effects)
    keep = [c for c in info.columns if c not in ("customer_id", "open_date", "close_date")]
    churn = predicted[[c for c in predicted.columns
                       if not c.startswith((CHURN_EFFECT, VALUE_EFFECT))]]
    table = pd.concat([gains, info[keep].reset_index(drop=True),
                       churn.drop(columns=["customer_id"]).reset_index(drop=True)], axis=1)
    for arm in models.effects_churn.arms:
        table[f"delta_churn_{arm}"] = churn_effects[f"effect_{arm}"].to_numpy()
        if f"se_{arm}" in churn_effects.columns:
            table[f"se_churn_{arm}"] = churn_effects[f"se_{arm}"].to_numpy()
    table["segment"] = table["segment"].astype(str)
    return table


@dataclass
class DemoRun:
    """The demo bank with its planning date and trained models (as `uplift plan` uses them)."""

    data: Path
    inputs: FeatureInputs
    as_of: str
    settings: Settings
    models: Models


def demo_run(cache: Path, progress: Progress = _quiet, seed: int = 0) -> DemoRun:
    """Demo bank and models from ``cache`` (built or trained on first use, like `plan`)."""
    data = demo_data(cache, progress)
    inputs = FeatureInputs.from_folder(data)
    settings = Settings()
    day = planning_date(data, inputs, None)
    key = fingerprint(inputs, day, settings, seed)
    folder = cache / "models" / key
    ensure_models(inputs, day, folder, settings, seed=seed, data=data, key=key,
                  progress=progress)
    return DemoRun(data, inputs, day, settings, load_models(folder))


def default_cache() -> Path:
    """The cache folder: ``UPLIFT_CACHE`` or the user's cache directory."""
    import os

    from platformdirs import user_cache_dir

    return Path(os.environ.get("UPLIFT_CACHE") or user_cache_dir("uplift"))



def run_plan(spec: CampaignSpec, budget: float, inputs: FeatureInputs, as_of: str,
             settings: Settings, *, key: str, model_dir: Path, data_folder: Path, train_first: bool,
             cache: Path, confident: bool = False, seed: int = 0,
             contacts: pd.DataFrame | None = None, do_not_contact: pd.DataFrame | None = None,
             engine: str = "duckdb", spark_master: str | None = None,
             progress: Progress = _quiet):
    """The plan's long stages: train (when asked), features (cached), scores, allocation with
    the budget curve, and the backtest replay. Returns (allocation, scores, models, backtest or
    None); ``budget`` and money in the spec's currency. ``engine="spark"`` computes features,
    scores and the allocation's dual on Spark (:mod:`uplift.spark.plan`); the scores returned
    are then the screened candidates' only."""
    from uplift.allocate import allocate
    from uplift.allocate.plan import ScoreTable

    # trains under a lock (a concurrent first run waits, then reuses what the other trained)
    if train_first and ensure_models(inputs, as_of, model_dir, settings, seed=seed,
                                     data=data_folder, key=key, progress=progress):
        release_memory()                # the training tables' pages, before the next peak
    else:
        progress(f"reusing models in {model_dir}")
    models = load_models(model_dir)
    if engine == "spark":
        from uplift.spark.plan import plan_on_spark

        result, scores, customers = plan_on_spark(
            spec, budget, inputs, as_of, settings, models, cache=cache, key=key, seed=seed,
            confident=confident, contacts=contacts, do_not_contact=do_not_contact,
            master=spark_master, progress=progress)
        result.summary.setdefault("notes", []).extend(
            tier_notes(models, settings) + campaign_date_notes(inputs, as_of, settings))
        return result, scores, models, _backtest(model_dir, spec, budget, customers, settings,
                                                 seed, progress)
    if engine != "duckdb":
        raise InputError(f"the engine must be duckdb or spark, not {engine!r}")
    features_cache = cache / "features" / f"{key}.parquet"
    if features_cache.exists():
        features = io.read_table(features_cache, derived=True)
    else:
        progress(f"computing features as of {as_of}")
        if any(protection_state().values()):         # keyed: ids pseudonymised first
            features = protect_ids(build_features(inputs, as_of,
                                                  threads=settings.runtime.threads))
            io.write_table(features, features_cache)
        else:
            # DuckDB writes the table itself and lets go of its memory before pandas reads it
            # (its result and the DataFrame never both in memory: a large bank's peak)
            write_features(inputs, as_of, features_cache, threads=settings.runtime.threads)
            release_memory()
            features = io.read_table(features_cache, derived=True)
    # standard errors only where the plan needs them: every customer's when acting on
    # confident effects, else those of the selected customers, after the allocation
    scored = scoring(inputs, as_of, models, spec, settings, features=features,
                     with_se=confident, progress=progress)
    del features                        # the open customers' rows are in scored.current
    scores = scored.table
    progress(f"allocating {budget:,.0f} {spec.currency} over {len(scores):,} customers, with "
             "the budget curve")
    result = allocate(ScoreTable.from_frame(scores, spec.offer_names, "scores"), spec,
                      budget=budget, confident=confident, seed=seed, curve_points=9,
                      contacts=contacts, as_of=pd.Timestamp(as_of),
                      do_not_contact=do_not_contact, source="scores")
    if not confident:
        progress(f"reasons and standard errors of the effects for the {len(result.plan):,} "
                 "selected customers")
        result, scores = with_uncertainty(result, scored, models, spec, settings)
    result.summary.setdefault("notes", []).extend(
        tier_notes(models, settings) + campaign_date_notes(inputs, as_of, settings))
    return result, scores, models, _backtest(model_dir, spec, budget, len(scores), settings,
                                             seed, progress)


def campaign_date_notes(inputs: FeatureInputs, as_of: str, settings: Settings) -> list[str]:
    """A note when past-campaign rows the effects are learned from were assigned after the
    planning date: that campaign had not happened on that date, so a plan made 'as of' an
    earlier date (a backtest) would rest on the future. (A campaign assigned on the planning
    date itself, as in the simulated banks, is not noted.)"""
    if inputs.campaign_log is None:
        return []
    assigned = pd.to_datetime(inputs.read("campaign_log")["assigned_at"])
    late = assigned.dt.normalize() > pd.Timestamp(as_of)
    if not late.any():
        return []
    return [f"{int(late.sum()):,} of {len(assigned):,} past-campaign rows were assigned after "
            f"the planning date {as_of} (from {assigned[late].min().date()}): the offer "
            "effects rest on a campaign that had not happened on that date; for a backtest, "
            "plan without it"]


def tier_notes(models: Models, settings: Settings) -> list[str]:
    """A note when the configuration's churn tiers differ from the trained model's, which the
    scores use (tiers are set when the model is trained)."""
    trained, configured = dict(models.churn.tiers_), dict(settings.churn.tiers)
    if trained == configured:
        return []

    def text(tiers: dict[str, float]) -> str:
        return ", ".join(f"{k} {v:.2f}" for k, v in sorted(tiers.items(), key=lambda kv: -kv[1]))

    return [f"the churn tiers are the trained model's ({text(trained)}), not the "
            f"configuration's ({text(configured)}): tiers are set when the model is trained "
            "(train again with this configuration to use them)"]


def _backtest(model_dir: Path, spec: CampaignSpec, budget: float, customers: int,
              settings: Settings, seed: int, progress: Progress):
    """The plan's rule replayed on the past campaign (None without a backtest table)."""
    if not (model_dir / "backtest.parquet").exists():
        return None
    from uplift.evaluate.backtest import replay

    progress("replaying the plan's rule on the past campaign (backtest)")
    return replay(io.read_table(model_dir / "backtest.parquet", derived=True), spec, budget,
                  customers, settings.customer_value, seed=seed)
