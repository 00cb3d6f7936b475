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
    fixed: NonNegative = Field(0.0, description="Cost per contacted customer (currency).",
                               examples=[24.0])
    per_aum: NonNegative = Field(0.0, description="Extra cost per unit of the customer's AUM "
                                 "(currency per currency).", examples=[0.000625])
    aum_column: str = Field("aum", description="Customer column holding the AUM.",
                            examples=["aum"])

    def cost(self, aum: np.ndarray | pd.Series | float | None = None) -> np.ndarray | float:
        """Cost in currency for each customer's AUM (AUM is ignored when ``per_aum`` is 0)."""
        if self.per_aum == 0 or aum is None:
            return self.fixed if aum is None else np.full(np.shape(aum), self.fixed)
        return self.fixed + self.per_aum * np.asarray(aum, dtype="float64")


class Offer(BaseModel):
    """One retention offer."""

    model_config = _strict()
    name: str = Field(description="Offer name: lower-case letters, digits and _; must match "
                      "an arm of the past campaign.", examples=["fee_waiver"])
    channel: Literal["email", "sms", "app", "letter", "phone", "branch", "advisor"] = Field(
        description="How the offer reaches the customer (shown in the call list).",
        examples=["app"])
    cost: CostModel = Field(description="Cost per contacted customer: fixed + per_aum x AUM "
                            "(see `cost` keys).", examples=[{"fixed": 24.0}])
    eligibility: str | None = Field(None, description="Who may get it: an expression over "
                                    "customer columns (names, numbers, strings, comparisons, "
                                    "and/or/not, + - * /, in [...]); none = everyone.",
                                    examples=["aum >= 100000 and segment != 'silent'"])
    description: str = Field("", description="Plain-language offer text for the call list.",
                             examples=["account and card fees waived for 6 months"])

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
    offer: str = Field(description="Offer the rule limits.", examples=["advisor_visit"])
    max_count: Annotated[int, Field(ge=0)] | None = Field(
        None, description="At most this many selected customers get the offer.",
        examples=[400])
    min_count: Annotated[int, Field(ge=0)] = Field(
        0, description="At least this many selected customers get the offer.", examples=[50])

    @model_validator(mode="after")
    def _order(self) -> CapacityRule:
        if self.max_count is not None and self.min_count > self.max_count:
            raise ValueError(f"min_count {self.min_count} exceeds max_count {self.max_count}")
        return self


class SegmentQuota(BaseModel):
    """Bounds on the share of budget spent on, or customers treated in, one segment."""

    model_config = _strict()
    segment: str = Field(description="Segment the quota applies to.",
                         examples=["young_retail"])
    column: str = Field("segment", description="Customer column holding the segment.",
                        examples=["segment"])
    min_budget_share: Annotated[float, Field(ge=0, le=1)] = Field(
        0.0, description="At least this share of the budget is spent on the segment "
        "(scales with the budget, also in the budget curve).", examples=[0.1])
    max_budget_share: Annotated[float, Field(ge=0, le=1)] = Field(
        1.0, description="At most this share of the budget is spent on the segment.",
        examples=[0.5])
    min_count: Annotated[int, Field(ge=0)] = Field(
        0, description="At least this many selected customers from the segment (the budget "
        "curve drops it at budgets too small to meet it, and says so).", examples=[2000])
    max_count: Annotated[int, Field(ge=0)] | None = Field(
        None, description="At most this many selected customers from the segment.",
        examples=[5000])


class ContactLimit(BaseModel):
    """At most ``max_contacts`` campaign contacts per customer within ``window_days`` days."""

    model_config = _strict()
    max_contacts: Annotated[int, Field(ge=0)] = Field(
        description="Customers with this many contacts in the window are not contacted.",
        examples=[2])
    window_days: Annotated[int, Field(gt=0)] = Field(
        description="Window before the planning date (days).", examples=[90])


class CampaignSpec(BaseModel):
    """A campaign's offers and rules. Money is in ``currency`` units."""

    model_config = _strict()
    name: str = Field(description="Campaign name (reports, manifests).",
                      examples=["retention_demo"])
    currency: str = Field("EUR", description="Currency of every amount.", examples=["EUR"])
    budget: Annotated[float, Field(gt=0)] | None = Field(
        None, description="Budget (currency) for the selection (contacted + held out); "
        "`--budget` overrides it.", examples=[500000])
    holdout_fraction: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.1, description="Share of the selected customers held out (not contacted) to measure "
        "the campaign.", examples=[0.1])
    holdout_stratify: list[str] = Field(
        ["segment"], description="Columns the holdout is drawn within (with the offer).",
        examples=[["segment"]])
    do_not_contact: Path | None = Field(
        None, description="Table with a customer_id column never to contact (path relative "
        "to the spec).", examples=["dnc.csv"])
    require_consent: bool = Field(
        True, description="Contact only customers whose marketing_consent is true.",
        examples=[True])
    contact_limit: ContactLimit | None = Field(
        None, description="Skip customers contacted too often recently; needs a contact "
        "history (`plan --contacts FILE`, `allocate --contacts FILE --as-of DATE`).",
        examples=[{"max_contacts": 2, "window_days": 90}])
    min_roi: dict[str, float] = Field(
        {}, description="Per offer, the least expected net gain / cost to use it.",
        examples=[{"advisor_visit": 1.0}])
    offers: Annotated[list[Offer], Field(min_length=1)] = Field(
        description="The offers (see `offers[]` keys).",
        examples=[[{"name": "fee_waiver", "channel": "app", "cost": {"fixed": 24.0}}]])
    capacities: list[CapacityRule] = Field(
        [], description="Per-offer count limits (see `capacities[]` keys).",
        examples=[[{"offer": "advisor_visit", "max_count": 400}]])
    segment_quotas: list[SegmentQuota] = Field(
        [], description="Per-segment spending shares and counts (see `segment_quotas[]` "
        "keys).", examples=[[{"segment": "young_retail", "min_count": 2000}]])

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


SPEC_SECTIONS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("top level", CampaignSpec), ("offers[]", Offer), ("cost", CostModel),
    ("capacities[]", CapacityRule), ("segment_quotas[]", SegmentQuota),
    ("contact_limit", ContactLimit))



def offer_eligibility(customers: pd.DataFrame, spec: CampaignSpec, *,
                      source: str = "customers") -> dict[str, np.ndarray]:
    """offer name -> which rows of ``customers`` may receive it (:func:`eligible`)."""
    return {offer.name: eligible(customers, offer, source=source) for offer in spec.offers}

def _example(value: object) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1000).strip()
    return text.removesuffix("...").strip().replace("|", "\\|")


def spec_reference() -> str:
    """Markdown reference of every campaign spec key (type, default, meaning, example),
    generated from the pydantic models so the documentation cannot drift from the code."""
    out = []
    for title, model in SPEC_SECTIONS:
        out.append(f"**{title}**\n")
        out.append("| key | required | default | meaning | example |")
        out.append("|---|---|---|---|---|")
        for key, info in model.model_fields.items():
            required = "yes" if info.is_required() else "no"
            default = "" if info.is_required() else _example(
                info.get_default(call_default_factory=True))
            example = _example(info.examples[0]) if info.examples else ""
            out.append(f"| `{key}` | {required} | {default and f'`{default}`'} | "
                       f"{info.description or ''} | `{key}: {example}` |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
