"""Application specifications: the model, YAML loading and validation.

A spec is checked completely before it is accepted: every problem is collected with
a field path (``resources.defaults.cores``) so an author can fix them all at once.
Parameters are a JSON Schema object of scalar properties; ComputeNet's own keywords:
``x-input: true`` (a workspace file, staged into the job directory), ``x-free-text:
true`` (shell metacharacters allowed; still quoted), ``x-resource: cores`` (an integer
that sets that resource) and ``x-help`` (texts in other languages).
"""

from __future__ import annotations

import copy
import json
import keyword
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,31}$")
PARAM_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
ENV_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
TAG_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MODULE_RE = re.compile(r"^[A-Za-z0-9._/+-]{1,128}$")  # printed unquoted after `module load`
CONTAINER_RE = re.compile(r"^[A-Za-z0-9._/:@+-]{1,256}$")
VARIABLE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")  # no leading "_": the sandbox hides those
CATEGORIES = ("general", "molecular-dynamics", "cfd", "quantum-chemistry", "ai", "notebook", "other")
LANGUAGES = ("en", "zh")
STAND_IN_DELIMITER = "__CNET_STAND_IN__"
MAX_SPEC_BYTES = 1 << 20

REQUIRED_KEYS = ("name", "version", "category", "title", "description", "parameters", "resources",
                 "template", "environments")
OPTIONAL_KEYS = ("outputs", "runtime_hint_minutes", "interactive")
# kind interactive: the job starts a server the platform proxies (services/sessions); the platform
# adds the preamble that picks the port, holds the one-time secret and reports where it listens
INTERACTIVE_TYPES = ("jupyterlab", "shell", "desktop")
INTERACTIVE_KEYS = ("type", "probe")
ENV_KEYS = ("name", "clusters", "tags", "modules", "container", "variables", "stand_in")
SCALAR_TYPES = ("string", "integer", "number", "boolean")
# template context names and Jinja literals a parameter may not shadow
RESERVED_PARAMS = {"params", "resources", "env", "app", "loop", "self", "caller", "varargs", "kwargs",
                   "range", "dict", "namespace", "true", "false", "none"}
RESERVED_VARIABLES = {"name", "container", "modules"}


class SpecError(ValueError):
    """A spec (or parameters) is invalid; ``errors`` lists (field path, message)."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = list(errors)
        super().__init__("; ".join(f"{path}: {msg}" for path, msg in self.errors))


class ParamError(ValueError):
    """A user's parameter value is invalid; the message names the parameter."""


@dataclass(frozen=True)
class Environment:
    name: str
    clusters: tuple[str, ...] = ("*",)
    tags: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    container: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    stand_in: str | None = None

    def matches(self, cluster: str, tags: Iterable[str]) -> bool:
        return ("*" in self.clusters or cluster in self.clusters) and set(self.tags) <= set(tags)


@dataclass(frozen=True)
class AppSpec:
    name: str
    version: str
    category: str
    title: dict[str, str]
    description: dict[str, str]
    parameters: dict
    resources: dict
    template: str
    environments: tuple[Environment, ...]
    outputs: tuple[str, ...]
    runtime_hint_minutes: int | None
    source: dict
    interactive: dict | None = None  # {"type": jupyterlab|shell|desktop, "probe": path under the base URL}

    @property
    def kind(self) -> str:
        return "interactive" if self.interactive else "batch"

    def properties(self) -> dict[str, dict]:
        return self.parameters.get("properties") or {}

    def input_parameters(self) -> list[str]:
        return [name for name, prop in self.properties().items() if prop.get("x-input") is True]

    def environment_for(self, cluster: str, tags: Iterable[str]) -> Environment | None:
        tags = {tags} if isinstance(tags, str) else set(tags)  # one tag given as a string is not its letters
        return next((env for env in self.environments if env.matches(cluster, tags)), None)


class _Errors(list):
    def add(self, path: str, msg: str) -> None:
        self.append((path, msg))


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without anchors and aliases: a few hundred bytes of nested aliases expand to
    gigabytes ("billion laughs"), and an app spec never needs them."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in an app spec",
                                              event.start_mark)
        return super().compose_node(parent, index)


