"""Sandboxed rendering of an app's template into a bash batch script.

Every ``{{ }}`` output is shell-quoted (shlex.quote) unless it is one of the spec's
own trusted strings (environment variables, modules, container) or the result of the
``words`` filter, which splits free text into individually quoted words. Booleans
render as ``true``/``false`` and None as ``''``.
"""

from __future__ import annotations

import contextvars
import functools
import re
import shlex
import time
from types import SimpleNamespace
from typing import Any, Mapping

from jinja2 import StrictUndefined, nodes
from jinja2.exceptions import SecurityError, TemplateError, TemplateRuntimeError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .spec import STAND_IN_DELIMITER, AppSpec, Environment, ParamError, SpecError

MAX_SCRIPT_BYTES = 1 << 20
RENDER_SECONDS = 1.0  # a template is a few lines of shell; loops that run longer are a mistake or an attack
MAX_REPEAT = 100_000
INTERNALS = "the template tried to reach Python internals"


class _Trusted(str):
    """Text from the spec itself, inserted without quoting."""


def _finalize(value: Any) -> str:
    if isinstance(value, _Trusted):
        return value
    if value is None:
        return "''"
    if isinstance(value, bool):
        return "true" if value else "false"
    return shlex.quote(str(value))  # str() of a StrictUndefined raises, as it should


def _words(value: Any) -> _Trusted:
    """Free text split like a shell would (no expansion), each word quoted: `cmd {{ args | words }}`."""
    try:
        parts = shlex.split(str(value))
    except ValueError as exc:
        raise ParamError(f"cannot split {value!r} into arguments: {exc}") from None
    return _Trusted(" ".join(shlex.quote(p) for p in parts))


_deadline: contextvars.ContextVar[float] = contextvars.ContextVar("deadline", default=float("inf"))


_WIDTH = re.compile(r"\d{6,}")  # a printf/format width of a million characters or more


def _check_format(fmt: Any) -> None:
    if isinstance(fmt, str) and _WIDTH.search(fmt):
        raise TemplateRuntimeError("format widths this large are refused")


def _check_size(estimate: int) -> None:
    # intermediate strings, not only the output: a filter can build gigabytes before the output check
    if estimate > MAX_SCRIPT_BYTES:
        raise TemplateRuntimeError(f"building a string of about {estimate} bytes is refused")


def _str_method(name: str, text: str, args: tuple) -> None:
    """Bound str methods that can make a huge string from a small one."""
    if name in ("center", "ljust", "rjust", "zfill", "expandtabs"):
        for arg in args:
            if isinstance(arg, int) and arg > MAX_REPEAT:
                raise TemplateRuntimeError(f"str.{name}({arg}) is refused")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        _check_size(len(text) + (text.count(args[0]) if args[0] else len(text) + 1) * len(args[1]))
    elif name == "join" and args and hasattr(args[0], "__len__"):
        _check_size(len(args[0]) * len(text))
    elif name in ("format", "format_map"):
        _check_format(text)


def _bounded_filters(env) -> None:
    """Jinja's own filters that can build huge strings, with a size check first."""
    def wrap(name: str, check) -> None:
        original = env.filters[name]

        @functools.wraps(original)  # keeps jinja's pass_eval_context / pass_environment marker
        def bounded(*args, **kwargs):
            plain = [a for a in args if not hasattr(a, "environment") and not hasattr(a, "autoescape")]
            check(*plain, **kwargs)
            return original(*args, **kwargs)
        env.filters[name] = bounded

    def width_arg(value="", width=80, *rest, **kwargs):
        if isinstance(width, int) and width > MAX_REPEAT:
            raise TemplateRuntimeError(f"a width of {width} is refused")
        if isinstance(width, str):
            _check_size(len(str(value)) + str(value).count("\n") * len(width))

    def join_arg(value=(), d="", *rest, **kwargs):
        if hasattr(value, "__len__"):
            _check_size(len(value) * len(str(d)))

    def replace_arg(value="", old="", new="", *rest, **kwargs):
        text = str(value)
        _check_size(len(text) + (text.count(str(old)) if old else len(text) + 1) * len(str(new)))

    def format_arg(value="", *rest, **kwargs):
        _check_format(value)

    for name, check in (("center", width_arg), ("indent", width_arg), ("join", join_arg),
                        ("replace", replace_arg), ("format", format_arg)):
        wrap(name, check)


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%"})

    def call(self, context, obj, /, *args, **kwargs):  # noqa: D401 - jinja hook
        if time.monotonic() > _deadline.get():
            raise TemplateRuntimeError(f"rendering took longer than {RENDER_SECONDS:g} s")
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, str) and callable(obj):
            _str_method(getattr(obj, "__name__", ""), owner, args)
        return super().call(context, obj, *args, **kwargs)

    def wrap_str_format(self, value):
        # "...".format(...) is wrapped at attribute access, not in call(): check its widths here
        if getattr(value, "__name__", "") in ("format", "format_map"):
            _check_format(getattr(value, "__self__", None))
        return super().wrap_str_format(value)

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(right, (int, float)) and (abs(right) > 1000 or (
                isinstance(left, int) and left.bit_length() * right > 100_000)):
            raise TemplateRuntimeError("powers this large are refused")
        if operator == "*":
            seq, count = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(seq, (str, list, tuple)) and isinstance(count, int) and len(seq) * count > MAX_REPEAT:
                raise TemplateRuntimeError(f"repeating to more than {MAX_REPEAT} items is refused")
        if operator == "%":
            _check_format(left)
        return super().call_binop(context, operator, left, right)


