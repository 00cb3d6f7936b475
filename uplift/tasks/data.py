"""Data tasks: simulate a bank, build features, labels and churn training tables, import."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from uplift import io
from uplift.errors import InputError
from uplift.features import FeatureInputs

SIMULATED_FILES = {"customers.parquet", "events.parquet", "campaign_log.parquet",
                   "truth.parquet", "manifest.json"}


def open_inputs(data: Path, column_map: Path | None = None,
                encoding: str | None = None) -> FeatureInputs:
    """The tables of a data folder, with an optional column map (YAML) and CSV encoding."""
    from uplift.validation import load_column_map

    return FeatureInputs.from_folder(data, rename=load_column_map(column_map), encoding=encoding)


def input_files(inputs: FeatureInputs) -> list[Path]:
    """Every source file a run on ``inputs`` reads (for output checks and manifests)."""
    files = [inputs.customers, inputs.events, inputs.campaign_log, *inputs.external.values()]
    return [f for f in files if f is not None]


@dataclass
class SimulatedBank:
    """What :func:`simulate_to_folder` wrote: row counts per file and the bank's dates."""

    rows: dict[str, int]
    assignment_date: str


def simulate_to_folder(out: Path, customers: int, months: int = 12, *, seed: int = 0,
                       start_date: str = "2025-01-01", triggers: bool = True,
                       progress: Callable[[int, int], None] | None = None) -> SimulatedBank:
    """Simulate a bank into ``out`` (new, empty or a previous simulation): every file or none.
    ``triggers``: a share of disengagement onsets start with observable trigger events."""
    from uplift.simulate import simulate_bank, write_bank

    if out.exists() and any(out.iterdir()):
        others = sorted({p.name for p in out.iterdir()} - SIMULATED_FILES)
        if others:
            raise InputError(f"{out}: folder holds other files ({', '.join(others[:5])}); "
                             "choose an empty or new folder")
    with io.staged_directory(out) as stage:
        bank = simulate_bank(customers, months, seed=seed, start_date=start_date,
                             events_path=stage / "events.parquet", triggers=triggers,
                             progress=progress)
        rows = write_bank(bank, stage)
        io.record_run(stage, "simulate",
                      {"customers": customers, "months": months, "start_date": start_date,
                       "out": out, "triggers": triggers},
                      seed=seed, outputs=rows,
                      extra={"start_date": str(bank.start_date.date()),
                             "assignment_date": str(bank.assignment_date.date())})
    return SimulatedBank(rows, str(bank.assignment_date.date()))


def features_to_file(inputs: FeatureInputs, as_of: str, out: Path, *, threads: int = 1,
                     memory_limit: str | None = None, engine: str = "duckdb",
                     spark_master: str | None = None) -> int:
    """Write the feature table as of ``as_of``, its registry (``<out>.registry.csv``) and its
    manifest; returns the number of customers. ``engine="spark"`` writes a Parquet folder."""
    from uplift.features import registry_frame, write_features
    from uplift.planner import check_engine

    check_engine(engine)
    io.ensure_not_input([out], input_files(inputs))
    if engine == "spark":
        rows = _features_on_spark(inputs, as_of, out, spark_master)
    else:
        rows = write_features(inputs, as_of, out, threads=threads, memory_limit=memory_limit)
    io.write_table(registry_frame(), out.with_name(out.name + ".registry.csv"))
    io.record_run(out, "features", {"data": inputs.customers.parent, "as_of": as_of,
                                    "out": out, "threads": threads},
                  seed=None, inputs=input_files(inputs), outputs={out.name: rows})
    return rows


def _features_on_spark(inputs: FeatureInputs, as_of: str, out: Path,
                       master: str | None) -> int:
    from uplift.features.build import write_features_spark
    from uplift.spark.session import spark_session

    if io.table_format(out) != "parquet":
        raise InputError(f"{out}: --engine spark writes a Parquet folder; name it *.parquet")
    session = spark_session(master)
    write_features_spark(inputs, as_of, out, session)
    return int(session.read.parquet(str(out)).count())


def labels_to_file(inputs: FeatureInputs, as_of: str, out: Path, *, horizon: int = 30,
                   gap: int = 0, drain_share: float = 0.0, min_balance: float = 1000.0):
    """Write churn labels as of ``as_of`` (horizon and gap in days); returns the table."""
    from uplift.features.labels import build_labels

    io.ensure_not_input([out], input_files(inputs))
    table = build_labels(inputs, as_of, horizon_days=horizon, gap_days=gap,
                         drain_share=drain_share, min_balance=min_balance)
    io.write_table(table, out)
    io.record_run(out, "labels", {"data": inputs.customers.parent, "as_of": as_of,
                                  "horizon": horizon, "gap": gap, "drain_share": drain_share,
                                  "min_balance": min_balance, "out": out},
                  seed=None, inputs=input_files(inputs), outputs={out.name: len(table)})
    return table


def churn_dataset_to_file(inputs: FeatureInputs, as_of: list[str], out: Path, *,
                          horizon: int = 30, gap: int = 0, threads: int = 1,
                          progress: Callable[[str], None] | None = None):
    """Write features + churn labels for each snapshot date, stacked; returns the table."""
    from uplift.churn.dataset import snapshot_table

    io.ensure_not_input([out], input_files(inputs))
    table = snapshot_table(inputs, as_of, horizon_days=horizon, gap_days=gap, threads=threads,
                           progress=progress)
    io.write_table(table, out)
    io.record_run(out, "churn dataset", {"data": inputs.customers.parent, "as_of": as_of,
                                         "horizon": horizon, "gap": gap},
                  seed=None, inputs=input_files(inputs), outputs={out.name: len(table)})
    return table


def import_berka_to_folder(src: Path, out: Path):
    """Map the Berka PKDD'99 tables onto customers.parquet and events.parquet in ``out``;
    returns (customers, events)."""
    from uplift.features.berka import load_berka

    io.ensure_not_input([out], [src])
    customers, events = load_berka(src)
    with io.staged_directory(out) as stage:
        customers.to_parquet(stage / "customers.parquet", index=False)
        events.to_parquet(stage / "events.parquet", index=False)
        io.record_run(stage, "import berka", {"src": src, "out": out}, seed=None,
                      outputs={"customers.parquet": len(customers),
                               "events.parquet": len(events)})
    return customers, events


def customers_table(data: Path | None, customers: Path | None = None, *,
                    progress: Callable[[str], None] | None = None) -> Path:
    """The customers table: ``customers`` if given, else the one in ``data`` (default: the
    demo bank, built on first use)."""
    from uplift.pipeline import default_cache, demo_data
    from uplift.validation import find_table

    if customers is not None:
        return customers
    folder = data if data is not None else demo_data(default_cache(),
                                                     progress or (lambda _: None))
    found = find_table(folder, "customers")
    if found is None:
        raise InputError(f"{folder}: no customers table")
    return found
