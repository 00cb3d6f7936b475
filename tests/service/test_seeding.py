"""A store started again: with another bank's folder it is refused (its ids would not meet
the plans'); with another campaign spec the console's newest version is that spec."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from uplift.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def start(settings_kwargs: dict):
    from uplift.service.api import create_app
    from uplift.service.settings import ServiceSettings

    app = create_app(ServiceSettings(**settings_kwargs))
    app.state.service.stop()
    app.state.jobs.stop()
    app.state.store.close()
    return app


def test_a_store_started_again_with_another_banks_folder_is_refused(
        served_models, served_bank, tmp_path):
    base = {"db": str(tmp_path / "store.db"), "model": served_models, "state": tmp_path}
    start({**base, "data": served_bank})
    padded = tmp_path / "padded"
    padded.mkdir()
    for name in ("customers", "events", "campaign_log"):
        frame = pd.read_parquet(served_bank / f"{name}.parquet")
        frame["customer_id"] = frame["customer_id"].astype(str).str.zfill(10)
        frame.to_parquet(padded / f"{name}.parquet", index=False)
    with pytest.raises(InputError, match=r"seeded from another bank.*leading zeros"):
        start({**base, "data": padded})
    start({**base, "data": served_bank})                  # the same folder: served
    start({**base})                                      # no folder: served as it is


def test_a_restart_with_another_spec_makes_it_the_newest_campaign_version(
        served_models, served_bank, tmp_path):
    from uplift.campaign import load_campaign_spec
    from uplift.console import store as cs
    from uplift.service.store import Store

    base = {"db": str(tmp_path / "store.db"), "model": served_models, "state": tmp_path,
            "data": served_bank}
    start(base)
    demo = load_campaign_spec(ROOT / "campaigns" / "retention_demo.yaml")
    other = demo.model_copy(update={"name": "winter_fee", "budget": 1234.0})
    (tmp_path / "winter.yaml").write_text(cs.spec_yaml(other))
    start({**base, "campaign": tmp_path / "winter.yaml"})
    start({**base, "campaign": tmp_path / "winter.yaml"})        # the same again: no new one
    store = Store(base["db"])
    try:
        versions = cs.campaigns(store)
        assert [v["name"] for v in versions][:2] == ["winter_fee", demo.name]
        assert len(versions) == 2
    finally:
        store.close()


def test_a_campaign_whose_do_not_contact_ids_are_padded_otherwise_is_refused_at_start(
        served_models, served_bank, tmp_path):
    """Before, the service started and answered every customer lookup with a 500."""
    from uplift.campaign import load_campaign_spec
    from uplift.console import store as cs

    customer = str(pd.read_parquet(served_bank / "customers.parquet")["customer_id"].iloc[0])
    (tmp_path / "dnc.csv").write_text(f"customer_id\n{customer.zfill(12)}\n")
    demo = load_campaign_spec(ROOT / "campaigns" / "retention_demo.yaml")
    spec = demo.model_copy(update={"do_not_contact": Path("dnc.csv")})
    (tmp_path / "spec.yaml").write_text(cs.spec_yaml(spec))
    base = {"db": str(tmp_path / "store.db"), "model": served_models, "state": tmp_path,
            "data": served_bank}
    with pytest.raises(InputError, match=r"do-not-contact entries.*leading zeros"):
        start({**base, "campaign": tmp_path / "spec.yaml"})
    (tmp_path / "dnc.csv").write_text(f"customer_id\n{customer}\n")
    start({**base, "campaign": tmp_path / "spec.yaml"})
