"""The application catalogue: spec validation, parameters, sandboxed rendering, built-ins."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from computenet.catalog import (AppSpec, ParamError, Resources, SpecError, builtin_specs, load_spec,
                                render, resources_for, validate_params)

APPS = Path(__file__).parent / "fixtures" / "apps"
BUILTIN_NAMES = {"generic-shell", "python-script", "lammps", "gromacs", "openfoam", "quantum-espresso",
                 "pytorch-ddp", "jupyter-notebook"}
INTERACTIVE_NAMES = {"jupyterlab", "shell", "desktop"}  # sessions: no stand-in (the real server is the test):
# test_sessions.py, test_web_shell.py, test_web_desktop.py
needs_python3 = pytest.mark.skipif(not shutil.which("python3") or not shutil.which("bash"),
                                   reason="needs bash and python3 on PATH")

BASE = {
    "name": "demo",
    "version": "1.0.0",
    "category": "other",
    "title": {"en": "Demo", "zh": "演示"},
    "description": {"en": "A demo app", "zh": "演示应用"},
    "parameters": {
        "type": "object",
        "required": ["input"],
        "additionalProperties": False,
        "properties": {
            "input": {"type": "string", "x-input": True},
            "steps": {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 1000},
            "size": {"type": "string", "enum": ["small", "medium", "large"], "default": "small"},
            "temp": {"type": "number", "minimum": 0, "default": 1.5},
            "verbose": {"type": "boolean", "default": False},
            "title": {"type": "string", "default": "run"},
            "note": {"type": "string", "x-free-text": True, "default": ""},
        },
    },
    "resources": {
        "defaults": {"nodes": 1, "cores": 2, "gpus": 0, "mem_mb": 0, "time_minutes": 30},
        "maximum": {"nodes": 4, "cores": 8, "gpus": 0, "time_minutes": 1440},
        "by_parameter": {"size": {"small": {"cores": 2}, "medium": {"cores": 4}, "large": {"cores": 8, "nodes": 2}}},
    },
    "template": "{{ env.run }} -in {{ input }} -steps {{ steps }} -title {{ title }} -note {{ note }}\n",
    "environments": [
        {"name": "stand-in", "clusters": ["*"], "tags": ["stand-in"], "variables": {"run": "echo"}},
        {"name": "module", "clusters": ["*"], "modules": ["demo/1.0"], "variables": {"run": "srun demo"}},
    ],
    "outputs": ["log.demo", "*.dump"],
    "runtime_hint_minutes": 5,
}


def spec_with(**changes) -> AppSpec:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return load_spec(data)


def run_script(script: str, workdir: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    path = workdir / ".cnet-job.sh"
    path.write_text(script)
    return subprocess.run(["bash", str(path)], cwd=workdir, capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------- built-ins


def test_every_builtin_loads_with_bilingual_texts():
    specs = builtin_specs()
    assert {s.name for s in specs if s.kind == "batch"} == BUILTIN_NAMES
    assert {s.name for s in specs if s.kind == "interactive"} == INTERACTIVE_NAMES
    for spec in (s for s in specs if s.kind == "batch"):
        assert spec.title["en"] and spec.title["zh"] and spec.description["zh"]
        assert spec.input_parameters(), spec.name
        names = [e.name for e in spec.environments]
        assert names[0] == "stand-in" and len(names) == 2, spec.name
        # what a database stores (JSON) loads back into the same spec
        assert load_spec(json.loads(json.dumps(spec.source))) == spec
    assert builtin_specs() == specs  # cached


SOFTWARE_TAG = {"gromacs": "gromacs", "jupyter-notebook": "jupyter", "lammps": "lammps", "openfoam": "openfoam",
                "pytorch-ddp": "apptainer", "quantum-espresso": "quantum-espresso"}


def test_environment_for_picks_stand_in_only_on_tagged_clusters():
    for spec in (s for s in builtin_specs() if s.kind == "batch"):
        assert spec.environment_for("alpha", {"stand-in", "x"}).name == "stand-in"
        tag = SOFTWARE_TAG.get(spec.name)
        # the real code runs only where a cluster declares it installed (shell and Python: anywhere)
        assert (spec.environment_for("alpha", set()) is None) == (tag is not None)
        real = spec.environment_for("alpha", {tag} if tag else set())
        assert real is not None and real.name != "stand-in" and set(real.tags) == ({tag} if tag else set())
        assert real.modules or real.container or spec.name == "generic-shell"


def test_environment_for_none_when_nothing_matches():
    spec = spec_with(environments=[{"name": "module", "clusters": ["alpha"], "variables": {"run": "x"}},
                                   {"name": "gpu", "clusters": ["*"], "tags": ["gpu", "a100"], "variables": {"run": "y"}}])
    assert spec.environment_for("alpha", []).name == "module"
    assert spec.environment_for("beta", ["gpu"]) is None  # needs both tags
    assert spec.environment_for("beta", ["gpu", "a100"]).name == "gpu"
    assert spec.environment_for("beta", []) is None


def _stage(name: str, prop_value: str, workdir: Path) -> str:
    """Copy a sample input into the job directory; returns its staged name."""
    if name == "openfoam":
        with tarfile.open(workdir / "cavity.tar.gz", "w:gz") as tar:
            tar.add(APPS / "cavity", arcname="cavity")
        return "cavity.tar.gz"
    shutil.copy(APPS / Path(prop_value).name, workdir / Path(prop_value).name)
    return Path(prop_value).name


SAMPLES = {"generic-shell": {"script": "scripts/run.sh", "args": "one 'two words' $(touch pwned)"},
           "python-script": {"script": "hello.py", "args": "--flag 'a b'"},
           "lammps": {"input": "md/in.lj", "steps": "300"},
           "gromacs": {"tpr": "topol.tpr", "nsteps": 2000},
           "openfoam": {"case": "@lab/cavity.tar.gz", "end_time": "0.2", "cores": "2"},
           "quantum-espresso": {"input": "si.scf.in"},
           "pytorch-ddp": {"script": "train.py", "gpus": "2", "args": "--lr 0.1"},
           "jupyter-notebook": {"notebook": "nb/analysis.ipynb"}}
EXPECT_IN_OUTPUT = {"generic-shell": ("result.txt", "sum: 5"), "python-script": ("result.txt", "sum: 45"),
                    "lammps": ("log.lammps", "Loop time of"), "gromacs": ("md.log", "Finished mdrun"),
                    "openfoam": ("log.icoFoam", "End"), "quantum-espresso": ("pw.out", "JOB DONE."),
                    "pytorch-ddp": ("train.log", "epoch 3/3 rank 0/1 loss"),
                    "jupyter-notebook": ("analysis.executed.ipynb", "sum of squares: 285")}


@needs_python3
@pytest.mark.parametrize("name", sorted(BUILTIN_NAMES))
def test_builtin_runs_on_a_stand_in_cluster(name, tmp_path):
    spec = next(s for s in builtin_specs() if s.name == name)
    inputs_only = {p: SAMPLES[name][p] for p in spec.input_parameters()}
    defaults = validate_params(spec, inputs_only)
    assert set(defaults) == set(spec.properties())  # every other parameter has a valid default
    params = validate_params(spec, SAMPLES[name])
    resources = resources_for(spec, params)
    env = spec.environment_for("testbed", ["stand-in"])
    inputs = {p: _stage(name, params[p], tmp_path) for p in spec.input_parameters()}
    script = render(spec, params, env, inputs, resources)
    assert script.startswith("#!/bin/bash\n# ComputeNet app %s %s (stand-in)\nset -euo pipefail\n" % (name, spec.version))
    assert "#SBATCH" not in script and "module load" not in script
    done = run_script(script, tmp_path)
    assert done.returncode == 0, f"{name}: {done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    for pattern in spec.outputs:
        assert list(tmp_path.glob(pattern)), f"{name}: no output matches {pattern!r}"
    file, text = EXPECT_IN_OUTPUT[name]
    assert text in (tmp_path / file).read_text()
    assert not (tmp_path / "pwned").exists()


@needs_python3
def test_builtin_outputs_are_plausible(tmp_path):
    lammps = next(s for s in builtin_specs() if s.name == "lammps")
    params = validate_params(lammps, {"input": "in.lj", "steps": 200})
    shutil.copy(APPS / "in.lj", tmp_path)
    script = render(lammps, params, lammps.environments[0], {"input": "in.lj"}, resources_for(lammps, params))
    assert run_script(script, tmp_path).returncode == 0
    log = (tmp_path / "log.lammps").read_text()
    assert "for 200 steps with 32 atoms" in log  # -var steps overrode the script's own default of 500
    frames = (tmp_path / "traj.dump").read_text().count("ITEM: TIMESTEP")
    assert frames == 3  # steps 0, 100, 200 (dump every 100)
    notebook = next(s for s in builtin_specs() if s.name == "jupyter-notebook")
    params = validate_params(notebook, {"notebook": "analysis.ipynb"})
    shutil.copy(APPS / "analysis.ipynb", tmp_path)
    script = render(notebook, params, notebook.environments[0], {"notebook": "analysis.ipynb"},
                    resources_for(notebook, params))
    assert run_script(script, tmp_path).returncode == 0
    cells = json.loads((tmp_path / "analysis.executed.ipynb").read_text())["cells"]
    assert cells[1]["outputs"][0]["text"] == "sum of squares: 285\n"
    assert cells[2]["outputs"][0]["data"]["text/plain"] == "81" and cells[2]["execution_count"] == 2


def test_real_environment_scripts():
    lammps = next(s for s in builtin_specs() if s.name == "lammps")
    params = validate_params(lammps, {"input": "in.lj", "size": "medium"})
    script = render(lammps, params, lammps.environment_for("alpha", ["lammps"]), {"input": "in.lj"},
                    resources_for(lammps, params))
    assert "module load lammps/2Aug2023\n" in script and ".cnet-stand-in" not in script
    assert script.rstrip().endswith("srun lmp_mpi -in in.lj -var steps 1000 -log log.lammps")
    torch = next(s for s in builtin_specs() if s.name == "pytorch-ddp")
    params = validate_params(torch, {"script": "train.py", "gpus": 4})
    res = resources_for(torch, params)
    assert (res.gpus, res.cores, res.gpu_type) == (4, 32, None)
    script = render(torch, params, torch.environment_for("beta", ["gpu", "apptainer"]), {"script": "train.py"}, res)
    assert ("apptainer exec --nv docker://pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime torchrun --standalone "
            "--nnodes=1 --nproc_per_node=4 train.py --epochs 3") in script
    foam = next(s for s in builtin_specs() if s.name == "openfoam")
    params = validate_params(foam, {"case": "c.tar.gz", "cores": "4", "solver": "pisoFoam"})
    script = render(foam, params, foam.environment_for("alpha", ["openfoam"]), {"case": "c.tar.gz"}, resources_for(foam, params))
    assert 'srun pisoFoam -parallel -case "$casedir" > log.pisoFoam' in script
    assert "decomposePar" in script and "numberOfSubdomains -set 4" in script


# ---------------------------------------------------------------- injection and quoting

BAD_VALUES = ["$(touch /tmp/pwned)", "`id`", "x; rm -rf /", "a\nb", "a\x00b", "a|b", "a && b", "a > b", "a\\b"]


@pytest.mark.parametrize("value", BAD_VALUES)
def test_shell_metacharacters_and_control_characters_are_refused(value):
    spec = spec_with()
    with pytest.raises(ParamError, match="^parameter title: contains"):
        validate_params(spec, {"input": "in.x", "title": value})


def test_refusal_message_names_the_character():
    with pytest.raises(ParamError) as err:
        validate_params(spec_with(), {"input": "in.x", "title": "cost $5"})
    assert str(err.value) == "parameter title: contains '$' (shell metacharacters are refused)"


def test_free_text_still_refuses_control_characters():
    for value in ("a\nb", "a\x00b", "a\rb", "a\tb"):
        with pytest.raises(ParamError, match="parameter note: contains a control character"):
            validate_params(spec_with(), {"input": "in.x", "note": value})


@pytest.mark.skipif(not shutil.which("bash"), reason="needs bash")
def test_free_text_is_accepted_and_rendered_literally(tmp_path):
    spec = spec_with(template="echo {{ note }}\necho {{ note | words }}\n")
    for value in ("$(touch X)", "; touch Y", "`touch Z` 'q' \"d\" \\ * ~ & | >W"):
        params = validate_params(spec, {"input": "in.x", "note": value})
        assert params["note"] == value
        script = render(spec, params, spec.environments[0], {"input": "in.x"}, resources_for(spec, params))
        done = run_script(script, tmp_path)
        assert done.returncode == 0, done.stderr
        first = done.stdout.splitlines()[0]
        assert first == value
        assert sorted(p.name for p in tmp_path.iterdir()) == [".cnet-job.sh"]  # no X, Y, Z or W


def test_words_filter_splits_without_expanding():
    spec = spec_with(template="cmd {{ note | words }}\n")
    params = validate_params(spec, {"input": "in.x", "note": "--n 5 'two words' $(id)"})
    body = render(spec, params, spec.environments[0], {"input": "in.x"}, resources_for(spec, params)).splitlines()[-1]
    assert body == "cmd --n 5 'two words' '$(id)'"
    # refused when validated, as the template splits this parameter
    with pytest.raises(ParamError, match="^parameter note: cannot be split into arguments"):
        validate_params(spec, {"input": "in.x", "note": "unbalanced 'quote"})
    torch = next(s for s in builtin_specs() if s.name == "pytorch-ddp")
    with pytest.raises(ParamError, match="^parameter args: cannot be split"):
        validate_params(torch, {"script": "t.py", "args": 'say "hi'})
    # a parameter the template does not split may hold any balance of quotes
    assert validate_params(spec_with(), {"input": "in.x", "note": "it's"})["note"] == "it's"


def test_every_value_is_quoted_and_trusted_strings_are_not():
    spec = spec_with(template="{{ env.run }} {{ title }} {{ input }} {{ temp }} {{ verbose }} {{ resources.cores }} "
                              "{{ app.name }} {{ env.name }} {{ params.size }} {{ 'a b' }} {{ env.run ~ ' x' }}\n")
    params = validate_params(spec, {"input": "data/my file.in", "title": "hello world", "verbose": "yes"})
    script = render(spec, params, spec.environments[1], {"input": "my file.in"}, resources_for(spec, params))
    assert script.splitlines()[-1] == ("srun demo 'hello world' 'my file.in' 1.5 true 2 demo module small 'a b' "
                                       "'srun demo x'")
    assert "\nset +u\n" in script and "exit 1; }\nmodule load demo/1.0\nset -u\n" in script
    with pytest.raises(ValueError, match="staged file name"):
        render(spec, params, spec.environments[1], {"input": "../etc/passwd"}, resources_for(spec, params))


@pytest.mark.skipif(not shutil.which("bash"), reason="needs bash")
def test_modules_are_loaded_before_the_body(tmp_path):
    spec = spec_with(template="echo body {{ title }} ${UNSET_IN_BODY:-ok}\n")
    params = validate_params(spec, {"input": "in.x"})
    script = render(spec, params, spec.environment_for("alpha", []), {"input": "in.x"}, resources_for(spec, params))
    # a module function like Lmod's, which reads an unset variable (fatal under set -u)
    env = {"PATH": "/usr/bin:/bin", "BASH_FUNC_module%%": '() { echo "loaded $* $LMOD_UNSET_VAR"; }'}
    path = tmp_path / "job.sh"
    path.write_text(script)
    done = subprocess.run(["bash", str(path)], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "loaded load demo/1.0 \nbody run ok\n"
    if not any(Path(p).exists() for p in ("/etc/profile.d/lmod.sh", "/etc/profile.d/modules.sh")):
        done = subprocess.run(["bash", str(path)], cwd=tmp_path, capture_output=True, text=True,
                              env={"PATH": "/usr/bin:/bin"})
        assert done.returncode == 1 and "module command is not available" in done.stderr and "body" not in done.stdout


def test_stand_in_text_is_written_through_a_quoted_heredoc(tmp_path):
    program = "#!/bin/sh\necho \"stand-in $1 $(echo sub) ${HOME:+home}\"\n"
    spec = spec_with(environments=[{"name": "stand-in", "tags": ["stand-in"], "variables": {"run": "sh .cnet-stand-in"},
                                    "stand_in": program}])
    params = validate_params(spec, {"input": "in.x"})
    script = render(spec, params, spec.environments[0], {"input": "in.x"}, resources_for(spec, params))
    assert "<<'__CNET_STAND_IN__'\n" in script
    done = run_script(script, tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / ".cnet-stand-in").read_text() == program  # written verbatim, nothing expanded
    assert done.stdout.startswith("stand-in -in sub home")


# ---------------------------------------------------------------- templates reaching Python internals

INTERNAL_TEMPLATES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self.__init__.__globals__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{% endfor %}",
    "{{ input['__class__'] }}",
    "{{ input|attr('__class__') }}",
    "{{ [input]|map(attribute='__class__')|list }}",
    "{% if input is sameas(input.__class__) %}{% endif %}",
]


@pytest.mark.parametrize("template", INTERNAL_TEMPLATES)
def test_templates_reaching_python_internals_are_refused(template):
    with pytest.raises(SpecError) as err:
        spec_with(template=template)
    assert [path for path, _ in err.value.errors] == ["template"]
    assert "Python internals" in str(err.value)


def test_sandbox_refuses_at_render_time_too():
    # built at run time, so only the sandbox can see it
    with pytest.raises(SpecError) as err:
        spec_with(template="{{ input|attr('__cla' ~ 'ss__') }}")
    assert err.value.errors[0][0] == "template" and "Python internals" in err.value.errors[0][1]
    with pytest.raises(SpecError, match="template: .*more than 100000"):
        spec_with(template="{{ 'x' * 10000000 }}")
    with pytest.raises(SpecError, match="template: .*powers this large are refused"):
        spec_with(template="{{ (10 ** 1000) ** 1000 }}")
    with pytest.raises(SpecError, match="template: .*renders to more than"):
        spec_with(template="{% for i in range(20) %}{{ 'x' * 99999 }}{% endfor %}")


@pytest.mark.parametrize("template", [
    '{{ "x"|center(2**26) }}', '{{ "%067108864d" % 1 }}', '{{ "x".center(99999999) }}',
    '{{ range(100000)|join("x"*100000) }}', '{{ "{:099999999}".format(1) }}', '{{ "%0999999999d"|format(1) }}',
    '{{ "x"|indent(10000000, true) }}', '{{ ("a"*1000)|replace("a", "y"*10000) }}',
])
def test_templates_that_would_build_huge_strings_are_refused_before_building_them(template):
    started = time.monotonic()
    with pytest.raises(SpecError, match="^template: .*(refused|width)"):
        spec_with(template=template)
    assert time.monotonic() - started < 0.5  # refused up front, not after building the string


def test_yaml_aliases_are_refused():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" \
           "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    with pytest.raises(SpecError, match="aliases"):
        load_spec(bomb)


@pytest.mark.parametrize("template", [
    "{% set L = [1] * 99999 %}{% for a in L %}{% for b in L %}{% endfor %}{% endfor %}",
    "{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}",
])
def test_runaway_templates_are_stopped(template):
    one_env = [{"name": "module", "modules": ["demo/1.0"], "variables": {"run": "x"}}]
    started = time.monotonic()
    with pytest.raises(SpecError, match="^template: rendering took longer than 1 s$"):
        spec_with(template=template, environments=one_env)
    assert time.monotonic() - started < 5


def test_loops_still_work():
    spec = spec_with(template="{% for x in ['a', 'b c'] %}{{ x }}{% if not loop.last %},{% endif %}{% else %}none{% endfor %}\n")
    params = validate_params(spec, {"input": "in.x"})
    body = render(spec, params, spec.environments[0], {"input": "in.x"}, resources_for(spec, params)).splitlines()[-1]
    assert body == "a,'b c'"


def test_hidden_branch_is_still_sandboxed_at_render():
    # the test render at load time takes the default branch; a real render takes the other
    spec = spec_with(template="{% if steps == 9 %}{{ input|attr('__cla' ~ 'ss__') }}{% endif %}run\n")
    params = validate_params(spec, {"input": "in.x", "steps": 9})
    with pytest.raises(SpecError, match="Python internals"):
        render(spec, params, spec.environments[0], {"input": "in.x"}, resources_for(spec, params))


# ---------------------------------------------------------------- bad specs


def _mutate(path: str, value=None, delete: bool = False):
    def apply(data):
        keys = path.split(".")
        node = data
        for key in keys[:-1]:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        last = int(keys[-1]) if isinstance(node, list) else keys[-1]
        if delete:
            del node[last]
        else:
            node[last] = value
        return data
    return apply


BAD_SPECS = [
    ("missing key", _mutate("template", delete=True), "template"),
    ("extra key", _mutate("colour", "red"), "colour"),
    ("bad name", _mutate("name", "Bad_Name"), "name"),
    ("version with a space", _mutate("version", "1 0"), "version"),
    ("version as a YAML float", _mutate("version", 1.0), "version"),
    ("bad category", _mutate("category", "games"), "category"),
    ("missing zh title", _mutate("title.zh", delete=True), "title.zh"),
    ("missing en description", _mutate("description.en", delete=True), "description.en"),
    ("not a JSON schema", _mutate("parameters.properties.steps.minimum", "one"), "parameters.properties.steps.minimum"),
    ("schema type typo", _mutate("parameters.properties.steps.type", "integr"), "parameters.properties.steps.type"),
    ("parameters not an object", _mutate("parameters.type", "array"), "parameters.type"),
    ("x-input not a string", _mutate("parameters.properties.input.type", "integer"), "parameters.properties.input.type"),
    ("default violates its schema", _mutate("parameters.properties.steps.default", 0), "parameters.properties.steps.default"),
    ("default not in enum", _mutate("parameters.properties.size.default", "huge"), "parameters.properties.size.default"),
    ("default with metacharacters", _mutate("parameters.properties.title.default", "$(id)"), "parameters.properties.title.default"),
    ("reserved parameter name", _mutate("parameters.properties.env", {"type": "string"}), "parameters.properties.env"),
    ("required names nothing", _mutate("parameters.required", ["input", "nope"]), "parameters.required"),
    ("unknown resources key", _mutate("resources.gpuz", 1), "resources.gpuz"),
    ("unknown resource", _mutate("resources.defaults.cpus", 2), "resources.defaults.cpus"),
    ("zero cores", _mutate("resources.defaults.cores", 0), "resources.defaults.cores"),
    ("cores not an int", _mutate("resources.defaults.cores", "two"), "resources.defaults.cores"),
    ("fractional maximum", _mutate("resources.maximum.time_minutes", 2.5), "resources.maximum.time_minutes"),
    ("negative gpus", _mutate("resources.defaults.gpus", -1), "resources.defaults.gpus"),
    ("defaults above maximum", _mutate("resources.defaults.cores", 16), "resources.defaults.cores"),
    ("by_parameter above maximum", _mutate("resources.by_parameter.size.large.cores", 64),
     "resources.by_parameter.size.large.cores"),
    ("by_parameter unknown parameter", _mutate("resources.by_parameter.colour", {"red": {"cores": 1}}),
     "resources.by_parameter.colour"),
    ("by_parameter value outside enum", _mutate("resources.by_parameter.size.huge", {"cores": 8}),
     "resources.by_parameter.size.huge"),
    ("by_parameter without enum", _mutate("resources.by_parameter.steps", {"10": {"cores": 1}}),
     "resources.by_parameter.steps"),
    ("template does not compile", _mutate("template", "{{ steps "), "template"),
    ("template unknown filter", _mutate("template", "{{ steps | nosuch }}"), "template"),
    ("template undefined name", _mutate("template", "{{ nosuch }}"), "template"),
    ("template undefined env variable", _mutate("template", "{{ env.nosuch }}"), "template"),
    ("template divides by zero", _mutate("template", "{{ steps / 0 }}"), "template"),
    ("no environments", _mutate("environments", []), "environments"),
    ("environment unknown key", _mutate("environments.0.image", "x"), "environments.0.image"),
    ("environment without name", _mutate("environments.1.name", delete=True), "environments.1.name"),
    ("duplicate environment", _mutate("environments.1.name", "stand-in"), "environments.1.name"),
    ("module with a space", _mutate("environments.1.modules", ["a; rm"]), "environments.1.modules"),
    ("variable with newline", _mutate("environments.1.variables.run", "a\nb"), "environments.1.variables.run"),
    ("stand_in with the delimiter", _mutate("environments.0.stand_in", "print(1)\n__CNET_STAND_IN__\nrm -rf ~\n"),
     "environments.0.stand_in"),
    ("absolute output", _mutate("outputs", ["/etc/passwd"]), "outputs.0"),
    ("output with ..", _mutate("outputs", ["ok.log", "../x"]), "outputs.1"),
    ("output with NUL", _mutate("outputs", ["a\x00b"]), "outputs.0"),
    ("output with newline", _mutate("outputs", ["a\nb"]), "outputs.0"),
    ("runtime hint", _mutate("runtime_hint_minutes", -3), "runtime_hint_minutes"),
    ("x-resource on a string", _mutate("parameters.properties.title.x-resource", "cores"), "parameters.properties.title.type"),
]


@pytest.mark.parametrize("case, mutate, path", BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_bad_specs_point_at_the_field(case, mutate, path):
    with pytest.raises(SpecError) as err:
        load_spec(mutate(copy.deepcopy(BASE)))
    paths = [p for p, _ in err.value.errors]
    assert path in paths, err.value.errors
    assert str(err.value) == "; ".join(f"{p}: {m}" for p, m in err.value.errors)


def test_every_problem_is_reported_at_once():
    data = copy.deepcopy(BASE)
    data["name"], data["category"] = "Bad Name", "games"
    data["resources"]["defaults"]["cores"] = 0
    data["outputs"] = ["/abs"]
    del data["title"]["zh"]
    with pytest.raises(SpecError) as err:
        load_spec(data)
    assert {p for p, _ in err.value.errors} >= {"name", "category", "resources.defaults.cores", "outputs.0", "title.zh"}


def test_yaml_text_loads_and_bad_yaml_is_refused():
    text = yaml.safe_dump(BASE, allow_unicode=True)
    assert load_spec(text) == load_spec(text.encode()) == load_spec(BASE)
    with pytest.raises(SpecError, match="^<spec>: line 2: not valid YAML"):
        load_spec("name: x\n  bad: [\n")
    with pytest.raises(SpecError, match="^<spec>: must be a mapping"):
        load_spec("- a list\n")
    with pytest.raises(SpecError, match="quote them"):
        load_spec(text.replace("version: 1.0.0", "version: 2023-08-01"))


def test_bad_spec_fixtures():
    for path in sorted(APPS.glob("bad-*.yaml")):
        expected = yaml.safe_load(path.read_text())["x-expect"]
        with pytest.raises(SpecError) as err:
            load_spec(path.read_text())
        assert expected in [p for p, _ in err.value.errors], (path.name, err.value.errors)


# ---------------------------------------------------------------- parameters


def test_coercion_from_cli_strings_and_json():
    spec = spec_with()
    got = validate_params(spec, {"input": "in.x", "steps": "2000", "temp": "2.5e1", "verbose": "YES", "size": "large"})
    assert got == {"input": "in.x", "steps": 2000, "size": "large", "temp": 25.0, "verbose": True, "title": "run",
                   "note": ""}
    assert type(got["steps"]) is int and type(got["temp"]) is float
    got = validate_params(spec, {"input": "in.x", "steps": 3.0, "temp": 2, "verbose": 0})
    assert (got["steps"], got["temp"], got["verbose"]) == (3, 2.0, False) and type(got["temp"]) is float
    assert validate_params(spec, {"input": "in.x", "steps": "1e3"})["steps"] == 1000
    for word, value in (("true", True), ("no", False), ("1", True), ("0", False), ("False", False)):
        assert validate_params(spec, {"input": "in.x", "verbose": word})["verbose"] is value


@pytest.mark.parametrize("values, message", [
    ({"steps": "abc"}, "parameter steps: 'abc' is not an integer"),
    ({"steps": "1.5"}, "parameter steps: '1.5' is not an integer"),
    ({"steps": True}, "parameter steps: True is not an integer"),
    ({"steps": "1e400"}, "parameter steps: '1e400' is too large"),
    ({"temp": "nan"}, "parameter temp: 'nan' is not a finite number"),
    ({"temp": "0x10"}, "parameter temp: '0x10' is not a number"),
    ({"verbose": "maybe"}, "parameter verbose: 'maybe' is not a boolean"),
    ({"title": 5}, "parameter title: 5 is not a string"),
    ({"steps": "5000000"}, "parameter steps: 5000000 is above the maximum 1000000"),
    ({"steps": 0}, "parameter steps: 0 is below the minimum 1"),
    ({"temp": -1}, "parameter temp: -1.0 is below the minimum 0"),
    ({"size": "huge"}, "parameter size: 'huge' is not one of small, medium, large"),
    ({"colour": "red"}, "unknown parameter colour (known: input, steps, size, temp, verbose, title, note)"),
    ({"colour": "red", "shape": 1}, "unknown parameters colour, shape (known: "),
])
def test_parameter_errors_name_the_parameter(values, message):
    with pytest.raises(ParamError) as err:
        validate_params(spec_with(), {"input": "in.x", **values})
    assert str(err.value).startswith(message)


def test_empty_optional_input_is_not_given():
    props = copy.deepcopy(BASE["parameters"])
    props["properties"]["extra"] = {"type": "string", "x-input": True}
    spec = spec_with(parameters=props)
    assert "extra" not in validate_params(spec, {"input": "in.x", "extra": ""})
    assert validate_params(spec, {"input": "in.x", "extra": "b.dat"})["extra"] == "b.dat"
    assert spec.input_parameters() == ["input", "extra"]
    with pytest.raises(ParamError, match="^missing required parameter input$"):
        validate_params(spec, {"input": ""})


def test_missing_required_parameter():
    with pytest.raises(ParamError, match="^missing required parameter input$"):
        validate_params(spec_with(), {"steps": 5})
    with pytest.raises(ParamError, match="^missing required parameter input$"):
        validate_params(spec_with(), {"input": None})


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/../../b", "..", "data/", "-rf", "a/-x", "@/x", "@proj",
                                  "in$x", "a\nb", "a\x00b"])
def test_input_paths_outside_the_workspace_are_refused(path):
    with pytest.raises(ParamError, match="^parameter input: "):
        validate_params(spec_with(), {"input": path})


@pytest.mark.parametrize("path", ["data/in.lj", "@proj/in.lj", "in.lj", "a/b/c.in", "@lab-2/sub/x.y", "my file.in"])
def test_workspace_input_paths_are_accepted(path):
    assert validate_params(spec_with(), {"input": path})["input"] == path


# ---------------------------------------------------------------- resources


def test_resources_by_parameter():
    spec = spec_with()
    assert resources_for(spec, validate_params(spec, {"input": "x"})) == Resources(
        nodes=1, cores=2, gpus=0, gpu_type=None, mem_mb=0, time_minutes=30)
    large = resources_for(spec, validate_params(spec, {"input": "x", "size": "large"}))
    assert (large.nodes, large.cores, large.time_minutes) == (2, 8, 30)
    qe = next(s for s in builtin_specs() if s.name == "quantum-espresso")
    assert resources_for(qe, validate_params(qe, {"input": "pw.in", "npool": "8"})).cores == 32
    # keys that came back from JSON as strings still match
    again = load_spec(json.loads(json.dumps(qe.source)))
    assert resources_for(again, validate_params(again, {"input": "pw.in", "npool": 4})).cores == 16


def test_resources_over_the_maximum_name_the_parameter():
    props = copy.deepcopy(BASE["parameters"])
    props["properties"]["cores"] = {"type": "integer", "minimum": 1, "maximum": 64, "default": 2, "x-resource": "cores"}
    spec = spec_with(parameters=props, resources={**BASE["resources"], "gpu_type": "a100"})
    res = resources_for(spec, validate_params(spec, {"input": "x", "cores": 6}))
    assert (res.cores, res.gpu_type) == (6, "a100")
    with pytest.raises(ParamError, match="^parameter cores: 16 cores is above the app's maximum 8$"):
        resources_for(spec, validate_params(spec, {"input": "x", "cores": 16}))
    # large asks for 2 nodes; 1 core cannot spread over them
    with pytest.raises(ParamError, match="^parameter cores: 1 cores cannot spread over 2 nodes$"):
        resources_for(spec, validate_params(spec, {"input": "x", "size": "large", "cores": 1}))


def test_interactive_kind_is_checked_and_gets_the_session_preamble():
    spec = next(s for s in builtin_specs() if s.name == "jupyterlab")
    assert spec.kind == "interactive" and spec.interactive["type"] == "jupyterlab"
    assert load_spec(json.loads(json.dumps(spec.source))) == spec
    env = spec.environment_for("alpha", {"jupyterlab"})
    params = validate_params(spec, {"cores": 4})
    script = render(spec, params, env, {}, resources_for(spec, params))
    # the secret comes from the staged file, never on a command line
    assert 'JUPYTER_TOKEN_FILE="$CNET_SESSION_SECRET_FILE"' in script and "--ServerApp.token" not in script
    assert script.index("cnet-session.json") < script.index("jupyter lab")
    assert spec.environment_for("alpha", {"stand-in"}) is None
    for bad, where in (({"type": "vnc"}, "interactive.type"), ({"type": "shell", "probe": "/etc"}, "interactive.probe"),
                       ({"type": "shell", "port": 80}, "interactive.port"), ("jupyterlab", "interactive")):
        with pytest.raises(SpecError) as info:
            load_spec(spec.source | {"interactive": bad})
        assert where in [path for path, _ in info.value.errors], bad
