"""The built-in catalogue: one YAML spec per app in the builtin/ folder next to this module."""

from __future__ import annotations

import functools
from importlib import resources

from .spec import AppSpec, load_spec


@functools.cache
def _load() -> tuple[AppSpec, ...]:
    folder = resources.files(__package__).joinpath("builtin")
    specs = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            spec = load_spec(entry.read_bytes())
            # the file name is the app's name, so a renamed file cannot shadow another app
            if entry.name != f"{spec.name}.yaml":
                raise RuntimeError(f"built-in spec {entry.name} holds the app {spec.name!r}")
            specs.append(spec)
    return tuple(specs)


def builtin_specs() -> list[AppSpec]:
    """The built-in apps, loaded and validated once per process."""
    return list(_load())
