"""A whole campaign plan as a library call: inputs checked up front, then models, scores,
allocation, backtest, and every output (plan, call list, holdout list, report, manifest).

A notebook calls :func:`plan` with DataFrames and gets a :class:`PlanResult` in memory; the
CLI's ``uplift plan`` (and the service) call :func:`prepare` then :func:`execute`, which is
:func:`compute` followed by :func:`write_outputs`::

    result = plan(300_000, customers=customers, events=events, campaign_log=log)
    result.outlook["forecast"], result.certificate["gap"], result.call_list.head()

:func:`prepare` does every cheap check (budget, spec, columns, output paths) before any long
work, and says whether models must be trained (so a caller can size its progress display).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from uplift import io
from uplift.campaign import CampaignSpec
from uplift.config import Settings
from uplift.errors import InputError
from uplift.features import FeatureInputs

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def default_campaign() -> Path:
    """The packaged demo campaign spec."""
    from importlib import resources

    return Path(str(resources.files("uplift").joinpath("data/retention_demo.yaml")))


@dataclass
class Run:
    """What a training or planning run works on: settings, data folder, inputs, planning date
    (YYYY-MM-DD) and the run's fingerprint."""

    settings: Settings
    folder: Path
    inputs: FeatureInputs
    day: str
    key: str


def prepare_run(data: Path | None, as_of: str | None, config: Path | None, seed: int, *,
                cache: Path, progress: Progress = _quiet) -> Run:
    """Settings, data (the demo bank when ``data`` is None), planning date and fingerprint."""
    from uplift.config import load_settings
    from uplift.pipeline import demo_data, fingerprint, planning_date

    settings = load_settings(config)
    if data is not None and not data.is_dir():
        raise InputError(f"{data}: data folder not found")
    folder = data if data is not None else demo_data(cache, progress)
    inputs = FeatureInputs.from_folder(folder)
    day = planning_date(folder, inputs, as_of)
    return Run(settings, folder, inputs, day, fingerprint(inputs, day, settings, seed))


@dataclass
class PlanRequest:
    """What a planner asks for; money in the spec's currency, paths of the outputs."""

    budget: float
    campaign: Path | None = None
    data: Path | None = None
    as_of: str | None = None
    model: Path | None = None
    out: Path = Path("plan.csv")
    report: Path = Path("reports/plan.html")
    config: Path | None = None
    confident: bool = False
    seed: int = 0
    contacts: Path | None = None
    call_list: Path | None = None
    holdout_list: Path | None = None
    left_out: Path | None = None
    engine: str = "duckdb"
    spark_master: str | None = None


@dataclass
class PlanJob:
    """A checked request: the spec, the run, where the models are and whether to train."""

    request: PlanRequest
    spec: CampaignSpec
    spec_path: Path
    run: Run
    model_dir: Path
    training: bool
    cache: Path
    history: pd.DataFrame | None
    call_list: Path
    holdout_list: Path
    do_not_contact: pd.DataFrame | None = None
    started: float = field(default_factory=time.perf_counter)

    @property
    def input_files(self) -> list[Path]:
        inputs = self.run.inputs
        files = [inputs.customers, inputs.events, inputs.campaign_log]
        extra = [self.request.contacts] if self.request.contacts else []
        return [p for p in files if p is not None] + [self.spec_path, *extra]


