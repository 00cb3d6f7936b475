"""Scores on Spark: the single-machine scoring code run on partitions with ``mapInPandas``.

The trained models are broadcast once; each partition of (features joined with the customers
table) goes through :func:`uplift.pipeline.predict_rows` (churn risk, tier, reasons, predicted
effects) and :func:`uplift.pipeline.finish_rows` (segment means for offers without
per-customer signal, gains and costs). The one statistic across customers, the segment means
of those offers' predicted effects, is added up from per-partition sums
(:func:`uplift.pipeline.effect_sums`) between the two passes. So a partition's scores equal
the single-machine ones row for row (to the last bits of the segment means' sums).
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from uplift.campaign import CampaignSpec
from uplift.config import Settings
from uplift.pipeline import (
    Models,
    effect_means,
    effect_sums,
    finish_rows,
    offer_evidence,
    predict_rows,
)

INFO = "info__"
#: rows of the driver-side sample that fixes the output schema of each pass
SCHEMA_SAMPLE = 64


def _split(batch: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(features, customers-table rows) of a joined batch."""
    info_cols = [c for c in batch.columns if c.startswith(INFO)]
    info = batch[info_cols].rename(columns=lambda c: c.removeprefix(INFO))
    info.insert(0, "customer_id", batch["customer_id"].to_numpy())
    return batch.drop(columns=info_cols), info.reset_index(drop=True)


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with text columns as Python objects: PySpark's Arrow transfer cannot take
    pandas 3's Arrow-backed (chunked) string columns."""
    text = [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c].dtype)
            and not pd.api.types.is_object_dtype(frame[c].dtype)]
    return frame.astype(dict.fromkeys(text, object)) if text else frame


def _schema_of(session, sample: pd.DataFrame):
    """The Spark schema of a pandas frame (one conversion, as Arrow would type it)."""
    return session.createDataFrame(plain(sample)).schema


def joined_frame(session, features, customers: pd.DataFrame):
    """Open customers' features joined with their customers-table rows (columns of the latter
    prefixed ``info__``)."""
    from uplift.features.spark import SparkConnection

    info = customers.rename(columns=lambda c: c if c == "customer_id" else INFO + c)
    con = SparkConnection(session)
    con.register("uplift_customers_info", info)
    info_frame = session.table("uplift_customers_info")
    current = features.where("open_at_as_of = 1").drop("open_at_as_of", "as_of")
    return current.join(info_frame, on="customer_id", how="left")


def score_frame(session, features, customers: pd.DataFrame, models: Models,
                spec: CampaignSpec, settings: Settings):
    """Scores of the open customers (a Spark DataFrame, the columns of
    :func:`uplift.pipeline.score_customers`) from a Spark feature table and the customers table
    (pandas, checked and pseudonymised as for the single-machine engine)."""
    joined = joined_frame(session, features, customers)
    evidence = offer_evidence(models, settings)
    shared = session.sparkContext.broadcast((models, spec, settings, evidence))

    def predict(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        models_, spec_, _, _ = shared.value
        for batch in batches:
            current, info = _split(batch)
            predicted = predict_rows(current.reset_index(drop=True), models_, spec_)
            yield plain(pd.concat([predicted, batch[[c for c in batch.columns
                                                     if c.startswith(INFO)]]
                                   .reset_index(drop=True)], axis=1))

    sample = joined.limit(SCHEMA_SAMPLE).toPandas()
    predicted_sample = next(predict(iter([sample])))
    predicted = joined.mapInPandas(predict, _schema_of(session, predicted_sample)).persist()

    def sums(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        _, spec_, _, evidence_ = shared.value
        for batch in batches:
            _, info = _split(batch)
            yield plain(effect_sums(evidence_, batch.reset_index(drop=True), info, spec_))

    sum_schema = "outcome string, offer string, group string, total double, count long"
    totals = predicted.mapInPandas(sums, sum_schema).toPandas()
    means = effect_means(evidence, None, None, None, sums=totals)

    def finish(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        models_, spec_, settings_, evidence_ = shared.value
        for batch in batches:
            _, info = _split(batch)
            predicted_rows = batch[[c for c in batch.columns if not c.startswith(INFO)]]
            yield plain(finish_rows(predicted_rows.reset_index(drop=True), info, models_,
                                    spec_, settings_, means, evidence_))

    finished_sample = next(finish(iter([predicted_sample])))
    return predicted.mapInPandas(finish, _schema_of(session, finished_sample))
