"""What `cnet submit` adds around the submission itself.

``--stage FILE`` (ComputeNet's own, repeatable): FILE is copied into the job's working directory
before the job starts, under its own name, so the script reads it by that name. A local file is
uploaded first (into a hidden folder of the workspace that goes once the job is submitted); a
workspace path (``~/data/in.dat``, ``@proj/in.lj``) is used where it is. Trailing arguments stay
what they are to sbatch: arguments of the script, passed as typed, never uploaded on a guess (an
argument that happens to name a file here is still only an argument).

sbatch's ``--parsable`` (print ``<id>[;cluster]``), ``--wait`` (block until the job ends, exit
with its exit code) and ``--test-only`` (say when and where it would start, submit nothing) are
honoured here, from the command line or the script's #SBATCH lines.
"""

from __future__ import annotations

import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from ..client import ComputeNetClient

STAGE = "--stage"
SCRATCH = ".cnet-submit"  # in the workspace: uploads for one submission, removed once it is in
WAIT_POLL_S = 2.0
_WORKSPACE_PREFIXES = ("~/", "@")


@dataclass
class Staged:
    local: list[Path] = field(default_factory=list)
    workspace: list[str] = field(default_factory=list)


def take_staged(tokens: list[str], fail: Callable[[str], None]) -> tuple[list[str], Staged]:
    """``--stage FILE`` / ``--stage=FILE`` taken out of the options (never from the script's own
    arguments: after the script or a ``--`` they are the script's)."""
    from ..domain.sbatch import ParsedOptions, ScriptError, parse_tokens

    kept: list[str] = []
    staged = Staged()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        name, eq, value = token.partition("=")
        if name == STAGE and "--" not in kept and not _script_seen(kept, parse_tokens, ParsedOptions, ScriptError):
            if not eq:
                if i + 1 >= len(tokens):
                    fail(f"{STAGE} needs a file")
                value, i = tokens[i + 1], i + 1
            if not value:
                fail(f"{STAGE} needs a file")
            if value.startswith(_WORKSPACE_PREFIXES):
                staged.workspace.append(value)
            else:
                staged.local.append(Path(value))
        else:
            kept.append(token)
        i += 1
    names = [p.name for p in staged.local] + [w.rstrip("/").rsplit("/", 1)[-1] for w in staged.workspace]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        fail(f"two staged files are named {twice[0]!r} in the job's directory: rename one")
    for path in staged.local:
        if not path.is_file():
            fail(f"{STAGE} {path}: no such file here")
    return kept, staged


def _script_seen(kept: list[str], parse_tokens, parsed_options, script_error) -> bool:
    try:
        return bool(parse_tokens(list(kept), 0, parsed_options()))
    except script_error:
        return False  # the submission itself reports it


def upload_staged(c: "ComputeNetClient", staged: Staged) -> tuple[list[str], str | None]:
    """Workspace paths of everything staged, and the scratch folder to remove after submitting."""
    if not staged.local:
        return list(staged.workspace), None
    scratch = f"~/{SCRATCH}/{secrets.token_hex(8)}"
    paths = [c.upload(path, f"{scratch}/{path.name}")["path"] for path in staged.local]
    return paths + list(staged.workspace), scratch


def remove_scratch(c: "ComputeNetClient", scratch: str | None) -> None:
    if scratch is None:
        return
    try:
        c.rm(scratch, recursive=True)
        c.rm(f"~/{SCRATCH}")  # only if empty: another submission may be uploading beside it
    except Exception:  # noqa: BLE001 - the job is in; a leftover upload is not worth failing the submit
        pass


def options_of(text: str, args: list[str]):
    """The job's sbatch options as the server will read them (None if it will refuse the script)."""
    from ..domain.resources import RequestError
    from ..domain.sbatch import ScriptError, parse_submission

    try:
        return parse_submission(text, args)[1].options
    except (ScriptError, RequestError):
        return None


def test_only(decision: dict, out, err) -> int:
    """sbatch --test-only: when and where the job would start; 1 if nowhere can take it."""
    chosen = decision.get("chosen")
    best = next((c for c in decision.get("candidates", []) if f"{c['cluster']}/{c['partition']}" == chosen), None)
    if best is None:
        why = "; ".join(f"{c['cluster']}/{c['partition']}: {', '.join(c['reasons'])}"
                        for c in decision.get("candidates", [])[:8])
        err.print(f"cnet: error: the job cannot run anywhere{': ' + why if why else ''}", markup=False,
                  highlight=False)
        return 1
    start = best.get("predicted_start") or "now"
    cost = f" (may cost up to {best['price']})" if best.get("price") is not None else ""
    # sbatch prints this on standard error too: standard output stays empty, nothing was submitted
    err.print(f"cnet: job would start at {start} on {chosen}{cost}; nothing was submitted", markup=False,
              highlight=False)
    return 0


def exit_code_of(job) -> int:
    """sbatch --wait: the job's own exit code; a job that ended otherwise (cancelled, out of time,
    out of memory) exits non-zero even when its script had no code to give."""
    code = job.exit_code or 0
    if job.state == "COMPLETED":
        return code % 256
    return (code % 256) or 1


def wait_for(c: "ComputeNetClient", job_id: int):
    """The job once it has ended (sbatch --wait waits as long as it takes)."""
    from ..domain.states import JobState

    while True:
        job = c.job(job_id)
        if JobState(job.state).is_terminal:
            return job
        time.sleep(WAIT_POLL_S)


def print_submitted(job, parsable: bool, pinned: bool, console) -> None:
    if parsable:  # scripts read this: the id, and the cluster when -M named one (as sbatch)
        sys.stdout.write(f"{job.id};{job.cluster}\n" if pinned else f"{job.id}\n")
        sys.stdout.flush()
        return
    from . import render

    console.print(f"Submitted batch job {job.id} to {job.cluster}/{job.partition} "
                  f"(may cost up to {render.money(job.max_cost)})", highlight=False, markup=False)
