"""Pipeline settings with documented defaults (``configs/default.yaml`` mirrors them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from uplift.errors import InputError, SpecError


class CustomerValue(BaseModel):
    """Value of keeping a customer for a year (currency per year):
    ``aum_rate * aum + per_product * products_held + base``."""

    model_config = ConfigDict(extra="forbid")
    aum_rate: Annotated[float, Field(ge=0)] = 0.01
    per_product: Annotated[float, Field(ge=0)] = 40.0
    base: Annotated[float, Field(ge=0)] = 20.0

    def value(self, aum: np.ndarray, products: np.ndarray) -> np.ndarray:
        return self.aum_rate * np.asarray(aum, float) + self.per_product * np.asarray(
            products, float) + self.base


class ChurnSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    horizon_days: Annotated[int, Field(ge=1)] = 30
    gap_days: Annotated[int, Field(ge=0)] = 0
    #: lower bounds of calibrated 30-day churn probability per tier; below all: green
    tiers: dict[str, Annotated[float, Field(gt=0, lt=1)]] = {"red": 0.30, "amber": 0.10}

    @model_validator(mode="after")
    def _distinct(self) -> ChurnSettings:
        if len(set(self.tiers.values())) != len(self.tiers):
            raise ValueError("tier thresholds must be distinct")
        if "green" in self.tiers:
            raise ValueError("'green' is the tier below every threshold; do not list it")
        return self


class Training(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: banks with more customers train the churn model on a random sample of this many
    #: customers (stratified by segment; the same customers at every snapshot), and the effect
    #: models on as many rows of the past campaign (stratified by arm and segment, the same
    #: share of every arm, so the assignment probabilities stay true); None: everyone
    sample_customers: Annotated[int, Field(ge=1000)] | None = 200_000


class Runtime(BaseModel):
    model_config = ConfigDict(extra="forbid")
    threads: Annotated[int, Field(ge=1)] = 1
    seed: int = 0


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_value: CustomerValue = CustomerValue()
    churn: ChurnSettings = ChurnSettings()
    training: Training = Training()
    runtime: Runtime = Runtime()


def load_settings(path: Path | None = None) -> Settings:
    """Settings from a YAML file (defaults when ``path`` is None)."""
    if path is None:
        return Settings()
    if not path.exists():
        raise InputError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}
        return Settings.model_validate(raw)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML ({exc})") from exc
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SpecError(f"{path}: invalid config: {details}") from exc


def assign_tiers(risk: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    """Tier name per probability: the highest tier whose threshold it reaches, else green."""
    tiers = np.full(len(risk), "green", dtype=object)
    for name, cut in sorted(thresholds.items(), key=lambda kv: kv[1]):
        tiers[np.asarray(risk) >= cut] = name
    return tiers