def _guard(seq: Any):
    """Wrapped around every {% for %} iterable: nested loops need no calls to run for hours."""
    deadline = _deadline.get()
    for i, item in enumerate(seq):
        if i % 1000 == 0 and time.monotonic() > deadline:
            raise TemplateRuntimeError(f"rendering took longer than {RENDER_SECONDS:g} s")
        yield item


def _make_env() -> _Sandbox:
    env = _Sandbox(undefined=StrictUndefined, autoescape=False, finalize=_finalize,
                   keep_trailing_newline=True)
    for name in ("lipsum", "cycler", "joiner"):  # nothing a job script needs
        env.globals.pop(name, None)
    env.filters["words"] = _words
    env.filters["cnet_loop_guard"] = _guard
    _bounded_filters(env)
    return env


_ENV = _make_env()


@functools.lru_cache(maxsize=256)
def _compile(source: str):
    tree = _ENV.parse(source)
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, "cnet_loop_guard", [], [], None, None, lineno=loop.lineno)
    return _ENV.template_class.from_code(_ENV, _ENV.compile(tree), _ENV.make_globals(None), None)


@functools.lru_cache(maxsize=256)
def word_params(source: str) -> frozenset[str]:
    """Parameters the template splits with `words` (`{{ args | words }}`, `{{ params.args | words }}`)."""
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError:
        return frozenset()
    names = set()
    for node in tree.find_all(nodes.Filter):
        target = node.node
        if node.name != "words":
            continue
        if isinstance(target, nodes.Name):
            names.add(target.name)
        elif isinstance(target, nodes.Getattr) and isinstance(target.node, nodes.Name) and target.node.name == "params":
            names.add(target.attr)
        elif (isinstance(target, nodes.Getitem) and isinstance(target.node, nodes.Name)
              and target.node.name == "params" and isinstance(target.arg, nodes.Const)):
            names.add(str(target.arg.value))
    return frozenset(names)


def _where(exc: TemplateError) -> str:
    line = getattr(exc, "lineno", None)
    return f"line {line}: " if line else ""


def check_template(source: str) -> list[str]:
    """Problems found without rendering: syntax, and any reach for '_' attributes."""
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError as exc:
        return [f"{_where(exc)}does not compile: {exc.message}"]
    reached: dict[str, int] = {}
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter, nodes.Test)):
        if isinstance(node, nodes.Getattr):
            names = [node.attr]
        elif isinstance(node, nodes.Getitem):
            names = [node.arg.value] if isinstance(node.arg, nodes.Const) else []
        else:  # attr('__x__'), map(attribute='__x__'), selectattr('__x__'), ...
            args = [*node.args, *(kw.value for kw in node.kwargs)]
            names = [a.value for a in args if isinstance(a, nodes.Const)]
        for name in names:
            if isinstance(name, str) and name.startswith("_"):
                reached.setdefault(name, node.lineno)
    if reached:
        names = ", ".join(sorted(reached, key=lambda n: (reached[n], source.find(n))))
        return [f"line {min(reached.values())}: {INTERNALS} ({names}); it may use only parameters, params, "
                "resources, env and app"]
    try:
        _compile(source)
    except TemplateError as exc:
        return [f"{_where(exc)}does not compile: {exc}"]
    return []


def _environment_context(env: Environment) -> SimpleNamespace:
    trusted = {k: _Trusted(v) for k, v in (env.variables or {}).items()}
    return SimpleNamespace(**trusted, name=_Trusted(env.name), modules=[_Trusted(m) for m in env.modules],
                           container=_Trusted(env.container) if env.container else None)