def _parse_source(source: str | bytes | dict) -> dict:
    if isinstance(source, dict):
        return source
    if len(source) > MAX_SPEC_BYTES:
        raise SpecError([("<spec>", f"is larger than {MAX_SPEC_BYTES} bytes")])
    try:
        data = yaml.load(source, Loader=_NoAliasLoader)  # bytes: YAML detects UTF-8/16 itself
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise SpecError([("<spec>", f"{where}not valid YAML ({getattr(exc, 'problem', None) or exc})")]) from None
    if not isinstance(data, dict):
        raise SpecError([("<spec>", "must be a mapping of name, version, parameters, template, ...")])
    return data


def _check_text(data: dict, key: str, errors: _Errors) -> None:
    value = data.get(key)
    if not isinstance(value, dict):
        errors.add(key, "must be a mapping with 'en' and 'zh' texts")
        return
    for lang in LANGUAGES:
        if not isinstance(value.get(lang), str) or not value[lang].strip():
            errors.add(f"{key}.{lang}", "is required (a non-empty string)")
    for lang, text in value.items():
        if lang not in LANGUAGES and not isinstance(text, str):
            errors.add(f"{key}.{lang}", "must be a string")


def _check_parameters(schema: Any, errors: _Errors) -> None:
    if not isinstance(schema, dict):
        errors.add("parameters", "must be a JSON Schema mapping with type: object")
        return
    meta = Draft202012Validator(Draft202012Validator.META_SCHEMA)
    seen = set()
    for err in meta.iter_errors(schema):
        path = ".".join(["parameters", *map(str, err.absolute_path)])
        msg = best_match(err.context).message if err.context else err.message  # "not one of [...]"
        if (path, msg) not in seen:
            seen.add((path, msg))
            errors.add(path, msg)
    if seen:
        return  # the checks below assume a well-formed schema
    if schema.get("type") != "object":
        errors.add("parameters.type", "must be 'object'")
    props = schema.get("properties") or {}
    for name in schema.get("required") or []:
        if name not in props:
            errors.add("parameters.required", f"names {name!r}, which is not under properties")
    from .params import INT_RESOURCES, string_problem  # late import: params depends on this module

    for name, prop in props.items():
        at = f"parameters.properties.{name}"
        if not PARAM_RE.match(name) or name in RESERVED_PARAMS or keyword.iskeyword(name):
            errors.add(at, "a parameter name is lower-case letters, digits and '_' (starting with a letter) "
                           f"and not one of the reserved names {', '.join(sorted(RESERVED_PARAMS))}")
        if not isinstance(prop, dict):
            errors.add(at, "must be a mapping")
            continue
        ptype = prop.get("type")
        if ptype not in SCALAR_TYPES:
            errors.add(f"{at}.type", f"must be one of {', '.join(SCALAR_TYPES)}")
        for flag in ("x-input", "x-free-text"):
            if flag in prop and not isinstance(prop[flag], bool):
                errors.add(f"{at}.{flag}", "must be true or false")
            elif prop.get(flag) and ptype != "string":
                errors.add(f"{at}.type", f"a parameter with {flag} must be type string")
        if "x-resource" in prop:
            if prop["x-resource"] not in INT_RESOURCES:
                errors.add(f"{at}.x-resource", f"must be one of {', '.join(INT_RESOURCES)}")
            elif ptype != "integer":
                errors.add(f"{at}.type", "a parameter with x-resource must be type integer")
        if "default" in prop:
            for err in Draft202012Validator(prop).iter_errors(prop["default"]):
                errors.add(f"{at}.default", f"does not satisfy its own schema: {err.message}")
            if isinstance(prop["default"], str):
                problem = string_problem(prop["default"], free_text=prop.get("x-free-text") is True)
                if problem:
                    errors.add(f"{at}.default", problem)


