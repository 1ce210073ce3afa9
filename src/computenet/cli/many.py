"""`cnet submit [sbatch options] --many FILE...`: many jobs in one request (POST /jobs:batch).

FILE is either one JSON or YAML list of jobs (each as POST /jobs takes it: script or file, args,
script_name, routing, inputs, idempotency_key) or several batch scripts; sbatch options before
--many apply to every script. Each job is accepted or refused on its own: one line per job, and
the exit status is 1 when any was refused.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

MANY = "--many"
_LISTS = (".json", ".yaml", ".yml")


def wants_many(tokens: list[str]) -> bool:
    """--many among the options (not an argument of the script after it)."""
    from ..domain.sbatch import ParsedOptions, ScriptError, parse_tokens

    if MANY not in tokens:
        return False
    before = tokens[: tokens.index(MANY)]
    try:
        return not parse_tokens(before, 0, ParsedOptions())
    except ScriptError:
        return False


def _read(path: Path, fail: Callable[[str], None]) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    except UnicodeDecodeError as exc:
        fail(f"{path} is not UTF-8 text (invalid byte at offset {exc.start})")
    return ""


def jobs_from(tokens: list[str], fail: Callable[[str], None]) -> list[dict]:
    """The batch's jobs from the command line (see the module's docstring)."""
    at = tokens.index(MANY)
    flags, files = tokens[:at], [Path(t) for t in tokens[at + 1:]]
    if not files:
        fail(f"{MANY} needs a JSON or YAML list of jobs, or batch scripts")
    if len(files) == 1 and files[0].suffix.lower() in _LISTS:
        import yaml  # JSON is YAML too; safe_load builds plain lists and dicts only

        text = _read(files[0], fail)
        try:
            items = json.loads(text) if files[0].suffix.lower() == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            fail(f"{files[0]} is not a valid list of jobs: {str(exc).splitlines()[0]}")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            fail(f"{files[0]} must hold a list of jobs (each with a script or a file)")
        jobs = []
        for n, item in enumerate(items):
            item = dict(item)
            if "file" in item:  # a script beside the list
                if not isinstance(item["file"], str):
                    fail(f"job {n} in {files[0]}: file must be a path")
                script_path = files[0].parent / item.pop("file")
                item.setdefault("script", _read(script_path, fail))
                item.setdefault("script_name", script_path.name)
            item["args"] = list(flags) + list(item.get("args") or [])
            jobs.append(item)
        return jobs
    return [{"script": _read(f, fail), "args": list(flags), "script_name": f.name} for f in files]


def report(result, names: list[str], parsable: bool, console, err) -> int:
    """One line per job; 1 when any was refused."""
    for item in result.results:
        if item.id is not None:
            if parsable:
                sys.stdout.write(f"{item.id}\n")
            else:
                again = "" if item.created else " (already submitted with this idempotency key)"
                console.print(f"Accepted job {item.id} ({names[item.index]}){again}", highlight=False, markup=False)
        else:
            err.print(f"job {item.index} ({names[item.index]}) refused: {item.detail} (HTTP {item.status})",
                      highlight=False, markup=False)
    sys.stdout.flush()
    return 1 if result.refused else 0
