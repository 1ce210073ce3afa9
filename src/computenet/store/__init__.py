"""Persistence: SQLAlchemy 2 models, Alembic migrations, sessions."""

# models.py defines the base and the core tables, then imports the other model modules
# (admin_models, auth_models, ...), which import it back: loading it first, whichever of them a
# process asks for first, keeps that cycle in the one order that works
from . import models  # noqa: E402,F401
