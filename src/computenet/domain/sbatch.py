"""sbatch compatibility: ``#SBATCH`` directives and sbatch flags to a JobSpec.

The script itself is submitted unchanged; this module only reads it, the
way sbatch does: directives are taken from the leading comment block (up to
the first command), and flags given on the command line override them.
"""

from __future__ import annotations

import re
import secrets
import shlex
from dataclasses import dataclass, field

from pydantic import ValidationError

from . import job_env
from . import sbatch_options as opts
from .resources import (
    JobOptions,
    JobSpec,
    RequestError,
    ResourceRequest,
    parse_gpu_spec,
    parse_gres,
    parse_memory_mb,
    parse_time_minutes,
)

from .limits import MAX_SCRIPT_BYTES  # noqa: E402,F401  (named here too: callers import it from sbatch)


class ScriptError(ValueError):
    """A script or option that cannot be submitted; the message names where."""


Option = opts.Option
_BY_LONG = opts.BY_LONG
_BY_SHORT = opts.BY_SHORT
# modelled options the platform passes to sbatch itself (resolved, translated or chosen by the router);
# every other option given on the command line reaches sbatch as written
_DECIDED = {"cluster", "parsable", "wait", "test_only", "partition", "account", "time", "dependency",
            "job_name", "output", "error", "workdir"}
# modelled for pricing and placement, and still handed to sbatch as written
_PRICED_PASSTHROUGH = {"gpus-per-task": "gpus_per_task", "cpus-per-gpu": "cpus_per_gpu", "mem-per-gpu": "mem_per_gpu"}
# the platform's tag on a Slurm job (computenet:<job id>, clusters/slurm/tags.py): a job's own comment or
# wckey may not pose as one (it would be taken for another job's lost submission)
PLATFORM_TAG = "computenet:"


def new_tag_nonce() -> str:
    return secrets.token_hex(4)


def platform_tag(job_id: int, nonce: str | None) -> str:
    """The platform's tag of its job on a cluster: ``computenet:42.9f3a61c2``. The id alone is not enough:
    job 42 of another installation (a staging copy, a restored database) may share the cluster.
    Jobs tagged before the nonce existed carry ``computenet:42``."""
    return f"{PLATFORM_TAG}{job_id}.{nonce}" if nonce else f"{PLATFORM_TAG}{job_id}"


def read_platform_tag(tag: str | None) -> tuple[int, str | None] | None:
    """(job id, nonce or None) of a tag in either form; None where it is not one."""
    if not tag or not tag.startswith(PLATFORM_TAG):
        return None
    ref, _, nonce = tag[len(PLATFORM_TAG):].partition(".")
    if not ref.isdigit() or len(ref) >= 19 or (nonce and not nonce.isalnum()):
        return None
    return int(ref), nonce or None
_HOSTLIST = re.compile(r"^[A-Za-z0-9_.,\[\]-]{1,1024}$")


@dataclass
class Directive:
    line: int  # 1-based line number in the script, 0 for command-line flags
    tokens: list[str]


@dataclass
class ParsedOptions:
    values: dict[str, object] = field(default_factory=dict)
    passthrough: list[str] = field(default_factory=list)  # unmodelled options, as --long[=value], in order
    used: list[str] = field(default_factory=list)  # long names of every option given (script and flags)
    flags: list[str] = field(default_factory=list)  # command-line options sbatch gets as written


def read_script(data: bytes | str) -> str:
    """Decode and sanity-check a batch script."""
    if isinstance(data, str):
        raw = data.encode("utf-8", errors="surrogatepass")
        text = data
    else:
        raw = data
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ScriptError(f"script is not UTF-8 text (invalid byte at offset {exc.start})") from None
    if len(raw) > MAX_SCRIPT_BYTES:
        raise ScriptError(f"script is {len(raw)} bytes; the limit is {MAX_SCRIPT_BYTES} (put data in files)")
    if not text.strip():
        raise ScriptError("script is empty")
    if "\x00" in text:
        raise ScriptError("script contains NUL bytes")
    _check_unicode(text, "script")
    if "\r\n" in text:
        # sbatch refuses DOS line breaks too; say so before the cluster does
        raise ScriptError("script has DOS line breaks (\\r\\n); convert it with dos2unix")
    if not text.startswith("#!"):
        raise ScriptError("script must start with an interpreter line such as #!/bin/bash")
    return text