def _check_environments(envs: Any, errors: _Errors) -> list[Environment]:
    if not isinstance(envs, list) or not envs:
        errors.add("environments", "must list at least one environment")
        return []
    out, names = [], set()
    for i, env in enumerate(envs):
        at = f"environments.{i}"
        if not isinstance(env, dict):
            errors.add(at, "must be a mapping")
            continue
        before = len(errors)
        for key in env:
            if key not in ENV_KEYS:
                errors.add(f"{at}.{key}", f"unknown key (allowed: {', '.join(ENV_KEYS)})")
        name = env.get("name")
        if not isinstance(name, str) or not ENV_NAME_RE.match(name):
            errors.add(f"{at}.name", "is required: lower-case letters, digits and '-', e.g. module")
        elif name in names:
            errors.add(f"{at}.name", f"duplicate environment name {name!r}")
        names.add(name)
        lists = {}
        for key, pattern, default in (("clusters", None, ["*"]), ("tags", TAG_RE, []), ("modules", MODULE_RE, [])):
            value = env.get(key, default)
            if not isinstance(value, list) or not all(
                    isinstance(v, str) and v and not _has_control(v) and (pattern is None or pattern.match(v))
                    for v in value):
                errors.add(f"{at}.{key}", "must be a list of names" + (f" matching {pattern.pattern}" if pattern else ""))
                value = []
            lists[key] = tuple(value)
        if not lists["clusters"] and "clusters" in env and isinstance(env["clusters"], list):
            errors.add(f"{at}.clusters", "must name at least one cluster (or '*')")
        container = env.get("container")
        if container is not None and not (isinstance(container, str) and CONTAINER_RE.match(container)):
            errors.add(f"{at}.container", "must be an image reference such as docker://repo/image:tag")
        variables = env.get("variables") or {}
        if not isinstance(variables, dict):
            errors.add(f"{at}.variables", "must map names to strings")
            variables = {}
        for key, value in variables.items():
            if not isinstance(key, str) or not VARIABLE_RE.match(key) or key in RESERVED_VARIABLES:
                errors.add(f"{at}.variables.{key}", "a variable name is letters, digits and '_' (not name, "
                                                    "container or modules)")
            if not isinstance(value, str) or _has_control(value):
                errors.add(f"{at}.variables.{key}", "must be a one-line string")
        stand_in = env.get("stand_in")
        if stand_in is not None:
            if not isinstance(stand_in, str) or "\x00" in stand_in:
                errors.add(f"{at}.stand_in", "must be the program's text")
            elif STAND_IN_DELIMITER in stand_in.split("\n"):
                errors.add(f"{at}.stand_in", f"contains the line {STAND_IN_DELIMITER}, which would end the "
                                             "heredoc that writes it")
        if len(errors) == before:
            out.append(Environment(name=name, clusters=lists["clusters"], tags=lists["tags"],
                                   modules=lists["modules"], container=container,
                                   variables={str(k): v for k, v in variables.items()}, stand_in=stand_in))
    return out


def _check_outputs(outputs: Any, errors: _Errors) -> None:
    if not isinstance(outputs, list):
        errors.add("outputs", "must be a list of file patterns")
        return
    for i, pattern in enumerate(outputs):
        if not isinstance(pattern, str) or not pattern.strip():
            errors.add(f"outputs.{i}", "must be a non-empty file pattern")
        elif _has_control(pattern):
            errors.add(f"outputs.{i}", "contains a control character (NUL, newline, ...)")
        elif pattern.startswith(("/", "~")):
            errors.add(f"outputs.{i}", "must be relative to the job's working directory")
        elif ".." in pattern.split("/"):
            errors.add(f"outputs.{i}", "must not contain '..'")


def _check_interactive(value: Any, errors: _Errors) -> dict | None:
    if not isinstance(value, dict):
        errors.add("interactive", f"must be a mapping with a type ({', '.join(INTERACTIVE_TYPES)})")
        return None
    for key in value:
        if key not in INTERACTIVE_KEYS:
            errors.add(f"interactive.{key}", f"unknown key (allowed: {', '.join(INTERACTIVE_KEYS)})")
    if value.get("type") not in INTERACTIVE_TYPES:
        errors.add("interactive.type", f"must be one of {', '.join(INTERACTIVE_TYPES)}")
    probe = value.get("probe", "")
    if not isinstance(probe, str) or len(probe) > 200 or _has_control(probe) or probe.startswith("/") \
            or ".." in probe.split("/") or "://" in probe:
        errors.add("interactive.probe", "must be a path relative to the session's base URL, e.g. api/status")
    return {"type": value.get("type"), "probe": probe if isinstance(probe, str) else ""}


