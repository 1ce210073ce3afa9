"""Every sbatch option (Slurm 22.05), and what each kind of cluster does with it.

One table: for each option its long and short name, whether it takes a value,
where the platform keeps it (``key``: modelled, read to route, price and hold
the job), and per cluster kind whether it is honoured (and how), translated,
or refused with a reason. Nothing is silently ignored: an option a kind cannot
honour rules that kind's clusters out, and the router gives the reason.

Kinds: ``slurm`` (the command-line tools, on this host or over SSH),
``slurmrest`` (slurmrestd v0.0.38), ``local`` (the embedded executor).
The platform itself handles ``-M``, ``--parsable``, ``--wait`` and ``--test-only``.
"""

from __future__ import annotations

from dataclasses import dataclass

HONOURED, TRANSLATED, REFUSED, PLATFORM = "honoured", "translated", "refused", "platform"
KINDS = ("slurm", "slurmrest", "local")
VALUE, FLAG, OPTIONAL = "value", "flag", "optional"  # OPTIONAL: only as --opt=value (as getopt)


@dataclass(frozen=True)
class Verdict:
    status: str  # HONOURED | TRANSLATED | REFUSED | PLATFORM
    how: str  # how it is honoured, or why it is refused

    @property
    def refused(self) -> bool:
        return self.status == REFUSED


def ok(how: str = "passed to sbatch as written") -> Verdict:
    return Verdict(HONOURED, how)


def tr(how: str) -> Verdict:
    return Verdict(TRANSLATED, how)


def no(why: str) -> Verdict:
    return Verdict(REFUSED, why)


def platform(how: str) -> Verdict:
    return Verdict(PLATFORM, how)


_REST = "slurmrestd v0.0.38 cannot take it (it crashes or drops it); use a cluster reached by the command line"
_ONE_HOST = "has no meaning on the local executor (one host, no scheduler plug-ins)"
_SLURM = ok()


@dataclass(frozen=True)
class Option:
    long: str
    short: str | None
    arg: str  # VALUE | FLAG | OPTIONAL
    slurm: Verdict
    slurmrest: Verdict
    local: Verdict
    key: str | None = None  # where a modelled value lands (sbatch.py); None: kept as written

    def verdict(self, kind: str) -> Verdict:
        return getattr(self, kind)

    @property
    def takes_value(self) -> bool:
        return self.arg == VALUE


def _o(long: str, short: str | None, arg: str, local: Verdict, *, key: str | None = None,
       rest: Verdict | None = None, slurm: Verdict = _SLURM) -> Option:
    return Option(long, short, arg, slurm, rest or no(_REST), local, key)


def _everywhere(long: str, short: str | None, arg: str, verdict: Verdict, key: str | None = None) -> Option:
    return Option(long, short, arg, verdict, verdict, verdict, key)


