"""User parameters (coercion, safety, JSON Schema) and the resources an app run needs."""

from __future__ import annotations

import copy
import re
import shlex
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

from jsonschema import Draft202012Validator

from .render import word_params
from .spec import AppSpec, ParamError

# Values are always shell-quoted when rendered; refusing these too keeps a quoting
# mistake in some template from turning into command execution.
SHELL_METACHARACTERS = "`$;|&<>\\"
MAX_STRING = 65536
TRUE_WORDS = {"true", "yes", "1", "on"}
FALSE_WORDS = {"false", "no", "0", "off"}
PROJECT_PATH_RE = re.compile(r"^@([A-Za-z0-9][A-Za-z0-9._-]{0,63})/(.+)$", re.S)

INT_RESOURCES = ("nodes", "cores", "gpus", "mem_mb", "time_minutes")
POSITIVE_RESOURCES = ("nodes", "cores", "time_minutes")  # the others may be 0 (none / unset)
RESOURCE_KEYS = ("defaults", "maximum", "by_parameter", "gpu_type")
BASE_RESOURCES = {"nodes": 1, "cores": 1, "gpus": 0, "mem_mb": 0, "time_minutes": 60}
RESOURCE_WORDS = {"nodes": "nodes", "cores": "cores", "gpus": "GPUs", "mem_mb": "MB of memory per node",
                  "time_minutes": "minutes"}


@dataclass(frozen=True)
class Resources:
    nodes: int
    cores: int  # total tasks/cores
    gpus: int  # total
    gpu_type: str | None
    mem_mb: int  # per node, 0 = unset
    time_minutes: int


def string_problem(value: str, *, free_text: bool) -> str | None:
    """Why a string value is refused, or None."""
    for ch in value:
        if ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F:
            return f"contains a control character (U+{ord(ch):04X}); newlines, tabs and NUL are refused"
    if len(value) > MAX_STRING:
        return f"is longer than {MAX_STRING} characters"
    if not free_text:
        for ch in value:
            if ch in SHELL_METACHARACTERS:
                return f"contains '{ch}' (shell metacharacters are refused)"
    return None


def path_problem(value: str) -> str | None:
    """Why an input-file path is refused: it must stay inside a workspace."""
    if not value:
        return "is empty; give a file in your workspace"
    problem = string_problem(value, free_text=False)
    if problem:
        return problem
    rest = value
    if value.startswith("@"):
        match = PROJECT_PATH_RE.match(value)
        if not match:
            return "a project workspace path looks like @project/path/to/file"
        rest = match.group(2)
    elif value.startswith("/"):
        return "absolute paths are refused; give a path in your workspace (or @project/path)"
    parts = rest.split("/")
    if ".." in parts:
        return "'..' is refused in input paths"
    if any(part.startswith("-") for part in parts):
        return "a path component starting with '-' is refused (it would read as an option)"
    if rest.startswith("/") or parts[-1] in ("", "."):
        return "must name a file, not a directory"
    return None


def _coerce(name: str, prop: dict, value: Any) -> Any:
    ptype = prop.get("type")
    bad = ParamError(f"parameter {name}: {value!r} is not {'an' if ptype == 'integer' else 'a'} {ptype}")
    if ptype == "string":
        if not isinstance(value, str):
            raise bad
        problem = path_problem(value) if prop.get("x-input") else string_problem(
            value, free_text=prop.get("x-free-text") is True)
        if problem:
            raise ParamError(f"parameter {name}: {problem}")
        return value
    if ptype == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
        raise ParamError(f"parameter {name}: {value!r} is not a boolean (true/false, yes/no, 1/0)")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise bad
    try:  # Decimal parses "1e3", "1000.0" exactly and refuses "0x10"
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, ValueError):
        raise bad from None
    if not number.is_finite():
        raise ParamError(f"parameter {name}: {value!r} is not a finite number")
    if ptype == "integer":
        if number != number.to_integral_value():
            raise bad
        if number.adjusted() > 18:
            raise ParamError(f"parameter {name}: {value!r} is too large")
        return int(number)
    result = float(number)
    if result in (float("inf"), float("-inf")):
        raise ParamError(f"parameter {name}: {value!r} is too large")
    return result


def _in_words(err) -> str:
    value, limit = err.instance, err.validator_value
    words = {
        "minimum": f"{value} is below the minimum {limit}",
        "maximum": f"{value} is above the maximum {limit}",
        "exclusiveMinimum": f"{value} must be greater than {limit}",
        "exclusiveMaximum": f"{value} must be less than {limit}",
        "multipleOf": f"{value} is not a multiple of {limit}",
        "enum": f"{value!r} is not one of {', '.join(map(str, limit)) if isinstance(limit, list) else limit}",
        "const": f"{value!r} must be {limit!r}",
        "minLength": f"{value!r} is shorter than {limit} characters",
        "maxLength": f"is longer than {limit} characters",
        "pattern": f"{value!r} does not match the pattern {limit}",
    }
    return words.get(err.validator, err.message)