def _body(spec: AppSpec, params: Mapping[str, object], env: Environment, inputs: Mapping[str, str],
          resources) -> str:
    values = dict(params)
    for name in spec.input_parameters():
        if name in values:
            staged = inputs.get(name)
            if not staged or "/" in staged or staged in (".", "..") or any(ord(c) < 0x20 for c in staged):
                raise ValueError(f"input parameter {name} needs its staged file name (a plain file name), got {staged!r}")
            values[name] = staged
    context = {**values, "params": dict(values), "app": SimpleNamespace(name=spec.name, version=spec.version),
               "resources": SimpleNamespace(**vars(resources)), "env": _environment_context(env)}
    token = _deadline.set(time.monotonic() + RENDER_SECONDS)
    try:
        size, chunks = 0, []
        for chunk in _compile(spec.template).generate(context):
            size += len(chunk.encode("utf-8", "surrogatepass"))
            if size > MAX_SCRIPT_BYTES:
                raise SpecError([("template", f"renders to more than {MAX_SCRIPT_BYTES} bytes")])
            chunks.append(chunk)
    except (ParamError, SpecError):
        raise
    except SecurityError as exc:
        raise SpecError([("template", f"{INTERNALS}: {exc}")]) from None
    except TemplateError as exc:
        raise SpecError([("template", f"{_where(exc)}{exc}")]) from None
    except Exception as exc:  # e.g. {{ 1 / 0 }} or adding a string to a number
        raise SpecError([("template", f"fails to render: {type(exc).__name__}: {exc}")]) from None
    finally:
        _deadline.reset(token)
    return "".join(chunks)


def render(spec: AppSpec, params: Mapping[str, object], env: Environment, inputs: Mapping[str, str],
           resources) -> str:
    """The complete bash batch script (no #SBATCH lines: the platform passes resources as flags)."""
    body = _body(spec, params, env, inputs, resources)
    lines = ["#!/bin/bash", f"# ComputeNet app {spec.name} {spec.version} ({env.name})", "set -euo pipefail"]
    if env.modules:
        # module init scripts often read unset variables, which `set -u` would make fatal; a batch
        # shell that is not a login shell may not have the module function yet
        lines += ["set +u",
                  "command -v module >/dev/null 2>&1 || for f in /etc/profile.d/lmod.sh /etc/profile.d/modules.sh; "
                  'do if [ -f "$f" ]; then . "$f"; break; fi; done',
                  'command -v module >/dev/null 2>&1 || { echo "ComputeNet: the module command is not available '
                  'on this cluster" >&2; exit 1; }',
                  *(f"module load {m}" for m in env.modules), "set -u"]
    if env.stand_in:
        text = env.stand_in if env.stand_in.endswith("\n") else env.stand_in + "\n"
        lines += [f"cat > .cnet-stand-in <<'{STAND_IN_DELIMITER}'", text + STAND_IN_DELIMITER,
                  "chmod +x .cnet-stand-in"]
    if spec.interactive:  # after the modules: python3 may come from one
        from .interactive import PREAMBLE

        lines.append(PREAMBLE.rstrip("\n"))
    return "\n".join(lines) + "\n" + body + ("" if body.endswith("\n") else "\n")


def _sample_value(name: str, prop: dict) -> Any:
    if prop.get("x-input"):
        return f"{name}.input"
    if isinstance(prop.get("enum"), list) and prop["enum"]:
        return prop["enum"][0]
    for key in ("minimum", "exclusiveMinimum"):
        if isinstance(prop.get(key), (int, float)):
            return prop[key] + (key == "exclusiveMinimum")
    return {"integer": 1, "number": 1.0, "boolean": False}.get(prop.get("type"), "x" * int(prop.get("minLength", 1)))


def trial_render(spec: AppSpec, env: Environment) -> list[str]:
    """Render with defaults (and placeholders for required parameters); the problems found."""
    from .params import BASE_RESOURCES, Resources, resources_for, validate_params

    sample = {n: _sample_value(n, p) for n, p in spec.properties().items()
              if "default" not in p and n in (spec.parameters.get("required") or [])}
    try:
        values = validate_params(spec, sample)
    except ParamError:
        values = {**{n: p["default"] for n, p in spec.properties().items() if "default" in p}, **sample}
    try:
        resources = resources_for(spec, values)
    except ParamError:
        amounts = {**BASE_RESOURCES, **(spec.resources.get("defaults") or {})}
        resources = Resources(gpu_type=spec.resources.get("gpu_type"), **amounts)
    inputs = {n: f"{n}.input" for n in spec.input_parameters() if n in values}
    try:
        render(spec, values, env, inputs, resources)
    except SpecError as exc:
        return [msg for _, msg in exc.errors]
    except ParamError as exc:
        return [f"the defaults do not render: {exc}"]
    return []