def load_spec(source: str | bytes | dict) -> AppSpec:
    """Parse and validate a spec; raises SpecError listing every problem found."""
    from .render import check_template, trial_render  # late import: render depends on this module

    data = _parse_source(source)
    errors = _Errors()
    try:  # keep exactly what a database would store and give back (e.g. integer keys become strings)
        data = json.loads(json.dumps(data))
    except (TypeError, ValueError):
        data = copy.deepcopy(data)
        errors.add("<spec>", "contains values that are not plain JSON (dates, ...): quote them in YAML")
    for key in REQUIRED_KEYS:
        if key not in data:
            errors.add(key, "is required")
    for key in data:
        if key not in REQUIRED_KEYS + OPTIONAL_KEYS:
            errors.add(str(key), f"unknown key (allowed: {', '.join(REQUIRED_KEYS + OPTIONAL_KEYS)})")
    if "name" in data and not (isinstance(data["name"], str) and NAME_RE.match(data["name"])):
        errors.add("name", "must be 1-48 lower-case letters, digits and '-', starting with a letter or digit")
    if "version" in data and not (isinstance(data["version"], str) and VERSION_RE.match(data["version"])):
        errors.add("version", "must be a string such as \"1.0.0\" or \"2023.08\" (quote it in YAML)")
    if "category" in data and data["category"] not in CATEGORIES:
        errors.add("category", f"must be one of {', '.join(CATEGORIES)}")
    for key in ("title", "description"):
        if key in data:
            _check_text(data, key, errors)
    parameters_ok = len(errors)
    if "parameters" in data:
        _check_parameters(data["parameters"], errors)
    parameters_ok = len(errors) == parameters_ok
    params = data.get("parameters") if isinstance(data.get("parameters"), dict) else {}
    props = params.get("properties") if isinstance(params.get("properties"), dict) else {}
    if "resources" in data:
        from .params import check_resources

        errors.extend(check_resources(data["resources"], props))
    template_ok = False
    if "template" in data:
        if not isinstance(data["template"], str) or not data["template"].strip():
            errors.add("template", "must be the (non-empty) text of the job body")
        else:
            problems = check_template(data["template"])
            for msg in problems:
                errors.add("template", msg)
            template_ok = not problems
    envs = _check_environments(data["environments"], errors) if "environments" in data else []
    _check_outputs(data.get("outputs", []), errors)
    hint = data.get("runtime_hint_minutes")
    if hint is not None and (not isinstance(hint, int) or isinstance(hint, bool) or hint < 1):
        errors.add("runtime_hint_minutes", "must be a positive integer (minutes)")
    interactive = _check_interactive(data["interactive"], errors) if "interactive" in data else None
    if errors:
        raise SpecError(errors)
    spec = AppSpec(name=data["name"], version=data["version"], category=data["category"],
                   title=dict(data["title"]), description=dict(data["description"]), parameters=params,
                   resources=data["resources"], template=data["template"], environments=tuple(envs),
                   outputs=tuple(data.get("outputs", [])), runtime_hint_minutes=hint,
                   source=data, interactive=interactive)
    if parameters_ok and template_ok:
        # catch templates that only fail when rendered (undefined names, sandbox refusals) at upload
        found = {env.name: trial_render(spec, env) for env in envs}
        for msg in dict.fromkeys(m for msgs in found.values() for m in msgs):
            where = [name for name, msgs in found.items() if msg in msgs]
            errors.add("template", msg if len(where) == len(envs) else f"with environment {', '.join(where)}: {msg}")
    if errors:
        raise SpecError(errors)
    return spec
