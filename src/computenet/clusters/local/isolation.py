"""What keeps local jobs apart from the server and from each other (stdlib only: the runner imports it).

Three modes, chosen once when the executor starts:

``users``
    The server runs as root and util-linux ``unshare``/``setpriv`` work. Each job runs in its
    own PID and mount namespace (``/proc`` remounted), so every process it starts, ``setsid``
    ones included, ends when the job does; as its owner's mapped Unix login or else a dedicated
    unprivileged uid per platform user from a configured range (no /etc/passwd entry needed,
    like systemd's DynamicUser); with a HOME of its own and none of the server's environment.
    The data directory is 0711 (jobs pass through, read nothing), everything the server keeps
    there is made 0600/0700, the spool's state is root's 0600, each user's space is 0700 and
    theirs.
``namespace``
    Root, but users cannot be separated (``isolation = "off"``, or the data directory or the
    workspace root sits below a directory others may not enter): jobs still get their own PID
    namespace, but run as the server's user. One tenant only.
``none``
    Not root (or no namespaces): jobs are plain process groups of the server's user. One tenant only.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ... import fsutil

USERS, NAMESPACE, NONE = "users", "namespace", "none"
DEFAULT_UID_RANGE = (70000, 79999)
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
UID_MAP = "local-job-uids.json"  # in the data directory: one map for every local cluster of the host

# PID 1 of the job's namespace, as the job's user: enter the working directory, open stdout and
# stderr (as the user, so a planted link reaches only what the user may write), run the script
# as a child (PID 1 ignores signals it has no handler for) and pass SIGTERM on (the signals --signal
# may send reach every process of the job: PID 1 catches them with no-op handlers, which its
# children do not inherit); its own notices
# ("Terminated") are not the job's output; its exit ends the namespace, and the kernel then kills
# everything left in it.
INIT = r"""
wd=$1 out=$2 err=$3 mode=$4; shift 4
cd -- "$wd" || exit 1
for f in "$out" "$err"; do d=${f%/*}; [ -z "$d" ] || [ -d "$d" ] || mkdir -p -- "$d" || exit 1; done
if [ "$mode" = append ]; then exec 3>>"$out" || exit 1; else exec 3>"$out" || exit 1; fi
if [ "$err" = "$out" ]; then exec 4>&3; elif [ "$mode" = append ]; then exec 4>>"$err" || exit 1; else exec 4>"$err" || exit 1; fi
exec 2>/dev/null
trap 'kill -TERM "$c"' TERM
trap : USR1 USR2 HUP INT QUIT ALRM
"$@" >&3 2>&4 3>&- 4>&- &
c=$!
exec 3>&- 4>&-
while :; do wait "$c"; s=$?; kill -0 "$c" || break; done
exit "$s"
"""


class IsolationError(Exception):
    """The job cannot be prepared to run isolated (its space, its uid)."""


@dataclass(frozen=True)
class JobUser:
    uid: int
    gid: int
    name: str
    home: str
    login: bool  # a real login (its groups apply) rather than a dynamic uid


@dataclass(frozen=True)
class Mode:
    name: str
    detail: str  # for the start-up log and the cluster's health

    @property
    def single_tenant(self) -> bool:
        return self.name != USERS


def namespaces_work() -> bool:
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or not unshare:
        return False
    try:
        return subprocess.run([unshare, "--pid", "--fork", "--kill-child", "--mount-proc", "true"],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _closed_ancestor(path: Path, ours: Path) -> Path | None:
    """The first directory above ``path`` that others may not pass through, if any
    (``ours``, the data directory, and what is in it, are opened by the executor itself)."""
    for parent in reversed(path.parents):
        if parent == ours or ours in parent.parents:
            break
        try:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return parent
        except FileNotFoundError:
            return None
    return None


def choose(wanted: str, data_dir: Path | None, workdir_root: str | None) -> Mode:
    if not namespaces_work():
        why = "the server is not root" if os.geteuid() != 0 else "PID namespaces (util-linux unshare) are not available"
        return Mode(NONE, f"single tenant: jobs run as the server's user without isolation ({why})")
    if wanted == "off":
        return Mode(NAMESPACE, "single tenant: isolation = \"off\"; jobs run as the server's user in their own PID namespace")
    if not shutil.which("setpriv"):
        return Mode(NAMESPACE, "single tenant: util-linux setpriv is missing; jobs run as the server's user")
    if data_dir is None or workdir_root is None:
        return Mode(NAMESPACE, "single tenant: no data directory and workspace root given")
    ours = Path(data_dir).resolve()
    for path in (ours, Path(workdir_root).resolve()):
        closed = _closed_ancestor(path, ours)
        if closed is not None:
            return Mode(NAMESPACE, f"single tenant: job users cannot reach {path} ({closed} is mode "
                                   f"{stat.S_IMODE(os.stat(closed).st_mode):o}); put the data directory and "
                                   "workdir_root where others may pass (e.g. /var/lib/computenet) to isolate users")
    return Mode(USERS, "jobs isolated: own uid per user, PID and mount namespace, 0700 spaces")


# -- the host's side: permissions --------------------------------------------------------------

def open_path(data_dir: Path, below: list[Path]) -> None:
    """Let job users pass (0711, not list) through ``data_dir`` down to each of ``below``."""
    data_dir = data_dir.resolve()
    for target in below:
        target = target.resolve()
        target.mkdir(parents=True, exist_ok=True)
        if target != data_dir and data_dir not in target.parents:  # a workdir_root of its own
            mode = stat.S_IMODE(os.stat(target).st_mode)
            if not mode & stat.S_IXOTH:
                os.chmod(target, mode | 0o111)
            continue
        for directory in [target, *target.parents]:
            if directory != data_dir and data_dir not in directory.parents:
                break
            if os.stat(directory).st_uid == os.geteuid():
                os.chmod(directory, 0o711)


def harden(data_dir: Path, passable: list[Path]) -> None:
    """Everything the server keeps in its data directory is its own: no group or other bits.

    Run at start-up and before each job, so a key or database file made after start-up
    (with the server's umask) is closed before any job could read it."""
    data_dir = data_dir.resolve()
    targets = {p.resolve() for p in passable}
    on_the_way = {parent for p in targets for parent in p.parents}
    # a directory on the way to a passable one (the storage root above users' workspaces) is
    # entered too: what sits beside the way (uploads in progress, project workspaces) is closed
    pending = [data_dir]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                path = Path(entry.path)
                if path in targets or entry.is_symlink():
                    continue
                if path in on_the_way:
                    pending.append(path)
                    continue
                try:
                    mode = stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode)
                    if mode & 0o077:
                        os.chmod(path, mode & 0o700, follow_symlinks=False)
                except FileNotFoundError:
                    pass


# -- who a job runs as -------------------------------------------------------------------------

def mapped_login(login: str) -> JobUser:
    try:
        entry = pwd.getpwnam(login)
    except KeyError:
        raise IsolationError(f"Unix login {login!r} does not exist on this host") from None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise IsolationError(f"jobs never run as root (login {login!r} has uid/gid 0)")
    return JobUser(entry.pw_uid, entry.pw_gid, login, entry.pw_dir, True)


def dynamic_user(data_dir: Path, space_name: str, space: str, uid_range: tuple[int, int]) -> JobUser:
    """The platform user's own uid, allocated once from ``uid_range`` and kept in the data directory."""
    low, high = uid_range
    with open(data_dir / f".{UID_MAP}.lock", "a+") as lock:
        os.fchmod(lock.fileno(), 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = data_dir / UID_MAP
        table = fsutil.read_json_or(path, None)
        if table is None and path.exists() and path.stat().st_size:
            # never reuse a uid another user's files may carry: a damaged map stops new users
            raise IsolationError(f"{path} is damaged; restore it before new users can run jobs")
        table = table or {}
        uid = table.get(space_name)
        if not isinstance(uid, int):
            taken = {v for v in table.values() if isinstance(v, int)}
            uid = next((u for u in range(low, high + 1) if u not in taken and not _has_passwd_entry(u)), None)
            if uid is None:
                raise IsolationError(f"no free job uid left in {low}-{high}")
            table[space_name] = uid
            fsutil.atomic_write_json(path, table)
    return JobUser(uid, uid, space_name, space, False)


def _has_passwd_entry(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


# -- the job's space ---------------------------------------------------------------------------

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def prepare_space(workdir_root: str, workdir: str, user: JobUser) -> None:
    """Make the user's space (0700), the path to the working directory and what the service
    staged into it the job user's own. Directory by directory through descriptors opened
    without following links: the space belongs to a job user, who could swap a directory for
    a link, and a chown by path would then hand them a file of the host."""
    root = os.path.normpath(workdir_root)
    workdir = os.path.normpath(workdir)
    if not workdir.startswith(root + "/"):
        raise IsolationError(f"working directory {workdir} is outside the workspace root {root}")
    fd = os.open(root, _DIR)
    try:
        for depth, name in enumerate(workdir[len(root) + 1:].split("/")):
            try:
                os.mkdir(name, 0o700, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                child = os.open(name, _DIR, dir_fd=fd)
            except OSError as exc:
                raise IsolationError(f"{name!r} in {workdir} is not a plain directory: {exc.strerror}") from None
            os.close(fd)
            fd = child
            owner = os.fstat(fd).st_uid
            if owner == 0:  # made by the service (this submission, staging)
                os.fchown(fd, user.uid, user.gid)
            elif owner != user.uid:
                raise IsolationError(f"{workdir} is not {user.name}'s (a component has uid {owner})")
            if depth == 0:
                os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    _give_space(os.path.join(root, workdir[len(root) + 1:].split("/")[0]), user)


def _give_space(space: str, user: JobUser) -> None:
    """What the service wrote into the user's space (uploads, staged inputs, fetched outputs:
    root's) becomes the job user's, so a job reads its workspace as `cnet files` shows it.

    Walked through descriptors opened without following links; a file with more than one link
    is left alone (a job user who could link a file of the host into the space must not be
    handed it), and nothing that is neither root's nor the user's is descended into."""
    pending = [os.open(space, _DIR)]
    while pending:
        fd = pending.pop()
        try:
            with os.scandir(fd) as entries:
                names = [(e.name, e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False))
                         for e in entries if not e.is_symlink()]
            for name, is_dir, is_file in names:
                if not (is_dir or is_file):
                    continue
                try:
                    child = os.open(name, (_DIR if is_dir else os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                                           | os.O_CLOEXEC), dir_fd=fd)
                except OSError:
                    continue  # swapped for a link meanwhile, or gone
                st = os.fstat(child)
                if st.st_uid == 0 and (stat.S_ISDIR(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_nlink == 1)):
                    os.fchown(child, user.uid, user.gid)
                    st = os.fstat(child)
                if stat.S_ISDIR(st.st_mode) and st.st_uid == user.uid:
                    pending.append(child)
                else:
                    os.close(child)
        finally:
            os.close(fd)


# -- the runner's side -------------------------------------------------------------------------

def job_argv(run: dict, script: str, args: list[str], workdir: str, output: str, error: str,
             open_mode: str = "truncate") -> list[str]:
    """The command the runner starts for a job in ``namespace`` or ``users`` mode."""
    argv = [shutil.which("unshare") or "unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--"]
    if run["mode"] == USERS:
        argv += [shutil.which("setpriv") or "setpriv", f"--reuid={run['uid']}", f"--regid={run['gid']}",
                 "--init-groups" if run.get("login") else "--clear-groups", "--no-new-privs", "--"]
    return argv + ["/bin/sh", "-c", INIT, "cnet-job", workdir, output, error, open_mode, script, *args]


class Namespace:
    """A job's PID namespace, held open while the runner lives.

    The kernel gives a destroyed namespace's number to a later one, so a number alone could name
    the next job's namespace once this one has gone: the open file keeps the namespace (and with it
    its number) allocated, and processes are matched on the file's device and inode."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        st = os.fstat(fd)
        self.key = (st.st_dev, st.st_ino)

    def pids(self) -> list[int]:
        pids = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    st = os.stat(f"/proc/{name}/ns/pid")
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) == self.key:
                    pids.append(int(name))
        return pids

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def hold_namespace(pid: int) -> Namespace | None:
    """The PID namespace the runner's ``unshare`` (its child, not yet waited for, so ``pid`` is still
    that process) made for the job; None until it has."""
    try:
        fd = os.open(f"/proc/{pid}/ns/pid_for_children", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    held = Namespace(fd)
    mine = os.stat("/proc/self/ns/pid")
    if held.key == (mine.st_dev, mine.st_ino):
        held.close()
        return None
    return held


def signal_job(pgid: int, namespace: Namespace | None, sig: int) -> None:
    """Every process of the job: its process group and, in a namespace, those that left it."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    if namespace:
        for pid in namespace.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
