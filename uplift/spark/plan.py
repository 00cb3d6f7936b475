"""`uplift plan --engine spark`: features, scores and the allocator's dual on Spark.

Training stays on the driver (:func:`uplift.pipeline.train`, on the snapshots' features);
features as of the planning date are computed by Spark and cached as a Parquet folder beside
the single-machine cache, scored on the partitions and allocated by
:func:`uplift.spark.allocate.allocate_frame`. The driver holds the customers table (checked
and pseudonymised as always), the models and the screened candidates, never the events, the
features or every customer's scores.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from uplift.campaign import CampaignSpec
from uplift.config import Settings
from uplift.features import FeatureInputs
from uplift.pipeline import Models, check_consent_column, read_customers


def plan_on_spark(spec: CampaignSpec, budget: float, inputs: FeatureInputs, as_of: str,
                  settings: Settings, models: Models, *, cache: Path, key: str, seed: int,
                  confident: bool, contacts: pd.DataFrame | None,
                  do_not_contact: pd.DataFrame | None, master: str | None,
                  progress: Callable[[str], None]):
    """(allocation, the candidates' scores) with the certificate of the whole bank in the
    allocation's summary (``bound``, ``gap``, ``engine``)."""
    from uplift.features.build import write_features_spark
    from uplift.spark.allocate import allocate_frame
    from uplift.spark.scoring import score_frame
    from uplift.spark.session import spark_session

    seconds: dict[str, float] = {}
    started = time.perf_counter()
    session = spark_session(master, threads=settings.runtime.threads)
    seconds["session"] = time.perf_counter() - started
    features_dir = cache / "features" / f"{key}.spark.parquet"
    if not features_dir.exists():
        progress(f"computing features as of {as_of} on Spark ({session.sparkContext.master})")
        features_dir.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        write_features_spark(inputs, as_of, features_dir, session)
        seconds["features"] = time.perf_counter() - started
    customers = read_customers(inputs)
    check_consent_column(customers, spec, source=str(inputs.customers))
    progress("scoring on Spark")
    started = time.perf_counter()
    features = session.read.parquet(str(features_dir))
    scores = score_frame(session, features, customers, models, spec, settings).persist()
    scored = scores.count()
    seconds["scores"] = time.perf_counter() - started
    progress(f"allocating {budget:,.0f} {spec.currency}: the dual on Spark")
    planned = allocate_frame(session, scores, spec, budget=budget, seed=seed,
                             confident=confident, contacts=contacts,
                             do_not_contact=do_not_contact, as_of=pd.Timestamp(as_of),
                             progress=progress)
    seconds["allocation"] = planned.seconds
    scores.unpersist()
    summary = planned.allocation.summary
    summary["notes"].append(
        f"Spark engine: {planned.customers:,} customers scored and priced on Spark; the plan "
        f"was made over the {planned.candidates:,} screened candidates (the others cannot "
        "gain at the rules' prices), so left-out counts and the budget curve cover those")
    summary.update({
        "customers_scored": planned.customers, "bound": planned.bound, "gap": planned.gap,
        "solver": f"{summary['solver']} over {planned.candidates:,} screened candidates; "
                  f"bound from the dual on Spark over {planned.customers:,} customers",
        "engine": {"name": "spark", "master": session.sparkContext.master,
                   "partitions": features.rdd.getNumPartitions(), "scored": scored,
                   "seconds": {k: round(v, 1) for k, v in seconds.items()},
                   "customers": planned.customers, "candidates": planned.candidates,
                   "dual_iterations": planned.iterations, "multipliers": planned.multipliers}})
    return planned.allocation, planned.candidate_scores, planned.customers
