"""Adding the sampling agent to a job's batch script (zero configuration for the user).

One line goes in after the script's #SBATCH header (so the user's line numbers move by one):
the agent's source travels compressed inside it and runs with ``python3 -c`` (nothing is
written into the job's directory, nothing installed on the cluster); it is started detached
from the batch shell (a bare ``wait`` in the user's script must not wait for it) and stopped
from an EXIT trap that can never change the job's exit status, even under ``set -euo pipefail``.
Only shell scripts are changed; a Python or other interpreter script runs unmonitored.
"""

from __future__ import annotations

import base64
import functools
import re
import shlex
import zlib
from importlib import resources

MARKER = "cnet-agent"  # in the agent's command line: the trap only ever signals that process
_SHELL = re.compile(r"^#!\s*(/usr)?/bin/(env\s+)?(ba|da|k|z)?sh\b")


def samples_file(job_id: int) -> str:
    """The job's own samples file in its working directory (array tasks add .<task>)."""
    return f".cnet-samples.{job_id}"


@functools.lru_cache(maxsize=1)
def _packed_agent() -> str:
    text = resources.files("computenet.monitoring").joinpath("agent.py").read_text(encoding="utf-8")
    return base64.b64encode(zlib.compress(text.encode(), 9)).decode()


def launcher(job_id: int, interval_s: float, url: str | None = None, token: str | None = None) -> str:
    """The one line that starts the agent and arranges its stop."""
    code = f"import base64,zlib;exec(zlib.decompress(base64.b64decode('{_packed_agent()}')))  # {MARKER}"
    args = f"--pid $$ --interval {interval_s:g} --job {int(job_id)} --out \"$__cnet_out\""
    env = ""
    if url and token:
        args += f" --url {shlex.quote(url)}"
        env = f"COMPUTENET_AGENT_TOKEN={shlex.quote(token)} "
    # the file starts empty: one left in a reused directory by an earlier job with the same id
    # (a platform whose database was reset) is not this job's; a requeued run's were read while it ran
    start = (f"__cnet_out=\"{samples_file(job_id)}${{SLURM_ARRAY_TASK_ID:+.$SLURM_ARRAY_TASK_ID}}.jsonl\"; "
             "{ : > \"$__cnet_out\"; } 2>/dev/null || :; "
             f"__cnet_agent=$({env}python3 -c {shlex.quote(code)} {args} </dev/null >/dev/null 2>&1 & echo $!) "
             "|| __cnet_agent=; ")
    # the stop runs in a subshell with errexit off and its status ignored: $? of the job is kept
    stop = ("__cnet_stop() { __cnet_rc=$?; ( set +eu; p=$__cnet_agent; "
            f"if [ -n \"$p\" ] && grep -qs {MARKER} /proc/$p/cmdline; then kill -TERM \"$p\"; "
            "for i in 1 2 3 4 5 6 7 8 9 10; do s=$(cut -d' ' -f3 /proc/$p/stat); "
            "[ -z \"$s\" ] || [ \"$s\" = Z ] && break; sleep 0.1; done; fi ) >/dev/null 2>&1 || :; "
            "return $__cnet_rc; }; trap __cnet_stop EXIT")
    guard = "if command -v python3 >/dev/null 2>&1; then " + start + stop + "; fi"
    return f"{guard}  # ComputeNet job monitoring (CPU, memory, I/O, GPU samples)\n"


def is_shell_script(script: str) -> bool:
    return bool(_SHELL.match(script.split("\n", 1)[0]))


def inject(script: str, interval_s: float, url: str | None = None, token: str | None = None,
           job_id: int = 0) -> str | None:
    """The script with the launcher after its #SBATCH header, or None when it is not a shell script."""
    lines = script.split("\n")  # only "\n": a form feed in a comment is not a line break to bash
    if not lines or not _SHELL.match(lines[0]):
        return None
    end = 1
    while end < len(lines) and (not lines[end].strip() or lines[end].lstrip().startswith("#")):
        end += 1  # sbatch reads #SBATCH lines only before the first command
    return "\n".join(lines[:end]) + "\n" + launcher(job_id, interval_s, url, token) + "\n".join(lines[end:])