def prepare(request: PlanRequest, *, cache: Path | None = None,
            progress: Progress = _quiet) -> PlanJob:
    """Every cheap check before the long work: budget, spec, contact history, output paths,
    the spec's columns against the customers table (consent included)."""
    from uplift.allocate.rules import check_budget
    from uplift.campaign import load_campaign_spec
    from uplift.pipeline import default_cache, read_customers, trained_fingerprint
    from uplift.tasks.allocation import read_contacts, read_do_not_contact
    from uplift.validation import check_spec_columns

    cache = cache or default_cache()
    check_budget(request.budget)
    check_engine(request.engine)
    spec_path = request.campaign or default_campaign()
    spec = load_campaign_spec(spec_path)
    if request.campaign is None:
        progress(f"campaign spec: the packaged demo spec {spec_path.name} (edit a copy of "
                 "campaigns/retention_demo.yaml and pass it with --campaign)")
    history = read_contacts(request.contacts)
    do_not_contact = read_do_not_contact(spec)
    run = prepare_run(request.data, request.as_of, request.config, request.seed, cache=cache,
                      progress=progress)
    out = request.out
    call_list = request.call_list or out.with_name("contacts.csv")
    holdout_list = request.holdout_list or out.with_name("holdout.csv")
    model_dir = request.model or cache / "models" / run.key
    job = PlanJob(request, spec, spec_path, run, model_dir, False, cache, history, call_list,
                  holdout_list, do_not_contact)
    io.ensure_not_input([out, request.report, call_list, holdout_list, request.left_out],
                        job.input_files)
    if request.model is not None and not request.model.is_dir():
        raise InputError(f"{request.model}: model folder not found (train one there first: "
                         f"`uplift train --out {request.model}`)")
    check_spec_columns(spec, read_customers(run.inputs), source=str(run.inputs.customers))
    job.training = request.model is None and trained_fingerprint(model_dir) != run.key
    return job


def check_engine(engine: str) -> None:
    """Refuse an unknown engine, or Spark when PySpark or Java is missing or the data is to be
    protected (the Spark engine does not write pseudonymised or sealed tables yet)."""
    if engine == "duckdb":
        return
    if engine != "spark":
        raise InputError(f"--engine: must be duckdb or spark, not {engine!r}")
    from uplift.security.keys import encryption_key, pseudonym_key
    from uplift.spark.session import spark_available

    if not spark_available():
        raise InputError('--engine spark needs PySpark and a Java 17+ runtime: pip install '
                         '"uplift[spark]" and install a JDK (JAVA_HOME)')
    if pseudonym_key() is not None or encryption_key() is not None:
        raise InputError("--engine spark does not write protected (pseudonymised or sealed) "
                         "tables yet: use the DuckDB engine with keys set")


@dataclass
class PlanResult:
    """Everything a plan produced, in memory (money in the spec's currency).

    ``plan``: every selected customer (contacted or held out) with offer, cost, expected gain
    and interval; ``call_list``: contacted customers only, ranked; ``holdout``: held-out
    customers; ``left_out``: every scored customer not selected, with the rule that removed
    them; ``summary``: counts, spend, expected gain, the allocation certificate (value, proven
    bound, gap, solver), rules with shadow prices and notes; ``curve``: the budget curve;
    ``excluded``: customers removed per rule; ``outlook``: what to expect (backtest-adjusted
    forecast and customers kept); ``backtest``: the replay on the past campaign;
    ``model_checks``: churn validation and the effects learners' comparison; ``scores``:
    every scored customer's risk, tier, reasons, gains and costs.
    """

    plan: pd.DataFrame
    call_list: pd.DataFrame
    holdout: pd.DataFrame
    left_out: pd.DataFrame
    summary: dict
    curve: pd.DataFrame | None
    excluded: dict[str, int]
    outlook: dict
    backtest: object | None                  # uplift.evaluate.backtest.Backtest
    model_checks: dict
    scores: pd.DataFrame
    as_of: str
    spec: CampaignSpec
    interval: tuple[float, float]
    models: Path
    files: dict[str, str] = field(default_factory=dict)

    @property
    def certificate(self) -> dict:
        """The allocation's proof of quality: the selection's value, the proven bound on any
        plan's value under the same rules, the relative gap and the solver."""
        s = self.summary
        return {"value": s["plan_value_before_holdout"], "bound": s["bound"], "gap": s["gap"],
                "solver": s["solver"], "note": s["solver_note"]}

    @property
    def pseudonymised(self) -> bool:
        """Whether the plan carries pseudonyms (then the call list needs `export`)."""
        from uplift.security.pseudonym import is_pseudonym

        return bool(len(self.plan)) and bool(is_pseudonym(self.plan["customer_id"]).all())

    def report_html(self, data_label: str = "") -> str:
        """The plan report (money first) as one HTML page."""
        from uplift.report.plan import plan_html

        checks = self.model_checks
        return plan_html(self.plan, self.summary, self.excluded, self.curve, self.interval,
                         checks["churn"], checks["effects_comparison"],
                         checks["effects_learner"],
                         {"as_of": self.as_of, "data": data_label}, self.backtest,
                         outlook=self.outlook, evidence=checks.get("offer_effects"))


