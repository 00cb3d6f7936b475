"""A plan says when the configuration's churn tiers are not the ones its model scores with."""

from __future__ import annotations

from types import SimpleNamespace

from uplift.config import Settings
from uplift.pipeline import tier_notes


def models_with(tiers: dict[str, float]):
    return SimpleNamespace(churn=SimpleNamespace(tiers_=tiers))


def test_other_configured_tiers_are_named_in_a_note():
    settings = Settings.model_validate({"churn": {"tiers": {"red": 0.3}}})
    notes = tier_notes(models_with({"red": 0.30, "amber": 0.10}), settings)
    assert len(notes) == 1
    assert "trained model's (red 0.30, amber 0.10)" in notes[0]
    assert "configuration's (red 0.30)" in notes[0]


def test_the_same_tiers_need_no_note():
    assert tier_notes(models_with({"red": 0.30, "amber": 0.10}), Settings()) == []
