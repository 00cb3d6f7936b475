"""Allocation task: read a scores file, the contact history and the do-not-contact list, plan,
write the plan (and budget curve) with its manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from uplift import io
from uplift.allocate.plan import Allocation, ScoreTable, check_matrix
from uplift.campaign import CampaignSpec
from uplift.errors import InputError, SchemaError


def read_scores(path: Path, offers: list[str]) -> ScoreTable:
    """Read a scores file; Parquet is read column by column so memory stays near the size of
    the matrices themselves (8 million customers x 4 offers: 256 MB per matrix)."""
    from uplift.security import audit

    if io.table_format(path) != "parquet":
        return ScoreTable.from_frame(io.read_table(path), offers, str(path))
    import pyarrow.parquet as pq

    io.check_readable(path)
    source = io.plaintext_source(path)         # decrypted in memory when encrypted
    names = io.parquet_columns(path, source)
    try:
        parquet = pq.ParquetFile(source)          # metadata parsed once for every read below
        matrix_cols = [c for c in names if c.startswith(("gain_", "cost_"))]
        frame = parquet.read(columns=[c for c in names if c not in matrix_cols]).to_pandas()
    except Exception as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from exc
    audit.note_input(path, len(frame))
    if len(frame) == 0:
        raise InputError(f"{path}: file has no data rows")

    def load(prefix: str) -> np.ndarray:
        cols = [f"{prefix}{o}" for o in offers]
        missing = [c for c in cols if c not in names]
        if missing:
            raise SchemaError(str(path), [f"missing column(s) {', '.join(missing)}; the "
                                          f"campaign's offers are {', '.join(offers)}"])
        # column-major: each column is filled, and later scanned, contiguously
        values = np.empty((len(frame), len(cols)), order="F")
        for j, col in enumerate(cols):
            column = parquet.read(columns=[col]).column(0)
            values[:, j] = column.to_numpy(zero_copy_only=False).astype(float, copy=False)
        check_matrix(values, cols, str(path))
        return values

    has_lower = all(f"gain_lo_{o}" in names for o in offers)
    return ScoreTable(frame, load("gain_"), load("cost_"), load("gain_lo_") if has_lower
                      else None)




def read_contacts(path: Path | None) -> pd.DataFrame | None:
    if path is None:
        return None


    table = io.read_table(path, allow_empty=True)
    missing = [c for c in ("customer_id", "contacted_at") if c not in table.columns]
    if missing:
        raise SchemaError(str(path), [f"missing required column '{m}'" for m in missing])
    table.attrs["source"] = str(path)
    return table


def read_do_not_contact(spec: CampaignSpec) -> pd.DataFrame | None:
    """The spec's do-not-contact list (None when the spec names none); an empty list is
    allowed, a list without ``customer_id`` is refused."""
    if spec.do_not_contact is None:
        return None
    table = io.read_table(spec.do_not_contact, allow_empty=True)
    if "customer_id" not in table.columns:
        raise SchemaError(str(spec.do_not_contact), ["missing required column 'customer_id'"])
    table.attrs["source"] = str(spec.do_not_contact)
    return table


def allocate_files(scores: Path, campaign: Path, out: Path, *, budget: float | None = None,
                   solver: str = "auto", confident: bool = False, contacts: Path | None = None,
                   as_of: str | None = None, curve: Path | None = None, seed: int = 0,
                   time_limit: float = 60.0) -> Allocation:
    """Plan from a scores file under a campaign spec (budget in its currency; ``time_limit``
    in seconds); writes the plan, the budget curve when asked, and the manifest."""
    from uplift.allocate import allocate
    from uplift.campaign import load_campaign_spec

    io.ensure_not_input([out, curve], [scores, campaign, contacts])
    spec = load_campaign_spec(campaign)
    result = allocate(
        read_scores(scores, spec.offer_names), spec, budget=budget, solver=solver,
        confident=confident, contacts=read_contacts(contacts),
        as_of=pd.Timestamp(as_of) if as_of else None, seed=seed, time_limit=time_limit,
        curve_points=9 if curve else 0, do_not_contact=read_do_not_contact(spec),
        source=str(scores))
    io.write_table(result.plan, out)
    if curve is not None:
        io.write_table(result.curve, curve)
    io.record_run(out, "allocate", {"scores": scores, "campaign": campaign, "budget": budget,
                                    "solver": solver, "confident": confident, "as_of": as_of},
                  seed=seed, inputs=[scores, campaign, contacts],
                  outputs={out.name: len(result.plan)},
                  extra={"summary": result.summary, "excluded": result.excluded})
    return result