_J = "sent as the job's JSON field"
OPTIONS: tuple[Option, ...] = (
    # -- what the job asks for ------------------------------------------------------------------
    _o("nodes", "N", VALUE, ok("one host: 1 (or a range starting at 1)"), key="nodes", rest=tr(_J)),
    _o("ntasks", "n", VALUE, ok("SLURM_NTASKS; tasks x cores fit the host's slots"), key="ntasks", rest=tr(_J)),
    _o("ntasks-per-node", None, VALUE, ok("as --ntasks on the one node"), key="ntasks_per_node", rest=tr(_J)),
    _o("cpus-per-task", "c", VALUE, ok("cores reserved from the host's slots"), key="cpus_per_task", rest=tr(_J)),
    _o("mem", None, VALUE, ok("a limit the kernel enforces (RLIMIT_AS on the job's address space); "
                              "SLURM_MEM_PER_NODE"), key="mem", rest=tr(_J)),
    _o("mem-per-cpu", None, VALUE, ok("x cores, enforced as --mem; SLURM_MEM_PER_CPU"), key="mem_per_cpu",
       rest=tr(_J)),
    _o("gres", None, VALUE, ok("GPUs reserved from the host's GPU slots"), key="gres", rest=tr(_J)),
    _o("gpus", "G", VALUE, ok("GPUs reserved from the host's GPU slots"), key="gpus", rest=tr(_J)),
    _o("gpus-per-node", None, VALUE, ok("GPUs reserved from the host's GPU slots"), key="gpus_per_node",
       rest=tr("sent as the job's gres")),
    _o("gpus-per-task", None, VALUE, ok("x tasks, reserved from the host's GPU slots"), key="gpus_per_task"),
    _o("cpus-per-gpu", None, VALUE, ok("x GPUs, reserved from the host's slots"), key="cpus_per_gpu"),
    _o("mem-per-gpu", None, VALUE, ok("x GPUs, enforced as --mem"), key="mem_per_gpu"),
    _o("time", "t", VALUE, ok("killed at the limit (SIGTERM, SIGKILL after 5 s); UNLIMITED is the "
                              "partition's maximum"), key="time",
       rest=tr(_J), slurm=tr("the limit the platform holds money for; UNLIMITED is the partition's maximum")),
    _o("time-min", None, VALUE, ok("the job may run as short as this; one host never shortens it")),
    _o("partition", "p", VALUE, ok("must be the executor's one partition"), key="partition",
       rest=tr("the partition the router chose"), slurm=tr("the partition the router chose")),
    _o("account", "A", VALUE, ok("the platform account billed"), key="account",
       rest=tr("the Slurm account mapped to the platform account"),
       slurm=tr("the Slurm account mapped to the platform account")),
    _o("qos", "q", VALUE, no("the local executor has no QOS"), key="qos", rest=tr(_J)),
    _o("constraint", "C", VALUE, no("the local executor's node has no features"), key="constraint", rest=tr(_J)),
    _o("exclusive", None, OPTIONAL, ok("plain --exclusive takes every slot of the host"), key="exclusive",
       rest=tr("plain --exclusive only")),
    _o("nodelist", "w", VALUE, no("the local executor has one node and no node names")),
    _o("exclude", "x", VALUE, no("the local executor has one node and no node names")),
    _o("mincpus", None, VALUE, no(_ONE_HOST)),
    _o("tmp", None, VALUE, no("the local executor cannot reserve or limit temporary disk")),
    _o("licenses", "L", VALUE, no("the local executor has no licenses")),
    _o("reservation", None, VALUE, no("the local executor has no reservations")),
    _o("nice", None, OPTIONAL, no("the local executor runs jobs in submission order, without priorities")),
    _o("priority", None, VALUE, no("the local executor runs jobs in submission order, without priorities")),
    _o("contiguous", None, FLAG, ok("one host is always contiguous")),
    _o("spread-job", None, FLAG, no(_ONE_HOST)),
    _o("overcommit", "O", FLAG, no("the local executor never overcommits its slots")),
    _o("oversubscribe", "s", FLAG, no("the local executor never shares slots")),
    _o("use-min-nodes", None, FLAG, ok("one host: always the fewest nodes")),
    _o("switches", None, VALUE, no(_ONE_HOST)),
    _o("core-spec", "S", VALUE, no(_ONE_HOST)),
    _o("thread-spec", None, VALUE, no(_ONE_HOST)),
    _o("extra-node-info", "B", VALUE, no(_ONE_HOST)),
    _o("sockets-per-node", None, VALUE, no(_ONE_HOST)),
    _o("cores-per-socket", None, VALUE, no(_ONE_HOST)),
    _o("threads-per-core", None, VALUE, no(_ONE_HOST)),
    _o("ntasks-per-core", None, VALUE, no(_ONE_HOST)),
    _o("ntasks-per-socket", None, VALUE, no(_ONE_HOST)),
    _o("ntasks-per-gpu", None, VALUE, no(_ONE_HOST)),
    _o("gpus-per-socket", None, VALUE, no(_ONE_HOST)),
    _o("gres-flags", None, VALUE, no(_ONE_HOST)),
    _o("hint", None, VALUE, no(_ONE_HOST)),
    _o("distribution", "m", VALUE, no(_ONE_HOST)),
    _o("cpu-bind", None, VALUE, no(_ONE_HOST)),
    _o("mem-bind", None, VALUE, no(_ONE_HOST)),
    _o("gpu-bind", None, VALUE, no(_ONE_HOST)),
    _o("gpu-freq", None, VALUE, no(_ONE_HOST)),
    _o("cpu-freq", None, VALUE, no(_ONE_HOST)),
    _o("network", None, VALUE, no(_ONE_HOST)),
    _o("power", None, VALUE, no(_ONE_HOST)),
    _o("mcs-label", None, VALUE, no(_ONE_HOST)),
    _o("cluster-constraint", None, VALUE, no(_ONE_HOST)),
    _o("bb", None, VALUE, no("the local executor has no burst buffers")),
    _o("bbf", None, VALUE, no("the local executor has no burst buffers")),
    _o("container", None, VALUE, no("the local executor runs no OCI containers")),
    _o("reboot", None, FLAG, no("the local executor does not reboot its host")),
    _o("delay-boot", None, VALUE, no("the local executor does not reboot its host")),
    _o("wait-all-nodes", None, VALUE, ok("one host: always all up")),
    # -- when and how it runs ------------------------------------------------------------------------
    _o("array", "a", VALUE, no("the local executor does not run job arrays; submit to a Slurm cluster"),
       key="array", rest=tr(_J)),
    _o("dependency", "d", VALUE, no("the local executor has no dependencies; submit to a Slurm cluster"),
       key="dependency", rest=tr("platform job ids translated to the cluster's"),
       slurm=tr("platform job ids translated to the cluster's")),
    _o("kill-on-invalid-dep", None, VALUE, no("the local executor has no dependencies")),
    _o("begin", "b", VALUE, ok("the job stays pending until then")),
    _o("deadline", None, VALUE, no("the local executor has no deadlines")),
    _o("hold", "H", FLAG, ok("pending until released"), rest=no("slurmrestd v0.0.38 crashes on hold")),
    _o("signal", None, VALUE, ok("the signal is sent that many seconds before the time limit")),
    _o("requeue", None, FLAG, no("the local executor never requeues a job")),
    _o("no-requeue", None, FLAG, ok("the local executor never requeues a job")),
    _o("no-kill", "k", OPTIONAL, ok("one host: no node can fail apart from the job")),
    _o("mail-type", None, VALUE, no("the local executor sends no mail; the platform's notifications tell you")),
    _o("mail-user", None, VALUE, no("the local executor sends no mail; the platform's notifications tell you")),
    _o("profile", None, VALUE, no("the platform's job monitoring samples every job instead")),
    _o("acctg-freq", None, VALUE, no("the platform's job monitoring samples every job instead")),
    # -- names, files, environment ---------------------------------------------------------------------
    _o("job-name", "J", VALUE, ok("SLURM_JOB_NAME and %x"), key="job_name", rest=tr(_J),
       slurm=tr("as written (a name the platform can show)")),
    _o("output", "o", VALUE, ok("inside your space; directories it names are created"), key="output",
       rest=tr(_J), slurm=tr("resolved inside your space; directories it names are created first")),
    _o("error", "e", VALUE, ok("inside your space; directories it names are created"), key="error",
       rest=tr(_J), slurm=tr("resolved inside your space; directories it names are created first")),
    _o("input", "i", VALUE, no("the job's standard input is empty; read files from the script")),
    _o("open-mode", None, VALUE, ok("append or truncate the output files")),
    _o("chdir", "D", VALUE, ok("inside your space, created if missing"), key="workdir", rest=tr(_J),
       slurm=tr("inside your space, created if missing")),
    _o("export", None, VALUE, ok("ALL, NONE, ALL,VAR=x or VAR lists, from your environment (not the server's)")),
    _o("propagate", None, OPTIONAL, no("the local executor sets no resource limits from the submitting shell")),
    _o("comment", None, VALUE, ok("kept with the job"),
       slurm=ok("passed as written; where the platform's tag is in the comment (the cluster's job_tag = "
                "\"comment\", or your own --wckey) Slurm keeps `computenet:<id>.<nonce> <your comment>`; it may not "
                "itself start with computenet:")),
    _o("wckey", None, VALUE, no("the local executor has no workload keys"),
       slurm=ok("passed as written; the platform's tag then goes in the comment, before yours (it may not "
                "itself start with computenet:)")),
    _o("ignore-pbs", None, FLAG, ok("#PBS lines are never read")),
    _o("quiet", "Q", FLAG, ok("sbatch's own messages are not shown anyway")),
    _o("verbose", "v", FLAG, ok("sbatch's own messages are not shown anyway")),
    # -- what the platform does itself ------------------------------------------------------------------
    _everywhere("clusters", "M", VALUE, platform("pins the job to that cluster"), key="cluster"),
    _everywhere("parsable", None, FLAG, platform("cnet submit prints only the job id"), key="parsable"),
    _everywhere("wait", "W", FLAG, platform("cnet submit waits for the job to end and exits with its code"),
                key="wait"),
    _everywhere("test-only", None, FLAG, platform("nothing is submitted; cnet submit shows where and when it "
                                                  "would start (as cnet estimate)"), key="test_only"),
    # -- refused on every kind -------------------------------------------------------------------------
    _everywhere("uid", None, VALUE, no("jobs run as the submitting user's identity")),
    _everywhere("gid", None, VALUE, no("jobs run as the submitting user's identity")),
    _everywhere("get-user-env", None, OPTIONAL, no("the platform sets the job environment")),
    _everywhere("wrap", None, VALUE, no("submit a script instead of --wrap")),
    _everywhere("export-file", None, VALUE, no("files outside your workspace cannot be read")),
    _everywhere("batch", None, VALUE, no("node features are given with --constraint")),
    _everywhere("nodefile", "F", VALUE, no("files outside your workspace cannot be read; use --nodelist")),
    _everywhere("help", "h", FLAG, no("see `cnet submit --help`")),
    _everywhere("usage", None, FLAG, no("see `cnet submit --help`")),
    _everywhere("version", "V", FLAG, no("see `cnet version`")),
)

