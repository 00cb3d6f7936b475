"""Campaign spec: offers, costs, eligibility, capacities, quotas, budget and holdout (YAML).

Example (see ``campaigns/retention_demo.yaml``)::

    name: retention_demo
    currency: EUR
    budget: 500000
    holdout_fraction: 0.10
    offers:
      - name: rate_coupon
        channel: email
        cost: {fixed: 2.0, per_aum: 0.002}
        eligibility: "aum >= 1000"
    capacities:
      - {offer: advisor_visit, max_count: 400}

Offer cost (currency) = ``fixed + per_aum * aum``. Eligibility is a boolean expression over
customer columns using only names, numbers, strings, comparisons, ``and``/``or``/``not``,
arithmetic and ``in [...]`` lists; it is checked here and evaluated by :func:`eligible`.
Unknown keys anywhere in the file are errors (a typo must not silently disable a rule).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from uplift.errors import InputError, SpecError
from uplift.schema import CONTROL_ARM

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
RESERVED_NAMES = {CONTROL_ARM, "none"}
_ALLOWED_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Name, ast.Load, ast.Constant,
    ast.List, ast.Tuple,
)


#: Limits of an eligibility expression: characters, syntax-tree nodes and nesting depth.
MAX_EXPRESSION_CHARS = 500
MAX_EXPRESSION_NODES = 200
MAX_EXPRESSION_DEPTH = 12


def _depth(node: ast.AST) -> int:
    children = list(ast.iter_child_nodes(node))
    return 1 + max((_depth(c) for c in children), default=0)


def _parse_expression(expression: str) -> ast.Expression:
    """Parse and check an eligibility expression (size, allowed syntax, no text arithmetic)."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise SpecError(f"eligibility expression of {len(expression):,} characters: at most "
                        f"{MAX_EXPRESSION_CHARS} are allowed")
    shown = repr(expression)
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise SpecError(f"eligibility {shown}: not a valid expression ({exc.msg})") from exc
    except (RecursionError, MemoryError, ValueError) as exc:
        raise SpecError(f"eligibility {shown}: too deeply nested") from exc
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_EXPRESSION_NODES or _depth(tree) > MAX_EXPRESSION_DEPTH:
        raise SpecError(f"eligibility {shown}: too complex (at most {MAX_EXPRESSION_NODES} "
                        f"terms and {MAX_EXPRESSION_DEPTH} levels of nesting)")
    for node in nodes:
        if not isinstance(node, _ALLOWED_NODES):
            raise SpecError(
                f"eligibility {shown}: '{type(node).__name__}' is not allowed; use column "
                "names, numbers, strings, comparisons, and/or/not, + - * / and 'in [...]'"
            )
        if isinstance(node, ast.BinOp) and any(
                isinstance(side, ast.Constant) and not isinstance(side.value, int | float)
                for side in (node.left, node.right)):
            raise SpecError(f"eligibility {shown}: arithmetic (+ - * /) is for numbers only")
    return tree


def expression_columns(expression: str) -> set[str]:
    """Column names used by an eligibility expression; raises :class:`SpecError` if unsafe."""
    return {n.id for n in ast.walk(_parse_expression(expression)) if isinstance(n, ast.Name)}


def _arithmetic_columns(expression: str) -> set[str]:
    """Columns an expression does arithmetic on (they must hold numbers)."""
    found = set()
    for node in ast.walk(_parse_expression(expression)):
        if isinstance(node, ast.BinOp):
            found |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    return found


def _strict() -> ConfigDict:
    return ConfigDict(extra="forbid", frozen=True)


NonNegative = Annotated[float, Field(ge=0)]


class CostModel(BaseModel):
    """Offer cost per contacted customer: ``fixed + per_aum * aum`` (currency)."""

    model_config = _strict()
    fixed: NonNegative = 0.0
    per_aum: NonNegative = 0.0
    aum_column: str = "aum"

    def cost(self, aum: np.ndarray | pd.Series | float | None = None) -> np.ndarray | float:
        """Cost in currency for each customer's AUM (AUM is ignored when ``per_aum`` is 0)."""
        if self.per_aum == 0 or aum is None:
            return self.fixed if aum is None else np.full(np.shape(aum), self.fixed)
        return self.fixed + self.per_aum * np.asarray(aum, dtype="float64")


