"""A fitted effects model for any campaign table: features, estimator, persistence.

Stored as a folder: ``estimator.pkl`` (the fitted causalml/LightGBM objects, pickled with
joblib), ``model.json`` (metadata and the pickle's HMAC-SHA256 under the model-signing key),
``comparison.csv`` (the learner comparison) and ``report.html`` (Qini curves). causalml's
learners have no text format, so the pickle is unavoidable; it is never unpickled unless its
HMAC verifies under the model-signing key (:func:`uplift.security.keys.model_key`), which
someone able to write the folder does not have: a planted or edited pickle is refused before
any of its bytes are interpreted. With a master key configured the pickle is also stored
encrypted (:mod:`uplift.security.envelope`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

from uplift import __version__
from uplift.effects.estimator import UpliftEstimator
from uplift.effects.money import Money, cost_matrix, net_gains
from uplift.errors import InputError, ModelError, NotFittedError, SchemaError
from uplift.features.table import apply_table, learn_table, output_ids
from uplift.schema import number_problems, rows_text
from uplift.security.keys import key_id, model_key, model_signature, signature_matches

FORMAT = "uplift-effects-model"
FORMAT_VERSION = 3

SIGNED_AS = "uplift effects pickle"


def numeric_matrix(X: pd.DataFrame) -> np.ndarray:
    """Model matrix for causalml: categoricals as integer codes (-1 = missing), floats."""
    columns = []
    for col in X.columns:
        series = X[col]
        if isinstance(series.dtype, pd.CategoricalDtype):
            columns.append(series.cat.codes.to_numpy(dtype=float))
        else:
            columns.append(series.to_numpy(dtype=float))
    return np.column_stack(columns) if columns else np.empty((len(X), 0))


ID_BUCKETS = 1 << 20


def row_keys(ids: pd.Series, arms: pd.Series, outcomes: pd.Series) -> pd.Series:
    """Text key of a logged row: customer id, arm and outcome (rounded to cents)."""
    text = pd.Series(ids.astype(str).str.strip().str.removesuffix(".0").to_numpy())
    values = np.round(pd.to_numeric(pd.Series(np.asarray(outcomes)), errors="coerce")
                      .to_numpy(float), 2)
    return (text + "|" + pd.Series(np.asarray(arms).astype(str)) + "|"
            + pd.Series(values).astype(str))


def _id_buckets(keys: pd.Series) -> np.ndarray:
    """A stable bucket in [0, 2^20) per key (hashed)."""
    hashed = pd.util.hash_pandas_object(pd.Series(keys.to_numpy()), index=False,
                                        hash_key="uplift-rows-0001").to_numpy()
    return (hashed % ID_BUCKETS).astype(np.int64)


def id_bitmap(keys: pd.Series) -> np.ndarray:
    """Which of 2^20 buckets hold a training row: enough to recognise a log the model was
    trained on, too coarse to recover any id (each bucket is shared by many possible rows)."""
    bitmap = np.zeros(ID_BUCKETS, dtype=bool)
    bitmap[_id_buckets(keys)] = True
    return np.packbits(bitmap)          # 128 KiB


def _id_like(series: pd.Series) -> bool:
    """Text or whole numbers, every value present and distinct (more than 20 rows)."""
    n = len(series)
    if n <= 20 or series.isna().any() or series.nunique() != n:
        return False
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return bool(np.all(np.mod(series.to_numpy(dtype=float), 1) == 0))
    return True


class EffectsModel(BaseEstimator):
    """Effects of each arm vs control on one outcome, for a campaign table."""

    def __init__(self, *, treatment: str, control: str, outcome: str,
                 features: list[str] | None = None, propensity: str | None = None,
                 id_col: str | None = None, estimator: UpliftEstimator | None = None,
                 goal: str = "increase", outcome_type: str = "auto",
                 money: Money | None = None):
        self.treatment = treatment
        self.control = control
        self.outcome = outcome
        self.features = features
        self.propensity = propensity
        self.id_col = id_col
        self.estimator = estimator
        self.goal = goal
        self.outcome_type = outcome_type
        self.money = money

    def _reserved(self) -> tuple[str | None, ...]:
        money = getattr(self, "money", None)      # models pickled before money existed
        costs = money.cost_columns() if money is not None else []
        return (self.treatment, self.outcome, self.propensity, self.id_col, *costs)

    def fit(self, table: pd.DataFrame, *, source: str = "table",
            progress: Callable[[str], None] | None = None) -> EffectsModel:
        for role, col in (("treatment", self.treatment), ("outcome", self.outcome),
                          ("propensity", self.propensity), ("id", self.id_col)):
            if col is not None and col not in table.columns:
                raise InputError(f"{source}: {role} column {col!r} not found; columns: "
                                 f"{', '.join(map(str, table.columns[:15]))}")
        if self.money is not None:                  # cost columns checked before fitting
            logged = sorted(set(table[self.treatment].astype(str)) - {str(self.control)})
            cost_matrix(self.money, table, logged, source=source)
        y = pd.to_numeric(table[self.outcome], errors="coerce")
        if y.isna().any():
            raise SchemaError(source, [f"column '{self.outcome}': outcome missing or not a "
                                       f"number in {rows_text(y.isna())}"])
        if problems := number_problems(y, self.outcome):
            raise SchemaError(source, problems)
        frame = table if self.features is None else table[
            [c for c in table.columns if c in self.features or c in self._reserved()]]
        if self.features is not None:
            both = [c for c in self.features if c in self._reserved()]
            if both:
                raise InputError(f"{source}: column(s) {', '.join(both)} named in features "
                                 "also serve as treatment, outcome, propensity, id or cost; "
                                 "a column can have one role only")
            missing = [c for c in self.features if c not in table.columns]
            if missing:
                raise InputError(f"{source}: feature column(s) not found: {', '.join(missing)}")
        label_stub = "__outcome__"
        spec_frame = frame.drop(columns=[c for c in self._reserved() if c], errors="ignore")
        self.spec_ = learn_table(spec_frame.assign(**{label_stub: 0}), label=label_stub,
                                 id_col=None, source=source)
        if self.features is not None:          # columns left out: still find an id among them
            for col in table.columns:
                if col in frame.columns or col in self.spec_.excluded:
                    continue
                self.spec_.excluded[col] = (
                    "id-like (every value distinct)" if _id_like(table[col])
                    else "not among the features given")
        X = numeric_matrix(apply_table(frame, self.spec_, source=source,
                                       allowed_extra=self._reserved()))
        if self.outcome_type not in ("auto", "binary", "continuous"):
            raise InputError(f"outcome type must be auto, binary or continuous, not "
                             f"{self.outcome_type!r}")
        binary = bool(np.isin(y.unique(), [0, 1]).all())
        # a copy of the estimator given: fit never changes its arguments
        est = clone(self.estimator) if self.estimator is not None else UpliftEstimator()
        outcome = self.outcome_type if self.outcome_type != "auto" else (
            "binary" if binary else "continuous")  # a non-binary churn outcome is then an error
        learners = tuple(est.learners)
        if outcome == "continuous" and "forest" in learners:
            learners = tuple(x for x in learners if x != "forest") or ("t",)
        est.set_params(outcome=outcome, control=str(self.control), goal=self.goal,
                       learners=learners)
        prop = None if self.propensity is None else pd.to_numeric(
            table[self.propensity], errors="coerce").to_numpy()
        self.estimator_ = est.fit(X, y.to_numpy(), treatment=table[self.treatment].astype(str)
                                  .to_numpy(), propensity=prop, source=source,
                                  progress=progress)
        if self.id_col is not None and self.id_col in table.columns:
            self.training_rows_ = id_bitmap(row_keys(table[self.id_col], table[self.treatment],
                                                     y))
        if self.money is not None:
            unknown = sorted(set(self.money.costs) - set(self.arms))
            if unknown:
                raise InputError(f"{source}: cost given for arm(s) {', '.join(unknown)} that "
                                 f"the campaign does not have; its offers are "
                                 f"{', '.join(self.arms)}")
            missing = [a for a in self.arms if self.money.costs and a not in self.money.costs]
            if missing:
                raise InputError(f"{source}: no cost given for {', '.join(missing)}")
            cost_matrix(self.money, table, self.arms, source=source)   # checks the columns
        return self

    def trained_on_share(self, ids: pd.Series, arms: pd.Series, outcomes: pd.Series
                         ) -> float | None:
        """Share of logged rows (customer, arm, outcome) that look like rows this model was
        trained on, from a coarse bitmap of its training rows that cannot name anyone: near 1
        for the training log itself, far lower for another campaign (new arms and outcomes)
        or other customers. None when the model has no such record."""
        bitmap = getattr(self, "training_rows_", None)
        if bitmap is None or not len(ids):
            return None
        keys = row_keys(ids, arms, pd.to_numeric(outcomes, errors="coerce"))
        return float(np.unpackbits(bitmap)[_id_buckets(keys)].mean())

    def money_for(self, money: Money | None) -> Money | None:
        """The money settings to use: those given, else the ones stored at fit."""
        return money if money is not None else getattr(self, "money", None)

    def check_fitted(self) -> None:
        """Refuse use before ``fit`` (or ``load``)."""
        if not hasattr(self, "estimator_"):
            raise NotFittedError("the effects model is not fitted")

    @property
    def arms(self) -> list[str]:
        """The offers (arms other than control) the model was fitted on."""
        self.check_fitted()
        return self.estimator_.arms_

    def matrix(self, table: pd.DataFrame, *, source: str = "table") -> np.ndarray:
        return numeric_matrix(apply_table(table, self.spec_, source=source,
                                          allowed_extra=self._reserved()))

    def ids(self, table: pd.DataFrame, *, id_col: str | None = None, source: str = "table"
            ) -> tuple[str, np.ndarray, str]:
        """Id column for outputs: ``id_col``, else the fit's ``id_col``, else the column the fit
        detected as id-like, else ``row`` from 1; with a sentence saying which."""
        self.check_fitted()
        return output_ids(table, named=id_col or self.id_col, spec=self.spec_, source=source)

    def _model_input(self, table: pd.DataFrame, money: Money | None,
                     id_col: str | None = None) -> pd.DataFrame:
        """The table without cost and id columns that are not model features."""
        named = [*(money.cost_columns() if money else []), id_col]
        drop = [c for c in named if c and c in table.columns and c not in self.spec_.features]
        return table.drop(columns=drop) if drop else table

    def predict(self, table: pd.DataFrame, *, source: str = "table", with_se: bool = True,
                money: Money | None = None, id_col: str | None = None) -> pd.DataFrame:
        """Id column (see :meth:`ids`), ``effect_<arm>`` (and ``se_<arm>``) per non-control
        arm, in table order; with money (given or stored at fit) also ``gain_<arm>``: expected
        net gain in currency, ``value * benefit - cost``."""
        self.check_fitted()
        money = self.money_for(money)
        costs = None if money is None else cost_matrix(money, table, self.arms, source=source)
        name, ids, _ = self.ids(table, id_col=id_col, source=source)
        X = self.matrix(self._model_input(table, money, id_col), source=source)
        effects = self.estimator_.predict(X)
        out = pd.DataFrame({name: ids})
        for arm in self.arms:
            out[f"effect_{arm}"] = effects[arm].to_numpy()
        if with_se:
            se = self.estimator_.predict_se(X)
            for arm in self.arms:
                out[f"se_{arm}"] = se[arm].to_numpy()
        if money is not None and costs is not None:
            gains = net_gains(self.estimator_.benefit(effects[self.arms].to_numpy(dtype=float)),
                              money, costs)
            for j, arm in enumerate(self.arms):
                out[f"gain_{arm}"] = gains[:, j]
        return out

    def predict_se_of(self, table: pd.DataFrame, arm_per_row: np.ndarray, *,
                      source: str = "table", id_col: str | None = None) -> pd.DataFrame:
        """``se_<arm>`` per non-control arm, in table order: each row's standard error for
        its own ``arm_per_row`` only (NaN for the other arms and rows without an arm), at a
        fraction of the cost of ``predict(with_se=True)``; the same values where given."""
        self.check_fitted()
        money = self.money_for(None)
        X = self.matrix(self._model_input(table, money, id_col), source=source)
        return self.estimator_.predict_se_of(X, arm_per_row).add_prefix("se_")

    def net_gains(self, effects: np.ndarray, table: pd.DataFrame, money: Money, *,
                  source: str = "table") -> np.ndarray:
        """Expected net gain per row and offer (currency) from predicted effects."""
        costs = cost_matrix(money, table, self.arms, source=source)
        return net_gains(self.estimator_.benefit(effects), money, costs)

    def recommend(self, table: pd.DataFrame, *, z: float = 1.0, source: str = "table",
                  money: Money | None = None, id_col: str | None = None) -> np.ndarray:
        """Arm per row from the policy tree (see :mod:`uplift.effects.policy`); with money
        (given or stored at fit) the arm of highest expected net value, an offer only where
        its net gain over control clears ``z`` standard errors."""
        self.check_fitted()
        if not hasattr(self.estimator_, "policy_"):
            raise ModelError("this effects model has no policy tree (fitted by an older "
                             "uplift); refit it")
        money = self.money_for(money)
        X = self.matrix(self._model_input(table, money, id_col), source=source)
        if money is None:
            return self.estimator_.recommend(X, z=z)
        costs = cost_matrix(money, table, self.arms, source=source)
        return self.estimator_.policy_.predict_net(
            self.estimator_._check_fitted(X), value=money.value, costs=costs, z=z)

    # -- persistence -------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write the model folder atomically: the signed estimator, metadata, comparison and
        report."""
        from io import BytesIO

        self.check_fitted()

        import joblib

        from uplift import io
        from uplift.effects.report import effects_html

        buffer = BytesIO()
        joblib.dump(self, buffer)
        pickled = buffer.getvalue()
        signing = model_key()
        digest = model_signature(pickled, SIGNED_AS, signing)
        with io.replaced_directory(folder, marker="model.json") as stage:
            io.write_bytes(pickled, stage / "estimator.pkl")
            meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
                    "uplift_version": __version__, "estimator_hmac": digest,
                    "signing_key_id": key_id(signing),
                    "treatment": self.treatment, "control": self.control,
                    "outcome": self.outcome, "outcome_type": self.estimator_.outcome,
                    "goal": self.goal,
                    "arms": self.arms, "learner": self.estimator_.learner_,
                    "propensity_estimated": self.estimator_.propensity_estimated_,
                    "features": self.spec_.features, "excluded": self.spec_.excluded,
                    "ate": self.estimator_.ate_,
                    "money": None if self.money is None else self.money.to_json()}
            io.write_json(meta, stage / "model.json")
            io.write_table(self.estimator_.comparison_, stage / "comparison.csv")
            io.write_text(effects_html(self), stage / "report.html")

    @classmethod
    def load(cls, folder: Path) -> EffectsModel:
        import joblib

        meta_path, pkl = folder / "model.json", folder / "estimator.pkl"
        if not meta_path.exists() or not pkl.exists():
            raise ModelError(f"{folder}: not an effects model folder (model.json and "
                             "estimator.pkl expected)")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"{meta_path}: damaged (not JSON: {exc}); retrain the model"
                             ) from exc
        if not isinstance(meta, dict):
            raise ModelError(f"{meta_path}: damaged (not a JSON object); retrain the model")
        if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"{folder}: effects model format {meta.get('format')} v"
                             f"{meta.get('format_version')} (uplift "
                             f"{meta.get('uplift_version')}) is not readable by uplift "
                             f"{__version__}; retrain it")
        from io import BytesIO

        from uplift import io

        pickled = io.read_bytes(pkl)
        if not signature_matches(pickled, SIGNED_AS, meta.get("estimator_hmac")):
            raise ModelError(
                f"{pkl}: not signed with this installation's model key (signed with key "
                f"{meta.get('signing_key_id')}, this one is {key_id(model_key())}), or changed "
                "since it was written; refusing to load it. Retrain the model here, or set "
                "UPLIFT_MODEL_KEY_FILE to the key that signed it")
        from uplift.effects.learners import quiet

        with quiet():
            model = joblib.load(BytesIO(pickled))
        if not isinstance(model, cls):
            raise ModelError(f"{pkl}: not an effects model")
        return model

