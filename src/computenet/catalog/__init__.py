"""The application catalogue: app specs, parameter checks and sandboxed script rendering.

Pure code: no database and no network. See spec.py for the spec format.
"""

from .builtin import builtin_specs
from .params import Resources, resources_for, validate_params
from .render import render
from .spec import AppSpec, Environment, ParamError, SpecError, load_spec

__all__ = ["AppSpec", "Environment", "ParamError", "Resources", "SpecError", "builtin_specs", "load_spec",
           "render", "resources_for", "validate_params"]
