"""Customer features from event logs, as of a date (DuckDB SQL over Parquet/CSV)."""

from uplift.features.build import FeatureInputs, build_features, write_features
from uplift.features.registry import FEATURES, registry_frame

__all__ = ["FEATURES", "FeatureInputs", "build_features", "registry_frame", "write_features"]
