"""Campaign spec validation and eligibility expressions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from uplift.campaign import eligible, load_campaign_spec
from uplift.errors import InputError, SpecError

DEMO = Path(__file__).resolve().parents[1] / "campaigns" / "retention_demo.yaml"


def write(tmp_path, text):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


BASE = """
name: t
offers:
  - name: coupon
    channel: email
    cost: {fixed: 2.0, per_aum: 0.001}
    eligibility: "aum >= 1000 and segment != 'silent'"
"""


def test_demo_spec_loads():
    spec = load_campaign_spec(DEMO)
    assert spec.offer_names == ["rate_coupon", "fee_waiver", "advisor_visit", "health_report"]
    assert spec.capacities[0].offer == "advisor_visit"


def test_cost_scales_with_aum(tmp_path):
    spec = load_campaign_spec(write(tmp_path, BASE))
    assert spec.offer("coupon").cost.cost([0.0, 10_000.0]).tolist() == [2.0, 12.0]


def test_eligibility_is_evaluated_on_customer_columns(tmp_path):
    spec = load_campaign_spec(write(tmp_path, BASE))
    frame = pd.DataFrame({"aum": [500, 5000, 5000], "segment": ["x", "x", "silent"]})
    assert eligible(frame, spec.offer("coupon")).tolist() == [False, True, False]
    with pytest.raises(InputError, match="needs column"):
        eligible(frame.drop(columns="segment"), spec.offer("coupon"))


@pytest.mark.parametrize("text, message", [
    (BASE.replace("fixed: 2.0", "fixed: -2.0"), "offers.0.cost.fixed"),
    (BASE + "capacities:\n  - {offer: cupon, max_count: 3}\n", "unknown offer 'cupon'"),
    (BASE + "budgett: 100\n", "budgett: unknown key"),
    (BASE.replace("channel: email", "channel: pigeon"), "offers.0.channel"),
    (BASE + "budget: -5\n", "budget"),
    (BASE.replace("aum >= 1000", "__import__('os')"), "not allowed"),
    ("name: [unclosed\n", "not valid YAML at line"),
    (BASE.replace("name: coupon", "name: control"), "offer names"),
])
def test_bad_specs_are_rejected_with_the_field_named(tmp_path, text, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_campaign_spec(write(tmp_path, text))
