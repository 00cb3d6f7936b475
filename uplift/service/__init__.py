"""The online service (`uplift serve`): a FastAPI app over a SQLAlchemy store.

``api`` routes, ``store``/``schema`` the store and its Alembic migrations, ``auth`` tokens
and roles, ``events`` incoming events, ``online`` online features (the batch SQL on one
customer's slice), ``scoring`` re-scoring and alerts, ``webhooks`` signed deliveries,
``jobs`` plans as background jobs, ``metrics`` Prometheus. FastAPI and SQLAlchemy are the
``serve`` extra: import this package's modules only inside the service.
"""