def script_directives(text: str) -> list[Directive]:
    """The ``#SBATCH`` lines sbatch would read: those before the first command."""
    directives: list[Directive] = []
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if number == 1 and stripped.startswith("#!"):
            continue
        if not stripped:
            continue
        if not stripped.startswith("#"):
            break  # sbatch stops at the first command
        if not stripped.startswith("#SBATCH"):
            continue
        rest = stripped[len("#SBATCH"):]
        if rest and not rest[0].isspace():
            continue  # "#SBATCHX" is a plain comment to sbatch
        try:
            tokens = shlex.split(rest, comments=True)
        except ValueError as exc:
            raise ScriptError(f"line {number}: cannot read #SBATCH directive ({exc})") from None
        if tokens:
            directives.append(Directive(number, tokens))
    return directives


def _where(line: int) -> str:
    return f"line {line}" if line else "command line"


def _long_value(tokens: list[str], i: int, inline: str | None, name: str, line: int) -> tuple[str, int]:
    """The value of --name: after '=', or the next token. Returns it and the new index."""
    if inline is not None:
        return inline, i
    if i + 1 < len(tokens):
        return tokens[i + 1], i + 1
    raise ScriptError(f"{_where(line)}: --{name} needs a value")


def parse_tokens(tokens: list[str], line: int, into: ParsedOptions) -> list[str]:
    """Parse sbatch options (every one sbatch 22.05 knows: see sbatch_options); returns what
    follows them (script path and args). Refused options are refused here only when no cluster
    kind takes them; the rest is for the router (ParsedOptions.used) and the adapters."""
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "--":
            return tokens[i + 1:]
        if not tok.startswith("-") or tok == "-":
            return tokens[i:]
        value: str | None = None
        if tok.startswith("--"):
            name, eq, inline = tok[2:].partition("=")
            option = _BY_LONG.get(name)
            if option is None:
                raise ScriptError(f"{_where(line)}: unknown sbatch option --{name}")
            if option.arg == opts.VALUE:
                value, i = _long_value(tokens, i, inline if eq else None, name, line)
            elif eq:
                if option.arg == opts.FLAG:
                    raise ScriptError(f"{_where(line)}: --{name} takes no value")
                value = inline
        else:
            letter = tok[1:2]
            option = _BY_SHORT.get(letter)
            if option is None:
                raise ScriptError(f"{_where(line)}: unknown sbatch option -{letter}")
            if option.arg != opts.VALUE:
                if len(tok) > 2:  # -Hv: flags run together
                    tokens = tokens[:i] + [tok[:2], "-" + tok[2:]] + tokens[i + 1:]
            elif len(tok) > 2:
                value = tok[2:].removeprefix("=")
            elif i + 1 < len(tokens):
                i += 1
                value = tokens[i]
            else:
                raise ScriptError(f"{_where(line)}: -{letter} needs a value")
        _take(option, value, line, into)
        i += 1
    return []


def _take(option: Option, value: str | None, line: int, into: ParsedOptions) -> None:
    everywhere = [option.verdict(kind) for kind in opts.KINDS]
    if all(v.refused for v in everywhere) and len({v.how for v in everywhere}) == 1:
        raise ScriptError(f"{_where(line)}: --{option.long} is not allowed: {everywhere[0].how}")
    written = f"--{option.long}" if value is None else f"--{option.long}={value}"
    if option.long not in into.used:
        into.used.append(option.long)
    try:
        _check_value(option, value)
        if option.key is not None:
            into.values[option.key] = _convert(option, value)
            into.values.setdefault("_lines", {})[option.key] = line  # type: ignore[union-attr]
    except RequestError as exc:
        raise ScriptError(f"{_where(line)}: {exc}") from None
    if option.key is None or option.long in _PRICED_PASSTHROUGH or (option.long == "exclusive" and value):
        into.passthrough.append(written)
    if line == 0 and option.key not in _DECIDED:
        into.flags.append(written)


