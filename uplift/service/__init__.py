"""The online service (`uplift serve`): a FastAPI app over a SQLAlchemy store.

``api`` routes, ``store``/``schema`` the store and its Alembic migrations, ``auth`` tokens
and roles, ``events`` incoming events, ``online`` online features (the registry's SQL
evaluated with NumPy on one customer's rows), ``history`` customers' events in memory,
``auditing`` request entries in the audit log, ``scoring`` re-scoring and alerts,
``webhooks`` signed deliveries, ``jobs`` plans as background jobs, ``metrics`` Prometheus.
FastAPI and SQLAlchemy are the ``serve`` extra: import this package's modules only inside the
service.
"""