BY_LONG: dict[str, Option] = {o.long: o for o in OPTIONS}
BY_SHORT: dict[str, Option] = {o.short: o for o in OPTIONS if o.short}
ALIASES = {"workdir": "chdir", "cluster": "clusters", "exclusive": "exclusive"}  # old spellings still in scripts
for _alias, _name in ALIASES.items():
    BY_LONG.setdefault(_alias, BY_LONG[_name])


def refusal(kind: str, names: list[str]) -> str | None:
    """Why a cluster of ``kind`` cannot run a job that uses these options (long names), or None."""
    for name in names:
        option = BY_LONG.get(name)
        if option is None:
            continue
        verdict = option.verdict(kind)
        if verdict.refused:
            return f"--{option.long}: {verdict.how}"
    return None


def table_rows() -> list[dict]:
    """The table as plain rows (docs and the API)."""
    return [{"long": o.long, "short": o.short, "arg": o.arg, "modelled": o.key is not None,
             **{kind: {"status": o.verdict(kind).status, "how": o.verdict(kind).how} for kind in KINDS}}
            for o in OPTIONS]


def markdown() -> str:
    """docs/sbatch-options.md: ``python -m computenet.domain.sbatch_options > docs/sbatch-options.md``."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [
        "# sbatch options: what each kind of cluster does with them",
        "",
        "Generated from `src/computenet/domain/sbatch_options.py` (the one table the submit path,",
        "the router and the local executor read): `python -m computenet.domain.sbatch_options >",
        "docs/sbatch-options.md`. A test fails when this file is stale.",
        "",
        "- **honoured**: the cluster does what sbatch would (on Slurm: passed to sbatch as written);",
        "- **translated**: the platform turns it into what the cluster understands;",
        "- **platform**: the platform itself acts on it (`cnet submit`);",
        "- **refused**: a job using it is not sent to that kind of cluster, and the estimate and the",
        "  refusal say why. Nothing is silently ignored.",
        "",
        "Kinds: `slurm` (Slurm's commands, on the server's host or over SSH), `slurmrest`",
        "(slurmrestd v0.0.38), `local` (the embedded executor of the default installation).",
        "",
        "| option | slurm | slurmrest | local |",
        "|---|---|---|---|",
    ]
    for option in OPTIONS:
        name = f"`--{option.long}`" + (f" / `-{option.short}`" if option.short else "")
        verdicts = [option.verdict(kind) for kind in KINDS]
        lines.append(f"| {name} | " + " | ".join(f"**{v.status}**: {cell(v.how)}" for v in verdicts) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