def compute(job: PlanJob, progress: Progress = _quiet) -> PlanResult:
    """Train when needed, score, allocate and backtest: the plan in memory, nothing written."""
    from uplift.allocate.calllist import call_list, holdout_list, left_out_list, outlook
    from uplift.pipeline import run_plan

    request, run = job.request, job.run
    result, scores, models, backtest = run_plan(
        job.spec, request.budget, run.inputs, run.day, run.settings, key=run.key,
        model_dir=job.model_dir, data_folder=run.folder, train_first=job.training,
        cache=job.cache, confident=request.confident, seed=request.seed,
        contacts=job.history, do_not_contact=job.do_not_contact, engine=request.engine,
        spark_master=request.spark_master, progress=progress)
    from uplift.effects.calibration import evidence_for_models, evidence_rows

    # the campaign's offers only (the past campaign may have tried others)
    offered = set(job.spec.offer_names)
    offer_effects = [e for e in evidence_rows(evidence_for_models(
        models.folder, run.settings.customer_value) or {}) if e["offer"] in offered]
    realisation = None
    if backtest is not None and backtest.realisation is not None:
        realisation = (backtest.realisation, *backtest.realisation_interval)
    expect = outlook(result.plan, realisation)
    # the outlook already holds the interval of the contacted customers' total gain
    interval = (expect.get("expected_gain_low", expect["expected_gain"]),
                expect.get("expected_gain_high", expect["expected_gain"]))
    summary = {**result.summary, "expected_gain_interval": list(interval), "outlook": expect,
               "backtest": backtest.to_dict() if backtest is not None else None,
               "offer_effects": offer_effects, "as_of": run.day, "models": str(job.model_dir)}
    checks = {"churn": models.churn.validation_,
              "effects_comparison": models.effects_churn.estimator_.comparison_,
              "effects_learner": models.effects_churn.estimator_.learner_,
              "offer_effects": offer_effects}
    return PlanResult(result.plan, call_list(result.plan), holdout_list(result.plan),
                      left_out_list(scores["customer_id"], result.left_out), summary,
                      result.curve, result.excluded, expect, backtest, checks, scores,
                      run.day, job.spec, interval, job.model_dir)


def write_outputs(result: PlanResult, job: PlanJob) -> PlanResult:
    """Write the plan, call list (raw ids only), holdout list, left-out list (when asked),
    report and manifest of a computed plan; returns it with ``files`` and the summary's
    output fields filled."""
    request, run = job.request, job.run
    out, report = request.out, request.report
    html_text = result.report_html("demo bank" if request.data is None else str(request.data))
    outputs = {out.name: len(result.plan), report.name: 1}
    io.write_table(result.plan, out)
    files = {"holdout": str(job.holdout_list)}
    if result.pseudonymised:
        files["contacts"] = f"via `uplift export --plan {out} --out {job.call_list.name}`"
    else:
        io.write_table(result.call_list, job.call_list)
        outputs[job.call_list.name] = len(result.call_list)
        files["contacts"] = str(job.call_list)
    io.write_table(result.holdout, job.holdout_list)
    outputs[job.holdout_list.name] = len(result.holdout)
    if request.left_out is not None:
        io.write_table(result.left_out, request.left_out)
        outputs[request.left_out.name] = len(result.left_out)
    io.write_text(html_text, report)
    result.summary.update({
        "plan": str(out), "report": str(report),
        "call_list": None if result.pseudonymised else str(job.call_list),
        "holdout_list": str(job.holdout_list),
        "seconds_total": time.perf_counter() - job.started})
    io.record_run(
        out, "plan", {"budget": request.budget, "campaign": job.spec_path, "data": run.folder,
                      "as_of": run.day, "model": job.model_dir, "confident": request.confident,
                      "contacts": request.contacts},
        seed=request.seed, inputs=job.input_files, outputs=outputs,
        extra={"summary": result.summary, "excluded": result.excluded,
               "measurement": {"arm": "arm", "control": "control", "strata": "stratum",
                               "propensity": "assignment_probability",
                               "horizon_days": run.settings.churn.horizon_days,
                               "holdout_stratify": job.spec.holdout_stratify}})
    result.files = files
    return result


