"""The console's JSON API on a served bank: results from an uploaded outcomes table (sign of
customers kept, the design's propensities), strict request bodies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import bearer
from uplift.service.auth import new_token


@pytest.fixture(scope="module")
def api(make_app):
    app = make_app()
    client = TestClient(app)
    return app, client, bearer(new_token(app.state.store, name="analyst", role="analyst"))


def outcomes(varying: bool = False) -> pd.DataFrame:
    """A campaign where the offer keeps customers: churn 30% in control, 20% treated; with
    ``varying`` the offer went to 80% of 'rich' and 20% of 'young' customers."""
    rng = np.random.default_rng(3)
    n = 4000
    segment = rng.choice(["rich", "young"], n)
    share = np.where(segment == "rich", 0.8, 0.2) if varying else np.full(n, 0.5)
    treated = rng.random(n) < share
    base = np.where(segment == "rich", 0.1, 0.4) if varying else np.full(n, 0.3)
    churned = (rng.random(n) < base - 0.1 * treated).astype(int)
    return pd.DataFrame({"customer_id": np.arange(n), "segment": segment,
                         "arm": np.where(treated, "fee_waiver", "control"),
                         "propensity": np.where(treated, share, 1 - share),
                         "churned": churned, "retained": 1 - churned})


def test_customers_kept_are_counted_with_the_right_sign(api):
    _, client, headers = api
    csv = outcomes().to_csv(index=False)
    kept = client.post("/v1/results", headers=headers, json={
        "csv": csv, "metric": "retained", "retention": True, "cost": None})
    assert kept.status_code == 200
    lift = kept.json()["result"]["arms"]["fee_waiver"]["lift"]
    assert lift == pytest.approx(0.1, abs=0.04)
    wrong = client.post("/v1/results", headers=headers, json={
        "csv": csv, "metric": "churned", "retention": True})
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == "retention"
    plain = client.post("/v1/results", headers=headers, json={"csv": csv})
    assert plain.status_code == 200                       # churned, not read as retention
    assert plain.json()["result"]["arms"]["fee_waiver"]["lift"] == pytest.approx(-lift)


def test_a_design_whose_propensities_vary_needs_its_strata(api):
    _, client, headers = api
    csv = outcomes(varying=True).to_csv(index=False)
    refused = client.post("/v1/results", headers=headers, json={"csv": csv})
    assert refused.status_code == 422
    assert "vary within an arm" in refused.json()["detail"][0]["msg"]
    assert "--customers" not in refused.text            # an option of the command line
    strata = client.post("/v1/results", headers=headers, json={"csv": csv, "strata": "segment"})
    assert strata.status_code == 200
    lift = strata.json()["result"]["arms"]["fee_waiver"]["lift"]
    assert lift == pytest.approx(-0.1, abs=0.04)


def test_an_unknown_field_is_refused_not_ignored(api):
    _, client, headers = api
    response = client.post("/v1/results", headers=headers, json={
        "csv": outcomes().to_csv(index=False), "metirc": "retained"})
    assert response.status_code == 422 and "metirc" in response.text


def test_a_campaign_no_plan_could_use_is_refused_at_validation(api, tmp_path):
    """An offer the models never saw, or a do-not-contact list outside the bank's data and
    the service's state folders (or unreadable), is refused on its field; a list in the
    state folder passes."""
    app, client, _ = api
    planner = bearer(new_token(app.state.store, name="planner-v", role="planner"))
    spec = app.state.service.spec.model_dump(mode="json", exclude_none=True)

    def check(**changes):
        return client.post("/v1/campaigns/validate", headers=planner, json={**spec, **changes})

    capped = {c["offer"] for c in spec.get("capacities", [])}
    k = next(i for i, o in enumerate(spec["offers"]) if o["name"] not in capped)
    renamed = [dict(o, name="sms_gift") if i == k else o for i, o in enumerate(spec["offers"])]
    response = check(offers=renamed)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [f"offers.{k}.name"]
    assert "not in the past campaign" in response.text
    typo = [dict(o, eligibility="segment == 'privat_banking'") if i == k else o
            for i, o in enumerate(spec["offers"])]
    response = check(offers=typo)
    assert response.status_code == 422 and "matches none of the bank's" in response.text
    assert [e["loc"] for e in response.json()["detail"]] == [f"offers.{k}.eligibility"]
    outside = tmp_path / "other_bank.csv"
    outside.write_text("customer_id\nDE89370400440532013000\n")
    response = check(do_not_contact=str(outside))
    assert response.status_code == 422 and "DE89" not in response.text
    assert response.json()["detail"][0]["loc"] == "do_not_contact"
    state = app.state.settings.state
    (state / "dnc.csv").write_text("customer_id\n10000001\n")
    assert check(do_not_contact=str(state / "dnc.csv")).status_code == 200
    customer = str(app.state.service.customers()["customer_id"].iloc[0])
    (state / "padded.csv").write_text(f"customer_id\n{customer.zfill(12)}\n")
    padded = check(do_not_contact=str(state / "padded.csv"))
    assert padded.status_code == 422 and "leading zeros" in padded.text
    (state / "bad.csv").write_text("id\n10000001\n")
    assert "no customer_id column" in check(do_not_contact=str(state / "bad.csv")).text
    assert "no such file" in check(do_not_contact=str(state / "none.csv")).text


def test_a_rule_naming_an_unknown_offer_is_placed_on_its_field(api):
    app, client, _ = api
    planner = bearer(new_token(app.state.store, name="planner-loc", role="planner"))
    spec = app.state.service.spec.model_dump(mode="json", exclude_none=True)
    cases = {"capacities": ([{"offer": "nope", "max_count": 3}], "capacities.0.offer"),
             "min_roi": ({"nope": 1.0}, "min_roi.nope")}
    for field, (value, loc) in cases.items():
        response = client.post("/v1/campaigns/validate", headers=planner,
                               json={**spec, field: value})
        assert response.status_code == 422
        assert [e["loc"] for e in response.json()["detail"]] == [loc]
