"""The Spark session of the optional Spark engine (``pip install "uplift[spark]"``)."""

from __future__ import annotations

import os
from pathlib import Path

from uplift.errors import InputError

#: the master when none is named and ``SPARK_MASTER`` is unset: two local cores
DEFAULT_MASTER = "local[2]"


def spark_available() -> bool:
    """Whether PySpark is installed (``pip install "uplift[spark]"``) and a Java runtime is
    on the path or named by ``JAVA_HOME``."""
    import importlib.util
    import shutil

    return importlib.util.find_spec("pyspark") is not None and (
        shutil.which("java") is not None or bool(os.environ.get("JAVA_HOME")))


def spark_session(master: str | None = None, *, app: str = "uplift", threads: int | None = None):
    """A SparkSession for the feature engine: ``master`` (``local[2]``, ``spark://host:7077``,
    ``yarn``, ...), else ``SPARK_MASTER``, else ``local[2]``; UTC, Arrow transfers on.
    An existing session is reused (``getOrCreate``), its master unchanged."""
    import warnings

    # PySpark 4 warns on import that it "does not yet fully support pandas >= 3"; the engine
    # converts pandas 3's Arrow-backed text columns itself (uplift.spark.scoring.plain)
    warnings.filterwarnings("ignore", message=".*PySpark does not yet fully support pandas",
                            category=FutureWarning)
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise InputError('the Spark engine needs PySpark: pip install "uplift[spark]" (and a '
                         "Java 17+ runtime)") from exc
    master = master or os.environ.get("SPARK_MASTER") or DEFAULT_MASTER
    quiet = "ignore:PySpark does not yet fully support pandas:FutureWarning"
    os.environ.setdefault("PYTHONWARNINGS", quiet)           # local Python workers inherit it
    logging = Path(__file__).with_name("log4j2.properties")
    builder = (SparkSession.builder.appName(app).master(master)
               .config("spark.driver.extraJavaOptions",
                       f"-Dlog4j.configurationFile=file:{logging}")
               .config("spark.executorEnv.PYTHONWARNINGS", quiet)
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.ansi.enabled", "true")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.legacy.parquet.nanosAsLong", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.log.level", "ERROR"))
    if master.startswith("local"):
        builder = builder.config("spark.sql.shuffle.partitions",
                                 str(max(2, 2 * (threads or os.cpu_count() or 2))))
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # py4j / JVM start-up errors have no common type
        java = "a Java runtime was found" if spark_available() else \
            "no Java runtime was found: install Java 17+ or set JAVA_HOME"
        raise InputError(f"cannot start Spark (master {master!r}): "
                         f"{str(exc).splitlines()[0]}; check the master (local[N], "
                         f"spark://host:port, yarn, k8s://...; --spark-master or SPARK_MASTER) "
                         f"and that the cluster is reachable; {java}") from exc
    session.sparkContext.setLogLevel("ERROR")
    return session
