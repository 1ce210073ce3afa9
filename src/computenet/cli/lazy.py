"""A module that is imported the first time one of its names is used.

`cnet` registers every command at start-up, so a command module's top-level imports are paid by
`cnet version` too. Operator modules (services, billing, analytics) pull in SQLAlchemy, DuckDB,
pyarrow or matplotlib; naming them through `lazy(...)` defers that cost to the command that runs.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class lazy:  # noqa: N801  (reads like the `import` it replaces)
    def __init__(self, name: str, package: str | None = None) -> None:
        self._name, self._package, self._module = name, package, None

    def _load(self) -> ModuleType:
        if self._module is None:
            self._module = importlib.import_module(self._name, self._package)
        return self._module

    def __getattr__(self, attr: str):
        return getattr(self._load(), attr)
