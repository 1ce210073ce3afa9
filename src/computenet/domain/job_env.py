"""Values of sbatch options an executor applies itself: --export, --begin, --signal.

Read as sbatch reads them (Slurm 22.05 man page); a value sbatch would refuse is
refused here with the form it takes. Stdlib only (the local runner imports it).
"""

from __future__ import annotations

import re
import signal as _signal
from datetime import datetime, time, timedelta

MAX_SIGNAL_SECONDS = 65535  # sbatch's limit for --signal's @time


class OptionValueError(ValueError):
    """An option value that cannot be used; the message names the option and its forms."""


_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_export(value: str) -> tuple[str, dict[str, str | None]]:
    """--export: ("ALL" | "NONE" | "LIST", {VAR: value or None to take it from the user's environment}).

    ``ALL`` (the default), ``NONE``, ``ALL,VAR=x,...`` or ``VAR[=x],...`` (only those, and SLURM_*)."""
    items = [item for item in value.split(",")] if value else [""]
    mode = "LIST"
    if items[0] in ("ALL", "NONE", "NIL"):
        mode = "NONE" if items[0] in ("NONE", "NIL") else "ALL"
        items = items[1:]
        if mode == "NONE" and items:
            raise OptionValueError("--export=NONE takes no variables (use --export=VAR=x,... instead)")
    variables: dict[str, str | None] = {}
    for item in items:
        name, eq, val = item.partition("=")
        if not _VAR.match(name):
            raise OptionValueError(f"--export: {item!r} is not VAR or VAR=value (use ALL, NONE, ALL,VAR=x or VAR=x,...)")
        variables[name] = val if eq else None
    if mode == "LIST" and not variables:
        raise OptionValueError("--export needs ALL, NONE or variables")
    return mode, variables


def parse_signal(value: str) -> tuple[bool, int, int]:
    """--signal=[{R|B}:]SIG[@seconds] -> (batch shell only, signal number, seconds before the limit)."""
    text = value
    batch_only = False
    if len(text) > 2 and text[1] == ":" and text[0] in "RB":
        batch_only = "B" in text[0]
        text = text[2:]
    elif len(text) > 3 and text[2] == ":" and set(text[:2]) == {"R", "B"}:
        batch_only, text = True, text[3:]
    sig_text, at, secs = text.partition("@")
    signum = _signal_number(sig_text)
    if signum is None:
        raise OptionValueError(f"--signal: unknown signal {sig_text!r} (use [B:]SIG[@seconds], e.g. B:USR1@120)")
    seconds = 60
    if at:
        if not secs.isdigit() or int(secs) > MAX_SIGNAL_SECONDS:
            raise OptionValueError(f"--signal: {secs!r} is not a number of seconds up to {MAX_SIGNAL_SECONDS}")
        seconds = int(secs)
    return batch_only, signum, seconds


def _signal_number(text: str) -> int | None:
    if text.isdigit():
        number = int(text)
        return number if 0 < number < 65 else None
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    sig = getattr(_signal, name, None)
    return int(sig) if isinstance(sig, _signal.Signals) else None


_NOW = re.compile(r"^now(?:\+(\d+)(second|minute|hour|day|week)?s?)?$", re.IGNORECASE)
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(AM|PM)?$", re.IGNORECASE)
_DATE = re.compile(r"^(\d{1,2})[/.](\d{1,2})(?:[/.](\d{2}))?$")
_NAMED = {"midnight": time(0), "noon": time(12), "elevenses": time(11), "fika": time(15), "teatime": time(16)}
_UNITS = {None: 1, "second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}


def parse_begin(value: str, now: datetime | None = None) -> datetime:
    """--begin as sbatch reads it, in the host's local time: now[+N[unit]], YYYY-MM-DD[THH:MM[:SS]],
    HH:MM[:SS] [AM|PM] (today, or tomorrow once past), MM/DD[/YY], today, tomorrow, midnight, noon..."""
    now = now or datetime.now().astimezone()
    text = value.strip()
    low = text.lower()
    m = _NOW.match(low)
    if m:
        return now + timedelta(seconds=int(m.group(1) or 0) * _UNITS[m.group(2)])
    if low in ("today", "tomorrow"):
        return datetime.combine(now.date() + timedelta(days=low == "tomorrow"), time(0), now.tzinfo)
    if low in _NAMED:
        moment = datetime.combine(now.date(), _NAMED[low], now.tzinfo)
        return moment if moment > now else moment + timedelta(days=1)
    try:
        m = _ISO.match(text)
        if m:
            y, mo, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
            return datetime(y, mo, d, h, mi, s, tzinfo=now.tzinfo)
        m = _CLOCK.match(text)
        if m:
            h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
            if m.group(4):
                if not 1 <= h <= 12:
                    raise ValueError("hour")
                h = h % 12 + (12 if m.group(4).upper() == "PM" else 0)
            moment = datetime.combine(now.date(), time(h, mi, s), now.tzinfo)
            return moment if moment > now else moment + timedelta(days=1)
        m = _DATE.match(text)
        if m:
            year = 2000 + int(m.group(3)) if m.group(3) else now.year
            moment = datetime(year, int(m.group(1)), int(m.group(2)), tzinfo=now.tzinfo)
            return moment if m.group(3) or moment.date() >= now.date() else moment.replace(year=year + 1)
    except ValueError:
        raise OptionValueError(f"--begin: {value!r} is not a valid date or time") from None
    raise OptionValueError(f"--begin: cannot read {value!r} (use now+1hour, HH:MM[:SS], YYYY-MM-DD[THH:MM[:SS]], "
                           "MM/DD[/YY], today, tomorrow, midnight or noon)")


# -- the environment a job starts from --------------------------------------------------------------

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
DEFAULT_SHELL = "/bin/bash"
# what of the host's environment a job may see: the locale and the clock, if well-formed
_HOST_KEEPS = ("LANG", "LC_ALL", "TZ")
_HOST_VALUE = re.compile(r"^[A-Za-z0-9_.:@+/-]{1,128}$")


def login_environment(login: str | None, home: str | None, *, path: str = DEFAULT_PATH,
                      shell: str | None = DEFAULT_SHELL, host: dict[str, str] | None = None) -> dict[str, str]:
    """A job's starting environment as a login gives it, built, never inherited: PATH, LANG/LC_ALL and
    TZ (``host``'s, if set and well-formed; LANG C.UTF-8 otherwise), USER/LOGNAME = ``login`` (the Unix
    account the job runs as), HOME and SHELL. Nothing else of ``host`` (the server's environment: its
    secrets, its HOME) gets in. ``home``/``shell`` None: left to whatever switches to the account
    (runuser, an SSH login), which sets them from its passwd entry.

    The base of sbatch's --export: ALL adds to it, NONE and lists start without it (Slurm and the
    local executor apply it alike)."""
    env = {"PATH": path}
    for name in _HOST_KEEPS:
        value = (host or {}).get(name)
        if value and _HOST_VALUE.match(value):
            env[name] = value
    env.setdefault("LANG", "C.UTF-8")
    if login:
        env["USER"] = env["LOGNAME"] = login
    if home:
        env["HOME"] = home
    if shell:
        env["SHELL"] = shell
    return env
