"""Which application a plain batch script runs, from the executables it calls: so jobs outside the
app centre join the application characteristics under the same names (lammps, gromacs...).

Pure and conservative: a known executable on a command line (not in a comment) names the app; else
None, and the job is profiled under its own name. Nothing is run or imported.
"""

from __future__ import annotations

import re

# executable (as a whole word on a command line) -> the application's name in the app centre
KNOWN: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(pattern), app) for pattern, app in (
    (r"(?<![\w.-])lmp(?:_\w+)?(?![\w.-])", "lammps"),
    (r"(?<![\w.-])(?:gmx(?:_mpi|_d)?|mdrun(?:_mpi)?)(?![\w.-])", "gromacs"),
    (r"(?<![\w.-])(?:pw|cp|ph|neb)\.x(?![\w.-])", "quantum-espresso"),
    (r"(?<![\w.-])(?:simple|ico|piso|pimple|inter|rhoSimple|buoyantSimple|potential)Foam(?![\w.-])", "openfoam"),
    (r"(?<![\w.-])vasp_(?:std|gam|ncl)(?![\w.-])", "vasp"),
    (r"(?<![\w.-])cp2k(?:\.(?:psmp|popt|ssmp|sopt))?(?![\w.-])", "cp2k"),
    (r"(?<![\w.-])namd[23](?![\w.-])", "namd"),
    (r"(?<![\w.-])g(?:09|16)(?![\w.-])", "gaussian"),
    (r"(?<![\w.-])wrf\.exe(?![\w.-])", "wrf"),
    (r"(?<![\w.-])torchrun(?![\w.-])", "pytorch-ddp"),
    (r"(?<![\w.-])papermill(?![\w.-])", "jupyter-notebook"),
))


def infer_app(script: str) -> str | None:
    """The first known application the script runs, line by line; comments and #SBATCH lines skipped."""
    for line in script.splitlines():
        code = line.strip()
        if not code or code.startswith("#"):
            continue
        code = code.split(" #", 1)[0]  # a trailing comment
        for pattern, app in KNOWN:
            if pattern.search(code):
                return app
    return None


def profile_key(app: dict | None, script: str | None, name: str) -> str:
    """The application a job's profile is kept under: an app-centre run under its app's name; a plain
    script under the app its executable names (infer_app); anything else under "job:<name>", never
    mistaken for an app."""
    return ((app or {}).get("name") or infer_app(script or "") or f"job:{name}")[:200]