def _check_value(option: Option, value: str | None) -> None:
    """What the platform or the local executor reads itself is checked here, before any cluster sees it."""
    name = option.long
    if value is None:
        return
    if name in ("comment", "wckey") and value.strip().startswith(PLATFORM_TAG):
        raise RequestError(f"--{name} may not start with {PLATFORM_TAG!r}: that is the platform's tag of its jobs")
    if name in ("nodelist", "exclude") and not _HOSTLIST.match(value):
        raise RequestError(f"--{name} needs node names (a Slurm host list), got {value!r}")
    if name == "time-min":
        if parse_time_minutes(value) is None:
            raise RequestError("--time-min cannot be UNLIMITED")
    if name == "open-mode" and value not in ("append", "truncate"):
        raise RequestError(f"--open-mode is append or truncate, got {value!r}")
    try:
        if name == "signal":
            job_env.parse_signal(value)
        if name == "begin":
            job_env.parse_begin(value)
        if name == "export":
            job_env.parse_export(value)
    except job_env.OptionValueError as exc:
        raise RequestError(str(exc)) from None


def _int(value: str, option: Option) -> int:
    if not value.strip().isdigit():
        raise RequestError(f"--{option.long} needs a positive whole number, got {value!r}")
    number = int(value)
    if number > 10_000_000:
        raise RequestError(f"--{option.long}={value} is absurdly large")
    return number


def _convert(option: Option, value: str | None) -> object:
    key = option.key
    if key in ("exclusive", "parsable", "wait", "test_only"):
        return True
    assert value is not None
    if option.long in _PRICED_PASSTHROUGH:
        return _priced(option.long, value)
    if key in ("ntasks", "ntasks_per_node", "cpus_per_task"):
        return _int(value, option)
    if key == "nodes":
        low, _, high = value.partition("-")
        nodes = _int(low, option)
        most = _int(high, option) if high else nodes
        if most < nodes:
            raise RequestError(f"--nodes={value}: the maximum is below the minimum")
        return nodes, most
    if key in ("mem", "mem_per_cpu"):
        return parse_memory_mb(value)
    if key == "time":
        minutes = parse_time_minutes(value)
        return "UNLIMITED" if minutes is None else minutes
    if key == "gres":
        return parse_gres(value)
    if key in ("gpus", "gpus_per_node"):
        return parse_gpu_spec(value, f"--{option.long}")
    if not value:
        raise RequestError(f"--{option.long} needs a value")
    return value


def _priced(name: str, value: str) -> object:
    if name == "mem-per-gpu":
        return parse_memory_mb(value)
    if name == "gpus-per-task":
        gpu_type, count = parse_gpu_spec(value, "--gpus-per-task")
        if count < 1:
            raise RequestError("--gpus-per-task needs at least 1")
        return gpu_type, count
    if not value.strip().isdigit() or not 1 <= int(value) <= 4096:
        raise RequestError(f"--{name} needs a whole number from 1 to 4096, got {value!r}")
    return int(value)


