"""Adding the sampling agent to a job's batch script (zero configuration for the user).

The agent's source travels inside the script (a quoted heredoc written into the job's working
directory by the job itself, as the job's own user), so nothing has to be installed or staged
on the cluster. It is started detached from the batch shell (a bare ``wait`` in the user's
script must not wait for it) and stopped from an EXIT trap so its last sample is written.
Only shell scripts are changed; a Python or other interpreter script runs unmonitored.
"""

from __future__ import annotations

import functools
import re
import shlex
from importlib import resources

DELIMITER = "__CNET_AGENT_SOURCE__"
SAMPLES_GLOB = ".cnet-samples.*.jsonl"
_SHELL = re.compile(r"^#!\s*(/usr)?/bin/(env\s+)?(ba|da|k|z)?sh\b")


@functools.lru_cache(maxsize=1)
def agent_source() -> str:
    text = resources.files("computenet.monitoring").joinpath("agent.py").read_text(encoding="utf-8")
    if any(line.strip() == DELIMITER for line in text.splitlines()):  # would end the heredoc early
        raise RuntimeError(f"agent.py contains the heredoc delimiter {DELIMITER}")
    return text


def launcher(interval_s: float, url: str | None = None, token: str | None = None) -> str:
    """Shell lines that write the agent, start it detached and stop it when the script exits.
    With ``url`` the agent also POSTs its samples there, signed with this job's ``token``."""
    post = ""
    if url and token:
        post = f" --url {shlex.quote(url)}"
    env = f"COMPUTENET_AGENT_TOKEN={shlex.quote(token)} " if url and token else ""
    return (
        "# --- ComputeNet job monitoring (added by the platform: CPU, memory, I/O, GPU samples) ---\n"
        "__cnet_samples=\".cnet-samples.${SLURM_JOB_ID:-$$}${SLURM_ARRAY_TASK_ID:+.$SLURM_ARRAY_TASK_ID}.jsonl\"\n"
        "__cnet_agent_py=\".cnet-agent.$$.py\"\n"
        f"cat > \"$__cnet_agent_py\" <<'{DELIMITER}'\n"
        f"{agent_source().rstrip()}\n"
        f"{DELIMITER}\n"
        "__cnet_agent=\"\"\n"
        "if command -v python3 >/dev/null 2>&1; then\n"
        # $( ... & echo $!) runs it in a subshell that exits at once: the agent is not this shell's child
        f"  __cnet_agent=$({env}python3 \"$__cnet_agent_py\" --pid $$ --interval {interval_s:g} "
        f"--out \"$__cnet_samples\"{post} "
        "--job \"${COMPUTENET_JOB_ID:-}\" </dev/null >/dev/null 2>>.cnet-agent.log & echo $!)\n"
        "fi\n"
        "__cnet_stop() {\n"
        "  if [ -n \"$__cnet_agent\" ]; then\n"
        "    kill -TERM \"$__cnet_agent\" 2>/dev/null\n"
        # it is not our child: once it has written its last sample it is gone, or a zombie nobody reaps
        "    for __cnet_i in 1 2 3 4 5 6 7 8 9 10; do\n"
        "      __cnet_st=$(cut -d' ' -f3 \"/proc/$__cnet_agent/stat\" 2>/dev/null)\n"
        "      if [ -z \"$__cnet_st\" ] || [ \"$__cnet_st\" = Z ]; then break; fi\n"
        "      sleep 0.1\n"
        "    done\n"
        "  fi\n"
        "  rm -f \"$__cnet_agent_py\"\n"
        "}\n"
        "trap __cnet_stop EXIT\n"
        "# --- end of ComputeNet job monitoring ---\n"
    )


def is_shell_script(script: str) -> bool:
    return bool(_SHELL.match(script.split("\n", 1)[0]))


def inject(script: str, interval_s: float, url: str | None = None, token: str | None = None) -> str | None:
    """The script with the launcher after its #SBATCH header, or None when it is not a shell script."""
    lines = script.splitlines(keepends=True)
    if not lines or not _SHELL.match(lines[0]):
        return None
    end = 1
    while end < len(lines) and (not lines[end].strip() or lines[end].lstrip().startswith("#")):
        end += 1  # sbatch reads #SBATCH lines only before the first command
    head = "".join(lines[:end])
    if not head.endswith("\n"):
        head += "\n"
    return head + launcher(interval_s, url, token) + "".join(lines[end:])
