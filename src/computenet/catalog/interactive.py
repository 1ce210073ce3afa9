"""What an interactive app's script gets from the platform before its own body.

The platform stages two private files (mode 0600) into the job's directory before the job is
submitted: the one-time secret and the base URL the proxy serves the session under. The preamble
picks a free port on the node and reports host and port in a small JSON file that the platform
reads back (and does not trust: services/sessions/report.py). The secret is never on a command
line or in the environment: a server takes it from the file (e.g. JUPYTER_TOKEN_FILE).
"""

from __future__ import annotations

SECRET_FILE = ".cnet-session.secret"  # dot files: JupyterLab neither lists nor serves them
BASE_FILE = ".cnet-session.base"
REPORT_FILE = ".cnet-session.json"

# the probe each type answers when it is up, relative to the base URL (a spec may name its own)
DEFAULT_PROBES = {"jupyterlab": "api/status", "shell": "", "desktop": ""}

PREAMBLE = f"""\
# ComputeNet interactive session: a free port here, the one-time secret staged by the platform
umask 077
CNET_SESSION_SECRET_FILE="$PWD/{SECRET_FILE}"
if [ ! -s "$CNET_SESSION_SECRET_FILE" ]; then echo "ComputeNet: the session secret is missing" >&2; exit 1; fi
CNET_SESSION_BASE_URL="$(cat "$PWD/{BASE_FILE}")"
CNET_SESSION_HOST="${{SLURMD_NODENAME:-$(hostname 2>/dev/null || uname -n)}}"  # the scheduler's name for it
if command -v python3 >/dev/null 2>&1; then
  CNET_SESSION_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')"
else
  CNET_SESSION_PORT="$(shuf -i 20000-60999 -n 1)"
fi
printf '{{"host": "%s", "port": %s}}\\n' "$CNET_SESSION_HOST" "$CNET_SESSION_PORT" > {REPORT_FILE}.part
mv -f {REPORT_FILE}.part {REPORT_FILE}
echo "ComputeNet: the session server starts on $CNET_SESSION_HOST:$CNET_SESSION_PORT"
"""


def probe_path(interactive: dict) -> str:
    return interactive.get("probe") or DEFAULT_PROBES.get(interactive.get("type", ""), "")
