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


def test_readme_documents_every_spec_key_as_generated_from_the_model():
    from pathlib import Path

    from uplift.campaign import SPEC_SECTIONS, spec_reference

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = readme.index("<!-- spec-reference:start -->\n") + len("<!-- spec-reference:start -->\n")
    end = readme.index("<!-- spec-reference:end -->")
    assert readme[start:end] == spec_reference()
    for _, model in SPEC_SECTIONS:
        for key, info in model.model_fields.items():
            assert f"| `{key}` |" in readme[start:end]
            assert info.description and info.examples, key


def test_spec_reference_examples_are_valid_specs():
    from uplift.campaign import CampaignSpec

    example = {key: info.examples[0] for key, info in CampaignSpec.model_fields.items()}
    example["do_not_contact"] = None
    spec = CampaignSpec.model_validate({**example, "offers": [
        {"name": "advisor_visit", "channel": "advisor", "cost": {"fixed": 180.0}}]})
    assert spec.segment_quotas[0].min_count == 2000
