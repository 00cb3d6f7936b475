"""The churn risk model: LightGBM, out-of-time validation, calibration, reasons, tiers.

Fitting (``ChurnModel.fit``):

1. validation rows: with a time column holding several snapshots, the latest snapshot
   (out-of-time); otherwise a stratified random ``validation_share`` of rows;
2. the validation rows are split in half: the *calibration* half stops boosting early and fits
   the calibrator, the *evaluation* half is only used for the reported figures;
3. the calibrator, isotonic or Platt (logistic on the log-odds), is the one with the lower Brier
   score in 3-fold cross-validation on the calibration half; the saved model refits it on all
   validation rows.

The reported figures come from that booster (trained on the training rows only). The saved
model is then refit on *all* rows (``refit=True``, the default): boosting rounds = the early-
stopped count scaled by sqrt(rows / training rows), and the calibrator (same method) fitted on
3-fold out-of-fold scores, so its probabilities match a booster that never saw those rows.
The reported figures are therefore slightly conservative for the saved model.
A model is stored as a folder: ``booster.txt`` (LightGBM's own text format), ``model.json``
(metadata, no code), ``validation.json`` and ``validation.html``. Nothing is unpickled.
With a master key configured ``booster.txt`` is stored encrypted (read back transparently).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from uplift import __version__
from uplift.churn.metrics import churn_report
from uplift.churn.reasons import (
    group_features,
    load_reason_rules,
    symptom_signal,
    symptoms,
    top_reasons,
)
from uplift.config import assign_tiers
from uplift.errors import InputError, ModelError, NotFittedError
from uplift.features.table import (
    TableSpec,
    apply_table,
    binary_label,
    learn_table,
    model_inputs,
    output_ids,
)
from uplift.schema import MAX_ABS_VALUE, parse_date_column
from uplift.security.keys import model_signature, signature_matches

FORMAT = "uplift-churn-model"
FORMAT_VERSION = 2
SIGNED_AS = "uplift churn booster"
SCORE_CHUNK = 100_000


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


class Calibrator:
    """Monotone map from raw model probability to calibrated probability."""

    def __init__(self, method: str, params: dict):
        self.method = method
        self.params = params

    @classmethod
    def fit(cls, method: str, raw: np.ndarray, y: np.ndarray) -> Calibrator:
        if method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
            return cls("isotonic", {"x": iso.X_thresholds_.tolist(),
                                    "y": iso.y_thresholds_.tolist()})
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e6).fit(_logit(raw)[:, None], y)
        return cls("platt", {"a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])})

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        if self.method == "isotonic":
            # isotonic steps tie many customers; a negligible raw-score term (1e-6) breaks the
            # ties so the ranking (and AUC) of the booster is kept
            return np.clip(np.interp(raw, self.params["x"], self.params["y"]) + 1e-6 * raw,
                           0.0, 1.0)
        z = self.params["a"] * _logit(raw) + self.params["b"]
        return 1.0 / (1.0 + np.exp(-z))


def choose_calibrator(raw: np.ndarray, y: np.ndarray, seed: int) -> tuple[str, dict]:
    """Pick isotonic or Platt by 3-fold cross-validated Brier score."""
    from sklearn.model_selection import StratifiedKFold

    scores = {}
    for method in ("isotonic", "platt"):
        errors = []
        folds = StratifiedKFold(3, shuffle=True, random_state=seed)
        for fit_idx, test_idx in folds.split(raw, y):
            cal = Calibrator.fit(method, raw[fit_idx], y[fit_idx])
            errors.append(np.mean((cal(raw[test_idx]) - y[test_idx]) ** 2))
        scores[method] = float(np.mean(errors))
    return min(scores, key=scores.get), scores


class ChurnModel(BaseEstimator):
    """Gradient-boosted churn risk with calibrated probabilities, reasons and tiers."""

    def __init__(
        self, *, n_estimators: int = 800, learning_rate: float = 0.04, num_leaves: int = 15,
        min_child_samples: int = 40, subsample: float = 0.8, colsample_bytree: float = 0.5,
        reg_lambda: float = 5.0, validation_share: float = 0.3,
        tiers: dict[str, float] | None = None, threads: int = 1, random_state: int = 0,
        reasons_path: Path | None = None, refit: bool = True, calibration_folds: int = 3,
        reasons_from: float | None = None,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.validation_share = validation_share
        self.tiers = tiers
        self.threads = threads
        self.random_state = random_state
        self.reasons_path = reasons_path
        self.refit = refit
        self.calibration_folds = calibration_folds
        self.reasons_from = reasons_from

    # -- fitting ---------------------------------------------------------------------------
    def _params(self) -> dict:
        return {
            "objective": "binary", "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves, "min_child_samples": self.min_child_samples,
            "subsample": self.subsample, "subsample_freq": 1,
            "colsample_bytree": self.colsample_bytree, "reg_lambda": self.reg_lambda,
            "num_threads": self.threads, "seed": self.random_state, "deterministic": True,
            "force_row_wise": True, "verbose": -1,
        }

    def _split(self, frame: pd.DataFrame, y: np.ndarray, time_col: str | None,
               rng: np.random.Generator, source: str) -> tuple[np.ndarray, str]:
        if time_col is not None:
            if time_col not in frame.columns:
                raise InputError(f"time column {time_col!r} is not a column of the table")
            times = parse_date_column(frame[time_col], time_col, source)
            if times.nunique() >= 2:
                latest = times == times.max()
                if y[latest.to_numpy()].min() == y[latest.to_numpy()].max():
                    raise InputError(f"{source}: the latest snapshot ({times.max().date()}) has "
                                     "only one class in the label; cannot validate out of time")
                return latest.to_numpy(), f"out-of-time: latest snapshot {times.max().date()}"
        valid = np.zeros(len(y), dtype=bool)
        for cls in (0, 1):
            idx = np.flatnonzero(y == cls)
            take = rng.permutation(idx)[: max(1, int(round(len(idx) * self.validation_share)))]
            valid[take] = True
        return valid, f"stratified random {self.validation_share:.0%} of rows"

    def fit(self, frame: pd.DataFrame, *, label: str, id_col: str | None = None,
            time_col: str | None = None, source: str = "table") -> ChurnModel:
        """Fit on a table with a binary ``label`` column (one row per customer and snapshot)."""
        import lightgbm as lgb

        if label not in frame.columns:
            raise InputError(f"{source}: label column {label!r} not found; columns: "
                             f"{', '.join(map(str, frame.columns[:15]))}")
        if id_col is not None and id_col not in frame.columns:
            raise InputError(f"{source}: id column {id_col!r} not found")
        y = binary_label(frame[label], source=source, column=label)
        if min(np.bincount(y, minlength=2)) < 10:
            raise InputError(f"{source}: column {label!r} needs at least 10 rows of each class")
        self.spec_ = learn_table(frame, label=label, id_col=id_col, time_col=time_col,
                                 source=source)
        X = apply_table(frame, self.spec_, source=source, allowed_extra=(label, id_col,
                                                                          time_col))
        rng = np.random.default_rng(self.random_state)
        valid, self.validation_scheme_ = self._split(frame, y, time_col, rng, source)
        valid_idx = np.flatnonzero(valid)
        calib_mask = np.zeros(len(y), dtype=bool)
        for cls in (0, 1):
            idx = valid_idx[y[valid_idx] == cls]
            calib_mask[rng.permutation(idx)[: len(idx) // 2]] = True
        eval_mask = valid & ~calib_mask
        train = ~valid
        model = lgb.train(
            self._params(), lgb.Dataset(X[train], y[train]), num_boost_round=self.n_estimators,
            valid_sets=[lgb.Dataset(X[calib_mask], y[calib_mask])],
            callbacks=[lgb.early_stopping(50, verbose=False)],
        )
        raw = model.predict(X, num_iteration=model.best_iteration)
        method, cv_brier = choose_calibrator(raw[calib_mask], y[calib_mask], self.random_state)
        held = Calibrator.fit(method, raw[calib_mask], y[calib_mask])
        rounds = int(model.best_iteration or self.n_estimators)
        if self.refit:
            self.booster_, self.calibrator_ = self._refit_all(X, y, rounds, train.sum(), method)
        else:
            self.booster_ = model
            self.calibrator_ = Calibrator.fit(method, raw[valid], y[valid])
        self.label_, self.id_col_, self.time_col_ = label, id_col, time_col
        self.tiers_ = dict(self.tiers or {"red": 0.30, "amber": 0.10})
        rules = load_reason_rules(self.reasons_path)
        self.feature_reasons_ = group_features(self.spec_.features, rules)
        self.symptoms_ = sorted(symptoms(rules))
        risk_eval = held(raw[eval_mask])
        self.validation_ = {
            "scheme": self.validation_scheme_,
            "rows": {"train": int(train.sum()), "calibration": int(calib_mask.sum()),
                     "evaluation": int(eval_mask.sum())},
            "boosting_rounds": rounds,
            "final_model": ("refit on all rows; calibrator on 3-fold out-of-fold scores"
                            if self.refit else "trained on the training rows only"),
            "calibration_method": method,
            "calibration_cv_brier": cv_brier,
            "evaluation": churn_report(y[eval_mask], risk_eval,
                                       assign_tiers(risk_eval, self.tiers_)),
            "raw_evaluation_auc": churn_report(y[eval_mask], raw[eval_mask])["roc_auc"],
            "excluded_columns": self.spec_.excluded,
        }
        return self

    def _refit_all(self, X: pd.DataFrame, y: np.ndarray, rounds: int, n_train: int,
                   method: str):
        """Final booster on every row; calibrator on cross-fitted (out-of-fold) scores."""
        import lightgbm as lgb
        from sklearn.model_selection import StratifiedKFold

        def train(rows: np.ndarray, n_rounds: int):
            return lgb.train(self._params(), lgb.Dataset(X.iloc[rows], y[rows]),
                             num_boost_round=n_rounds)

        scale = lambda n: max(1, int(round(rounds * (n / max(n_train, 1)) ** 0.5)))  # noqa: E731
        oof = np.zeros(len(y))
        folds = StratifiedKFold(self.calibration_folds, shuffle=True,
                                random_state=self.random_state)
        for fit_idx, out_idx in folds.split(X, y):
            oof[out_idx] = train(fit_idx, scale(len(fit_idx))).predict(X.iloc[out_idx])
        booster = train(np.arange(len(y)), scale(len(y)))
        return booster, Calibrator.fit(method, oof, y)

    # -- scoring ---------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "booster_"):
            raise NotFittedError("the churn model is not fitted")

    def predict_proba(self, frame: pd.DataFrame, *, source: str = "table") -> np.ndarray:
        """Calibrated probability of churning within the label's horizon."""
        self._check_fitted()
        X = apply_table(frame, self.spec_, source=source,
                        allowed_extra=(self.label_, self.id_col_, self.time_col_))
        return self.calibrator_(self.booster_.predict(self._matrix(X)))

    def _matrix(self, X: pd.DataFrame):
        """What the booster predicts from: the NumPy matrix when every column is a number
        (same values, columns in training order; LightGBM's pandas conversion costs ~3 ms a
        call, most of an online score), else the frame (categorical codes need pandas)."""
        return X if self.spec_.categorical else X.to_numpy(dtype="float64")

    def score(self, frame: pd.DataFrame, *, top_k: int = 3, source: str = "table",
              id_col: str | None = None) -> pd.DataFrame:
        """Columns: id, churn_risk, tier, reason_1..reason_k, exit_signal (in chunks).

        The id column is ``id_col``, else the fit's, else the column the fit detected as
        id-like, else ``row`` (1, 2, ...); ``id_note_`` says which.

        Reasons are given to customers whose risk reaches ``reasons_from`` (default: the
        lowest tier threshold, i.e. amber and red); lower-risk rows get empty reasons.
        """
        self._check_fitted()
        id_name, ids, self.id_note_ = output_ids(frame, named=id_col or self.id_col_,
                                                 spec=self.spec_, source=source)
        X = apply_table(frame, self.spec_, source=source,
                        allowed_extra=(self.label_, id_name, self.time_col_))
        risk, tier, reason, signal = self.score_inputs(X, top_k=top_k)
        out = pd.DataFrame({"churn_risk": risk, "tier": tier}, index=frame.index)
        out.insert(0, id_name, ids)
        for k in range(top_k):
            out[f"reason_{k + 1}"] = reason[:, k]
        out["exit_signal"] = signal
        return out.reset_index(drop=True)

    def score_inputs(self, X: pd.DataFrame, *, top_k: int = 3
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What :meth:`score` returns, as arrays, from model inputs (``apply_table``'s
        output, or :meth:`inputs_of`'s): churn risk (rounded to 6 decimals), tier, reasons
        (rows x ``top_k``, "" where none) and exit signal."""
        risk = np.concatenate([self.calibrator_(self.booster_.predict(
            self._matrix(X.iloc[s:s + SCORE_CHUNK])))
                               for s in range(0, len(X), SCORE_CHUNK)]) if len(X) else \
            np.array([])
        # reasons are computed for customers at or above the reasons threshold (default: the
        # lowest non-green tier): exact TreeSHAP is the expensive step and nobody acts on the
        # reasons of a low-risk customer
        threshold = self.reasons_from if self.reasons_from is not None else min(
            self.tiers_.values(), default=0.0)
        explain = np.flatnonzero(risk >= threshold)
        reason = np.full((len(X), top_k), "", dtype=object)
        signal = np.full(len(X), "", dtype=object)
        for start in range(0, len(explain), SCORE_CHUNK):
            rows = explain[start:start + SCORE_CHUNK]
            part = X.iloc[rows]
            contrib = np.asarray(self.booster_.predict(self._matrix(part), pred_contrib=True))
            reason[rows] = top_reasons(contrib, part, self.feature_reasons_,
                                       self.spec_.medians, top_k, exclude=set(self.symptoms_))
            signal[rows] = symptom_signal(contrib, list(part.columns), self.feature_reasons_,
                                          set(self.symptoms_))
        return np.round(risk, 6), assign_tiers(risk, self.tiers_), reason, signal

    def inputs_of(self, matrix: np.ndarray, columns: list[str]) -> pd.DataFrame | None:
        """Model inputs from a float matrix whose columns are ``columns`` (a feature table as
        an array: the online service's path, without a DataFrame per call); None when the
        model needs more than plain numbers or a value is out of range (then
        :meth:`score` on a table names the problem)."""
        if self.spec_.categorical or self.spec_.dates:
            return None
        key = tuple(columns)
        cached = getattr(self, "_input_positions", None)
        if cached is None or cached[0] != key:
            where = {c: i for i, c in enumerate(columns)}
            missing = [c for c in self.spec_.features if c not in where]
            if missing:
                return None
            cached = self._input_positions = (key, np.array(
                [where[c] for c in self.spec_.features], dtype=np.int64))
        inputs = matrix[:, cached[1]]
        with np.errstate(invalid="ignore"):
            if (np.abs(inputs) > MAX_ABS_VALUE).any():
                return None
        return pd.DataFrame(model_inputs(inputs), columns=list(self.spec_.features),
                            copy=False)

    # -- persistence -----------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write the model folder atomically (booster text + JSON metadata + report)."""
        from uplift import io
        from uplift.churn.report import validation_html

        self._check_fitted()
        meta = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "uplift_version": __version__,
            "label": self.label_, "id_col": self.id_col_, "time_col": self.time_col_,
            "spec": self.spec_.to_json(), "tiers": self.tiers_,
            "calibrator": {"method": self.calibrator_.method,
                           "params": self.calibrator_.params},
            "feature_reasons": self.feature_reasons_, "symptoms": self.symptoms_,
            "params": self._params(),
            "init": {k: (str(v) if isinstance(v, Path) else v)
                     for k, v in self.get_params().items()},
        }
        booster = self.booster_.model_to_string().encode("utf-8")
        meta["booster_hmac"] = model_signature(booster, SIGNED_AS)
        with io.replaced_directory(folder, marker="model.json") as stage:
            io.write_bytes(booster, stage / "booster.txt")
            io.write_json(meta, stage / "model.json")
            io.write_json(self.validation_, stage / "validation.json")
            io.write_text(validation_html(self.validation_), stage / "validation.html")

    @classmethod
    def load(cls, folder: Path) -> ChurnModel:
        """Read a model folder written by :meth:`save`; refuses unknown formats/versions."""
        import lightgbm as lgb

        from uplift import io

        meta_path = folder / "model.json"
        if not meta_path.exists() or not (folder / "booster.txt").exists():
            raise ModelError(f"{folder}: not a churn model folder (model.json and booster.txt "
                             "expected)")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"{meta_path}: damaged model metadata ({exc})") from exc
        if meta.get("format") != FORMAT:
            raise ModelError(f"{folder}: not a churn model (format {meta.get('format')!r})")
        if meta.get("format_version") != FORMAT_VERSION:
            raise ModelError(
                f"{folder}: model format version {meta.get('format_version')} was written by "
                f"uplift {meta.get('uplift_version')}; this uplift {__version__} reads version "
                f"{FORMAT_VERSION}. Retrain the model with this version.")
        init = dict(meta.get("init") or {"tiers": meta["tiers"]})
        if init.get("reasons_path") is not None:
            init["reasons_path"] = Path(init["reasons_path"])
        model = cls(**init)
        booster = io.read_bytes(folder / "booster.txt")
        if not signature_matches(booster, SIGNED_AS, meta.get("booster_hmac")):
            # checked before LightGBM parses it: a damaged booster can abort the process
            raise ModelError(f"{folder / 'booster.txt'}: damaged, changed since it was "
                             "written, or signed with another installation's model key; "
                             "retrain the model (or set UPLIFT_MODEL_KEY_FILE to the key that "
                             "signed it)")
        try:
            text = booster.decode("utf-8")
            model.booster_ = lgb.Booster(model_str=text)
        except (lgb.basic.LightGBMError, UnicodeDecodeError) as exc:
            raise ModelError(f"{folder / 'booster.txt'}: damaged model file ({exc})") from exc
        model.spec_ = TableSpec.from_json(meta["spec"])
        model.calibrator_ = Calibrator(meta["calibrator"]["method"],
                                       meta["calibrator"]["params"])
        model.label_, model.id_col_ = meta["label"], meta["id_col"]
        model.time_col_ = meta["time_col"]
        model.tiers_ = meta["tiers"]
        model.feature_reasons_ = meta["feature_reasons"]
        model.symptoms_ = meta.get("symptoms", [])
        validation = folder / "validation.json"
        model.validation_ = json.loads(validation.read_text()) if validation.exists() else {}
        return model