def build_spec(values: dict[str, object], passthrough: list[str], used: list[str] | None = None,
               flags: list[str] | None = None) -> JobSpec:
    lines: dict[str, int] = values.get("_lines", {})  # type: ignore[assignment]
    res: dict[str, object] = {}
    opt: dict[str, object] = {}
    for key in ("ntasks", "ntasks_per_node", "cpus_per_task", "partition", "account", "qos", "constraint"):
        if key in values:
            res[key] = values[key]
    if "nodes" in values:
        res["nodes"], most = values["nodes"]  # type: ignore[misc]
        if most != res["nodes"]:
            res["nodes_max"] = most
    elif "ntasks" in values and "ntasks_per_node" in values:
        res["nodes"] = -(-values["ntasks"] // values["ntasks_per_node"])  # type: ignore[operator]
    elif "ntasks" in values:
        # no -N: Slurm spreads the tasks over as many nodes as it needs (at most one per task)
        res["nodes_max"] = values["ntasks"]
    if "exclusive" in values:
        res["exclusive"] = True
    if "mem" in values:
        res["mem_per_node_mb"] = values["mem"]
    if "mem_per_cpu" in values:
        res["mem_per_cpu_mb"] = values["mem_per_cpu"]
    if values.get("time") == "UNLIMITED":
        res["time_unlimited"] = True  # the partition's maximum, as Slurm gives it
    elif "time" in values:
        res["time_limit_minutes"] = values["time"]
    gpu_type = None
    # the last GPU form given wins, as later sbatch options override earlier
    gpu_keys = sorted((k for k in ("gres", "gpus", "gpus_per_node") if k in values), key=lambda k: lines.get(k, 0) or 10**9)  # flags (line 0) come last
    for k in gpu_keys:
        t, n = values[k]  # type: ignore[misc]
        gpu_type = t or gpu_type
        if k == "gpus":
            res["gpus_total"], res["gpus_per_node"] = n, 0
        else:
            res["gpus_per_node"], res["gpus_total"] = n, 0
    if "gpus_per_task" in values:
        t, res["gpus_per_task"] = values["gpus_per_task"]  # type: ignore[misc]
        gpu_type = gpu_type or t
    if "cpus_per_gpu" in values:
        if "cpus_per_task" in values:
            raise ScriptError("--cpus-per-gpu and --cpus-per-task are mutually exclusive")
        res["cpus_per_gpu"] = values["cpus_per_gpu"]
    if "mem_per_gpu" in values:
        res["mem_per_gpu_mb"] = values["mem_per_gpu"]
    if gpu_type:
        res["gpu_type"] = gpu_type
    for key in ("job_name", "output", "error", "workdir", "array", "dependency", "cluster"):
        if key in values:
            opt[key] = values[key]
    opt["passthrough"] = tuple(passthrough)
    opt["used"] = tuple(used or ())
    opt["flags"] = tuple(flags or ())
    for key in ("parsable", "wait", "test_only"):
        if key in values:
            opt[key] = True
    try:
        return JobSpec(resources=ResourceRequest(**res), options=JobOptions(**opt))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "request"
        msg = err["msg"].removeprefix("Value error, ")
        line = lines.get(str(err["loc"][0]) if err["loc"] else "", 0)
        where = f"{_where(line)}: " if line else ""
        raise ScriptError(f"{where}invalid {loc}: {msg}") from None


def _check_flag(index: int, flag: str) -> None:
    """A flag, its value, an --export variable or a script argument: all become C strings in a
    process's argv or environment, where a NUL cuts them short and a lone surrogate cannot go."""
    if "\x00" in flag:
        raise ScriptError(f"argument {index + 1} contains a NUL byte")
    _check_unicode(flag, f"argument {index + 1}")


def _check_unicode(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a JSON "\ud800" arrives as a lone surrogate
        raise ScriptError(f"{what} contains a lone surrogate at character {exc.start} (not valid Unicode)") from None


def parse_submission(script: bytes | str, flags: list[str] | None = None) -> tuple[str, JobSpec, list[str]]:
    """Script text and sbatch flags -> (script text, JobSpec, script args).

    ``flags`` is what followed ``sbatch`` on the command line, without the
    script path: options, then optionally ``--`` and script arguments.
    """
    text = read_script(script)
    parsed = ParsedOptions()
    for directive in script_directives(text):
        rest = parse_tokens(directive.tokens, directive.line, parsed)
        if rest:
            raise ScriptError(f"line {directive.line}: unexpected text in #SBATCH directive: {' '.join(rest)!r}")
    for index, flag in enumerate(flags or []):
        _check_flag(index, flag)
    script_args = parse_tokens(list(flags or []), 0, parsed)
    return text, build_spec(parsed.values, parsed.passthrough, parsed.used, parsed.flags), script_args