class Offer(BaseModel):
    """One retention offer."""

    model_config = _strict()
    name: str
    channel: Literal["email", "sms", "app", "letter", "phone", "branch", "advisor"]
    cost: CostModel
    eligibility: str | None = None
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name_ok(cls, value: str) -> str:
        if not NAME_PATTERN.match(value) or value in RESERVED_NAMES:
            raise ValueError(
                "offer names are lower-case identifiers (letters, digits, _) and not "
                f"{sorted(RESERVED_NAMES)}"
            )
        return value

    @field_validator("eligibility")
    @classmethod
    def _expression_ok(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                expression_columns(value)
            except SpecError as exc:
                raise ValueError(str(exc)) from exc
        return value


class CapacityRule(BaseModel):
    """How many customers may (max) or must (min) receive an offer."""

    model_config = _strict()
    offer: str
    max_count: Annotated[int, Field(ge=0)] | None = None
    min_count: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _order(self) -> CapacityRule:
        if self.max_count is not None and self.min_count > self.max_count:
            raise ValueError(f"min_count {self.min_count} exceeds max_count {self.max_count}")
        return self


class SegmentQuota(BaseModel):
    """Bounds on the share of budget spent on, or customers treated in, one segment."""

    model_config = _strict()
    segment: str
    column: str = "segment"
    min_budget_share: Annotated[float, Field(ge=0, le=1)] = 0.0
    max_budget_share: Annotated[float, Field(ge=0, le=1)] = 1.0
    min_count: Annotated[int, Field(ge=0)] = 0
    max_count: Annotated[int, Field(ge=0)] | None = None


class ContactLimit(BaseModel):
    """At most ``max_contacts`` campaign contacts per customer within ``window_days`` days."""

    model_config = _strict()
    max_contacts: Annotated[int, Field(ge=0)]
    window_days: Annotated[int, Field(gt=0)]


class CampaignSpec(BaseModel):
    """A campaign's offers and rules. Money is in ``currency`` units."""

    model_config = _strict()
    name: str
    currency: str = "EUR"
    budget: Annotated[float, Field(gt=0)] | None = None
    holdout_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.1
    holdout_stratify: list[str] = ["segment"]
    do_not_contact: Path | None = None
    require_consent: bool = True
    contact_limit: ContactLimit | None = None
    min_roi: dict[str, float] = {}
    offers: Annotated[list[Offer], Field(min_length=1)]
    capacities: list[CapacityRule] = []
    segment_quotas: list[SegmentQuota] = []

    @model_validator(mode="after")
    def _references(self) -> CampaignSpec:
        names = [o.name for o in self.offers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"offer name(s) listed twice: {', '.join(dupes)}")
        known = set(names)
        for i, rule in enumerate(self.capacities):
            if rule.offer not in known:
                raise ValueError(
                    f"capacities[{i}]: unknown offer {rule.offer!r}; offers are "
                    f"{', '.join(names)}"
                )
        for offer in self.min_roi:
            if offer not in known:
                raise ValueError(f"min_roi: unknown offer {offer!r}; offers are {', '.join(names)}")
        return self

    @property
    def offer_names(self) -> list[str]:
        return [o.name for o in self.offers]

    def offer(self, name: str) -> Offer:
        for o in self.offers:
            if o.name == name:
                return o
        raise SpecError(f"campaign {self.name!r}: unknown offer {name!r}")


def _format_validation_error(exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key (check the spelling)"
        lines.append(f"{where}: {message}")
    return lines


def load_campaign_spec(path: str | Path) -> CampaignSpec:
    """Read and validate a campaign spec YAML; paths inside are relative to the file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: campaign spec not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"{path}: not valid YAML{where}") from exc
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping of settings at the top level")
    try:
        spec = CampaignSpec.model_validate(raw)
    except ValidationError as exc:
        details = "\n".join(f"  - {line}" for line in _format_validation_error(exc))
        raise SpecError(f"{path}: invalid campaign spec:\n{details}") from exc
    if spec.do_not_contact is not None and not spec.do_not_contact.is_absolute():
        spec = spec.model_copy(update={"do_not_contact": path.parent / spec.do_not_contact})
    return spec


def eligible(customers: pd.DataFrame, offer: Offer, *, source: str = "customers") -> np.ndarray:
    """Boolean array: which customers may receive ``offer`` (all when it has no rule)."""
    if offer.eligibility is None:
        return np.ones(len(customers), dtype=bool)
    needed = expression_columns(offer.eligibility)
    missing = sorted(needed - set(customers.columns))
    if missing:
        raise InputError(
            f"{source}: offer {offer.name!r} eligibility {offer.eligibility!r} needs column(s) "
            f"{', '.join(missing)}, which the table lacks"
        )
    where = f"{source}: offer {offer.name!r} eligibility {offer.eligibility!r}"
    text = sorted(c for c in _arithmetic_columns(offer.eligibility)
                  if not pd.api.types.is_numeric_dtype(customers[c]))
    if text:
        raise InputError(f"{where}: does arithmetic on column(s) {', '.join(text)}, which hold "
                         "text; arithmetic (+ - * /) is for number columns")
    try:
        with np.errstate(all="ignore"):
            result = customers.eval(offer.eligibility, engine="python")
    except (ArithmeticError, TypeError, ValueError, KeyError) as exc:
        raise InputError(f"{where}: cannot be evaluated ({type(exc).__name__}: {exc})") from exc
    series = pd.Series(result, index=customers.index)
    if not (pd.api.types.is_bool_dtype(series) or series.isna().all()):
        values = series.dropna()
        if not values.map(lambda v: isinstance(v, bool | np.bool_)).all():
            raise InputError(f"{where}: gives {series.dtype} values, not true/false; write a "
                             "condition such as 'aum >= 1000'")
    # a missing value (e.g. a comparison with an empty cell) means not eligible
    return np.asarray(series.fillna(False), dtype=bool)