def execute(job: PlanJob, progress: Progress = _quiet) -> PlanResult:
    """Compute the plan and write every output (see :func:`write_outputs`)."""
    return write_outputs(compute(job, progress), job)


def plan(budget: float, *, customers: pd.DataFrame | None = None,
         events: pd.DataFrame | None = None, campaign_log: pd.DataFrame | None = None,
         data: Path | str | None = None, campaign: CampaignSpec | dict | Path | str | None = None,
         as_of: str | None = None, model: Path | str | None = None,
         settings: Settings | None = None, confident: bool = False, seed: int = 0,
         contacts: pd.DataFrame | None = None, cache: Path | str | None = None,
         progress: Progress = _quiet) -> PlanResult:
    """Plan a retention campaign and return the result in memory; nothing is written but the
    model and feature caches.

    The bank's tables come as DataFrames (``customers``, ``events``, optional
    ``campaign_log``, in the data contracts of the README) or as a ``data`` folder; with
    neither, the demo bank. ``campaign``: a :class:`CampaignSpec`, its dict, or a YAML path
    (default: the packaged demo campaign). ``budget`` in the spec's currency. Models are
    trained on first use and cached by a fingerprint of the inputs, settings and seed (so the
    same inputs and seed give the same plan); ``model`` uses a trained folder instead.
    DataFrames are staged as Parquet in a private temporary folder (encrypted when a master
    key is set) for the feature SQL, and removed afterwards.
    """
    import shutil
    import tempfile

    frames = {"customers": customers, "events": events, "campaign_log": campaign_log}
    given = {name: frame for name, frame in frames.items() if frame is not None}
    if given and data is not None:
        raise InputError("give the bank's tables as DataFrames or as a data folder, not both")
    if given and (customers is None or events is None):
        raise InputError("the customers and events tables are both needed")
    stage = Path(tempfile.mkdtemp(prefix="uplift-plan-"))
    try:
        for name, frame in given.items():
            io.write_source_table(frame, stage / "data" / f"{name}.parquet")
        spec_path = _spec_file(campaign, stage)
        config = None
        if settings is not None:
            config = stage / "settings.json"
            io.write_json(settings.model_dump(mode="json"), config)
        history = None
        if contacts is not None:
            history = stage / "contacts.parquet"
            io.write_source_table(contacts, history)
        folder = stage / "data" if given else (Path(data) if data is not None else None)
        job = prepare(PlanRequest(
            budget=budget, campaign=spec_path, data=folder, as_of=as_of,
            model=Path(model) if model is not None else None, out=stage / "out" / "plan.csv",
            report=stage / "out" / "plan.html", config=config, confident=confident, seed=seed,
            contacts=history), cache=Path(cache) if cache is not None else None,
            progress=progress)
        return compute(job, progress)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _spec_file(campaign: CampaignSpec | dict | Path | str | None, stage: Path) -> Path | None:
    """A YAML path for the campaign, written to ``stage`` when given as a spec or dict."""
    if campaign is None or isinstance(campaign, Path | str):
        return Path(campaign) if campaign is not None else None
    import yaml

    raw = campaign.model_dump(mode="json", exclude_none=True) if isinstance(
        campaign, CampaignSpec) else dict(campaign)
    path = stage / "campaign.yaml"
    io.write_text(yaml.safe_dump(raw, sort_keys=False), path)
    return path


def train_models(data: Path | None = None, *, out: Path | None = None, as_of: str | None = None,
                 config: Path | None = None, seed: int = 0, cache: Path | None = None,
                 progress: Progress = _quiet) -> Path:
    """Fit the churn and effects models a plan needs into ``out`` (default: the cache folder
    ``plan`` looks in, so a later plan on the same inputs and seed reuses them); returns the
    model folder. ``data`` None: the demo bank."""
    from uplift.pipeline import default_cache, train
    from uplift.tasks.data import input_files

    cache = cache or default_cache()
    run = prepare_run(data, as_of, config, seed, cache=cache, progress=progress)
    target = out or cache / "models" / run.key
    io.ensure_not_input([target], input_files(run.inputs))
    with io.directory_lock(target):
        train(run.inputs, run.day, target, run.settings, seed=seed, progress=progress,
              stamp={"fingerprint": run.key, "data": str(run.folder), "as_of": run.day,
                     "seed": seed})
    return target
