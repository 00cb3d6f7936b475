"""A whole campaign plan as a library call: inputs checked up front, then models, scores,
allocation, backtest, and every output (plan, call list, holdout list, report, manifest).

The CLI's ``uplift plan`` is a thin shell over :func:`prepare` and :func:`execute`; a service
or a notebook calls the same two functions::

    job = prepare(PlanRequest(budget=300_000, data=Path("bank")))
    outcome = execute(job)
    outcome.summary["outlook"]["forecast"]

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
    started: float = field(default_factory=time.perf_counter)

    @property
    def input_files(self) -> list[Path]:
        inputs = self.run.inputs
        files = [inputs.customers, inputs.events, inputs.campaign_log]
        extra = [self.request.contacts] if self.request.contacts else []
        return [p for p in files if p is not None] + [self.spec_path, *extra]


@dataclass
class PlanOutcome:
    """The allocation, the summary written to the manifest, the outlook and the files."""

    result: object                   # uplift.allocate.Allocation
    summary: dict
    outlook: dict
    files: dict[str, str]


def prepare(request: PlanRequest, *, cache: Path | None = None,
            progress: Progress = _quiet) -> PlanJob:
    """Every cheap check before the long work: budget, spec, contact history, output paths,
    the spec's columns against the customers table (consent included)."""
    from uplift.allocate.plan import check_budget, read_contacts
    from uplift.campaign import load_campaign_spec
    from uplift.pipeline import default_cache, read_customers, trained_fingerprint
    from uplift.validation import check_spec_columns

    cache = cache or default_cache()
    check_budget(request.budget)
    spec_path = request.campaign or default_campaign()
    spec = load_campaign_spec(spec_path)
    if request.campaign is None:
        progress(f"campaign spec: the packaged demo spec {spec_path.name} (edit a copy of "
                 "campaigns/retention_demo.yaml and pass it with --campaign)")
    history = read_contacts(request.contacts)
    run = prepare_run(request.data, request.as_of, request.config, request.seed, cache=cache,
                      progress=progress)
    out = request.out
    call_list = request.call_list or out.with_name("contacts.csv")
    holdout_list = request.holdout_list or out.with_name("holdout.csv")
    model_dir = request.model or cache / "models" / run.key
    job = PlanJob(request, spec, spec_path, run, model_dir, False, cache, history, call_list,
                  holdout_list)
    io.ensure_not_input([out, request.report, call_list, holdout_list, request.left_out],
                        job.input_files)
    if request.model is not None and not request.model.is_dir():
        raise InputError(f"{request.model}: model folder not found (run `uplift train --out "
                         f"{request.model}`)")
    check_spec_columns(spec, read_customers(run.inputs), source=str(run.inputs.customers))
    job.training = request.model is None and trained_fingerprint(model_dir) != run.key
    return job


def execute(job: PlanJob, progress: Progress = _quiet) -> PlanOutcome:
    """Train when needed, plan, and write the plan, call list (raw ids only), holdout list,
    left-out list (when asked), report and manifest."""
    from uplift.allocate.calllist import call_list, holdout_list, left_out_list, outlook
    from uplift.pipeline import run_plan, total_interval
    from uplift.report.plan import plan_html
    from uplift.security.pseudonym import is_pseudonym

    request, run = job.request, job.run
    result, scores, models, backtest = run_plan(
        job.spec, request.budget, run.inputs, run.day, run.settings, key=run.key,
        model_dir=job.model_dir, data_folder=run.folder, train_first=job.training,
        cache=job.cache, confident=request.confident, seed=request.seed,
        contacts=job.history, progress=progress)
    from uplift.effects.calibration import evidence_for_models
    from uplift.effects.calibration import evidence_rows as as_rows

    evidence_rows = as_rows(evidence_for_models(models.folder, run.settings.customer_value)
                            or {})
    interval = total_interval(result.plan)
    realisation = None
    if backtest is not None and backtest.realisation is not None:
        realisation = (backtest.realisation, *backtest.realisation_interval)
    expect = outlook(result.plan, realisation)
    pseudonymised = bool(len(result.plan)) and bool(is_pseudonym(result.plan["customer_id"])
                                                    .all())
    html_text = plan_html(
        result.plan, result.summary, result.excluded, result.curve, interval,
        models.churn.validation_, models.effects_churn.estimator_.comparison_,
        models.effects_churn.estimator_.learner_,
        {"as_of": run.day, "data": "demo bank" if request.data is None else str(request.data)},
        backtest, outlook=expect, evidence=evidence_rows)
    out, report = request.out, request.report
    outputs = {out.name: len(result.plan), report.name: 1}
    io.write_table(result.plan, out)
    files = {"holdout": str(job.holdout_list)}
    if pseudonymised:
        files["contacts"] = f"via `uplift export --plan {out} --out {job.call_list.name}`"
    else:
        calls = call_list(result.plan)
        io.write_table(calls, job.call_list)
        outputs[job.call_list.name] = len(calls)
        files["contacts"] = str(job.call_list)
    held = holdout_list(result.plan)
    io.write_table(held, job.holdout_list)
    outputs[job.holdout_list.name] = len(held)
    if request.left_out is not None:
        dropped = left_out_list(scores["customer_id"], result.left_out)
        io.write_table(dropped, request.left_out)
        outputs[request.left_out.name] = len(dropped)
    io.write_text(html_text, report)
    summary = {**result.summary, "expected_gain_interval": list(interval), "outlook": expect,
               "backtest": backtest.to_dict() if backtest is not None else None,
               "offer_effects": evidence_rows,
               "as_of": run.day, "plan": str(out), "report": str(report),
               "models": str(job.model_dir),
               "call_list": None if pseudonymised else str(job.call_list),
               "holdout_list": str(job.holdout_list),
               "seconds_total": time.perf_counter() - job.started}
    io.write_json(io.build_manifest(
        "plan", {"budget": request.budget, "campaign": job.spec_path, "data": run.folder,
                 "as_of": run.day, "model": job.model_dir, "confident": request.confident,
                 "contacts": request.contacts},
        seed=request.seed, inputs=job.input_files, outputs=outputs,
        extra={"summary": summary, "excluded": result.excluded,
               "measurement": {"arm": "arm", "control": "control", "strata": "stratum",
                               "propensity": "assignment_probability",
                               "horizon_days": run.settings.churn.horizon_days,
                               "holdout_stratify": job.spec.holdout_stratify}}),
        io.manifest_path_for(out))
    result.summary = summary
    return PlanOutcome(result, summary, expect, files)