def validate_params(spec: AppSpec, values: Mapping[str, object]) -> dict[str, object]:
    """Coerce CLI strings or JSON values per the schema, apply defaults and check everything."""
    props = spec.properties()
    unknown = sorted(str(k) for k in values if k not in props)
    if unknown:
        known = ", ".join(props) or "none"
        raise ParamError(f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                         f"(known: {known})")
    result: dict[str, object] = {}
    for name, prop in props.items():
        value = values.get(name)
        if value is None or (value == "" and prop.get("x-input")):  # an empty file name: not given
            if "default" in prop:
                result[name] = copy.deepcopy(prop["default"])
        else:
            result[name] = _coerce(name, prop, value)
    missing = [n for n in spec.parameters.get("required") or [] if n not in result]
    if missing:
        raise ParamError(f"missing required parameter{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    for name in word_params(spec.template):  # split into arguments at render: refuse what cannot be split
        if isinstance(result.get(name), str):
            try:
                shlex.split(result[name])
            except ValueError as exc:
                raise ParamError(f"parameter {name}: cannot be split into arguments ({exc}); "
                                 "balance the quote marks") from None
    problems = []
    for err in Draft202012Validator(spec.parameters).iter_errors(result):
        where = f"parameter {err.absolute_path[0]}" if err.absolute_path else "parameters"
        problems.append(f"{where}: {_in_words(err)}")
    if problems:
        raise ParamError("; ".join(sorted(set(problems))))
    return result


def same_value(key: Any, value: Any) -> bool:
    """by_parameter keys may come back from JSON as strings ("2", "true")."""
    def text(v: Any) -> str:
        return ("true" if v else "false") if isinstance(v, bool) else str(v)
    return (key == value and isinstance(key, bool) == isinstance(value, bool)) or text(key) == text(value)


def resources_for(spec: AppSpec, params: Mapping[str, object]) -> Resources:
    """Defaults, then by_parameter choices, then x-resource parameters; checked against the maximum."""
    raw = spec.resources
    amounts = {**BASE_RESOURCES, **(raw.get("defaults") or {})}
    chosen_by: dict[str, str] = {}
    for pname, table in (raw.get("by_parameter") or {}).items():
        if pname in params:
            entry = next((v for k, v in table.items() if same_value(k, params[pname])), None)
            for key, amount in (entry or {}).items():
                amounts[key], chosen_by[key] = amount, pname
    for pname, prop in spec.properties().items():
        if prop.get("x-resource") in INT_RESOURCES and pname in params:
            amounts[prop["x-resource"]], chosen_by[prop["x-resource"]] = int(params[pname]), pname
    for key, limit in (raw.get("maximum") or {}).items():
        if amounts[key] > limit:
            who = f"parameter {chosen_by[key]}" if key in chosen_by else "resources"
            raise ParamError(f"{who}: {amounts[key]} {RESOURCE_WORDS[key]} is above the app's maximum {limit}")
    if amounts["cores"] < amounts["nodes"]:
        who = f"parameter {chosen_by['cores']}" if "cores" in chosen_by else "resources"
        raise ParamError(f"{who}: {amounts['cores']} cores cannot spread over {amounts['nodes']} nodes")
    return Resources(nodes=amounts["nodes"], cores=amounts["cores"], gpus=amounts["gpus"],
                     gpu_type=raw.get("gpu_type"), mem_mb=amounts["mem_mb"], time_minutes=amounts["time_minutes"])


def _check_amounts(table: Any, at: str, errors: list, maximum: dict | None) -> None:
    if not isinstance(table, dict):
        errors.append((at, "must be a mapping of nodes, cores, gpus, mem_mb, time_minutes"))
        return
    for key, value in table.items():
        if key not in INT_RESOURCES:
            errors.append((f"{at}.{key}", f"unknown resource (allowed: {', '.join(INT_RESOURCES)})"))
        elif not isinstance(value, int) or isinstance(value, bool) or value < 0 or (
                value == 0 and key in POSITIVE_RESOURCES):
            kind = "a positive integer" if key in POSITIVE_RESOURCES else "a non-negative integer"
            errors.append((f"{at}.{key}", f"must be {kind}, not {value!r}"))
        elif maximum and isinstance(maximum.get(key), int) and value > maximum[key]:
            errors.append((f"{at}.{key}", f"{value} is above the maximum {maximum[key]}"))


def check_resources(res: Any, props: dict) -> list[tuple[str, str]]:
    """Problems in a spec's resources section, as (path, message)."""
    errors: list[tuple[str, str]] = []
    if not isinstance(res, dict):
        return [("resources", "must be a mapping with defaults and maximum")]
    for key in res:
        if key not in RESOURCE_KEYS:
            errors.append((f"resources.{key}", f"unknown key (allowed: {', '.join(RESOURCE_KEYS)})"))
    maximum = res.get("maximum") or {}
    _check_amounts(maximum, "resources.maximum", errors, None)
    _check_amounts(res.get("defaults") or {}, "resources.defaults", errors, maximum if isinstance(maximum, dict) else None)
    gpu_type = res.get("gpu_type")
    if gpu_type is not None and not (isinstance(gpu_type, str) and re.match(r"^[A-Za-z0-9._-]{1,64}$", gpu_type)):
        errors.append(("resources.gpu_type", "must be a GPU model name such as a100"))
    by_param = res.get("by_parameter") or {}
    if not isinstance(by_param, dict):
        return errors + [("resources.by_parameter", "must map a parameter name to {value: resources}")]
    for pname, table in by_param.items():
        at = f"resources.by_parameter.{pname}"
        prop = props.get(pname)
        if not isinstance(prop, dict):
            errors.append((at, f"{pname!r} is not a parameter of this app"))
        elif not isinstance(prop.get("enum"), list):
            errors.append((at, f"parameter {pname!r} needs an enum to choose resources by its value"))
        elif not isinstance(table, dict):
            errors.append((at, "must map each of the parameter's values to resources"))
        else:
            for value, amounts in table.items():
                if not any(same_value(value, member) for member in prop["enum"]):
                    errors.append((f"{at}.{value}", f"{value!r} is not one of the parameter's values {prop['enum']}"))
                _check_amounts(amounts, f"{at}.{value}", errors, maximum if isinstance(maximum, dict) else None)
    return errors
