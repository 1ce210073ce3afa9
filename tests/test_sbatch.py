"""sbatch compatibility: #SBATCH directives and flags become a JobSpec."""

import pytest

from computenet.domain.resources import RequestError, parse_memory_mb, parse_time_minutes
from computenet.domain.sbatch import MAX_SCRIPT_BYTES, ScriptError, parse_submission


def spec_of(script: str, flags=None):
    return parse_submission(script, flags)[1]


@pytest.mark.parametrize("text,minutes", [
    ("30", 30), ("90", 90), ("10:30", 11), ("1:00:00", 60), ("2:30:00", 150),
    ("1-0", 1440), ("1-12", 2160), ("1-12:30", 2190), ("1-12:00:00", 2160), ("0:59", 1),
])
def test_time_formats(text, minutes):
    assert parse_time_minutes(text) == minutes


def test_unlimited_time():
    assert parse_time_minutes("UNLIMITED") is None
    assert parse_time_minutes("infinite") is None


@pytest.mark.parametrize("text", ["", "abc", "1:2:3:4", "-5", "1-", "0", "0:00", "1.5", "400-00:00:00"])
def test_bad_time(text):
    with pytest.raises(RequestError):
        parse_time_minutes(text)


@pytest.mark.parametrize("text,mb", [("100", 100), ("4G", 4096), ("4g", 4096), ("512M", 512), ("2048K", 2),
                                     ("1T", 1048576), ("10GB", 10240)])
def test_memory(text, mb):
    assert parse_memory_mb(text) == mb


@pytest.mark.parametrize("text", ["", "-1", "4X", "1.5G", "G"])
def test_bad_memory(text):
    with pytest.raises(RequestError):
        parse_memory_mb(text)


def test_long_and_short_forms_give_the_same_request():
    long = spec_of("#!/bin/bash\n#SBATCH --nodes=2 --ntasks=8 --cpus-per-task=4 --time=1-12:00:00\n"
                   "#SBATCH --partition=gpu --account=lab --qos=high --job-name=md --output=o.txt --error=e.txt\n"
                   "#SBATCH --chdir=run --constraint=a100 --gpus-per-node=a100:2 --mem=64G\nsrun x\n")
    short = spec_of("#!/bin/bash\n#SBATCH -N 2 -n 8 -c 4 -t 1-12:00:00\n"
                    "#SBATCH -p gpu -A lab -q high -J md -o o.txt -e e.txt\n"
                    "#SBATCH -D run -C a100 --gres=gpu:a100:2 --mem 64G\nsrun x\n")
    # the same request; only the record of which spelling was used differs (gres or gpus-per-node)
    assert long.resources == short.resources
    assert long.options.model_copy(update={"used": ()}) == short.options.model_copy(update={"used": ()})
    r = long.resources
    assert (r.nodes, r.tasks, r.cpus_per_task, r.total_cores) == (2, 8, 4, 32)
    assert (r.gpus_per_node, r.gpu_type, r.total_gpus) == (2, "a100", 4)
    assert r.time_limit_minutes == 2160 and r.mem_per_node_mb == 65536
    assert (r.partition, r.account, r.qos, r.constraint) == ("gpu", "lab", "high", "a100")
    o = long.options
    assert (o.job_name, o.output, o.error, o.workdir) == ("md", "o.txt", "e.txt", "run")


def test_defaults_are_filled_in():
    r = spec_of("#!/bin/bash\necho hi\n").resources
    assert (r.nodes, r.tasks, r.cpus_per_task, r.total_cores, r.total_gpus) == (1, 1, 1, 1, 0)
    assert r.time_limit_minutes is None and r.partition is None


def test_attached_short_values_and_equals():
    r = spec_of("#!/bin/bash\n#SBATCH -N2 -c8 -pcpu\n#SBATCH -t=30\ntrue\n").resources
    assert (r.nodes, r.cpus_per_task, r.partition, r.time_limit_minutes) == (2, 8, "cpu", 30)


def test_flags_override_directives_as_sbatch_does():
    script = "#!/bin/bash\n#SBATCH -p cpu -c 2 -t 10 --gres=gpu:1\ntrue\n"
    r = spec_of(script, ["-p", "gpu", "--time=20", "--gpus=a100:2"]).resources
    assert (r.partition, r.cpus_per_task, r.time_limit_minutes) == ("gpu", 2, 20)
    # the later GPU form (the flag) replaces the directive's --gres
    assert (r.gpus_total, r.gpus_per_node, r.gpu_type) == (2, 0, "a100")


def test_directives_after_the_first_command_are_ignored():
    r = spec_of("#!/bin/bash\n#SBATCH -c 2\n\n# comment\necho start\n#SBATCH -c 64\n").resources
    assert r.cpus_per_task == 2


def test_script_arguments_after_the_options():
    _, spec, args = parse_submission("#!/bin/bash\ntrue\n", ["-c", "2", "--", "in put.dat", "--flag"])
    assert args == ["in put.dat", "--flag"] and spec.resources.cpus_per_task == 2


def test_array_dependency_exclusive_and_passthrough():
    spec = spec_of("#!/bin/bash\n#SBATCH --array=0-9%2 -d afterok:12 --exclusive --mail-type=END --requeue\ntrue\n")
    assert spec.options.array == "0-9%2" and spec.options.dependency == "afterok:12"
    assert spec.resources.exclusive
    assert spec.options.passthrough == ("--mail-type=END", "--requeue")
    assert spec_of("#!/bin/bash\n#SBATCH -H -c 2\ntrue\n").options.passthrough == ("--hold",)


def test_quoted_values_and_trailing_comments():
    spec = spec_of('#!/bin/bash\n#SBATCH --job-name="my run; rm -rf /"  # a comment\ntrue\n')
    assert spec.options.job_name == "my run; rm -rf /"


@pytest.mark.parametrize("script,fragment", [
    ("#!/bin/bash\n#SBATCH --cpus-per-task=lots\ntrue\n", "line 2"),
    ("#!/bin/bash\n#SBATCH -c 2\n#SBATCH --bogus-option=1\ntrue\n", "line 3: unknown sbatch option --bogus-option"),
    ("#!/bin/bash\n#SBATCH -t 99:99:99:99\ntrue\n", "line 2: invalid time limit"),
    ("#!/bin/bash\n#SBATCH --mem=lots\ntrue\n", "line 2: invalid memory"),
    ("#!/bin/bash\n#SBATCH --gres=fpga:1\ntrue\n", "line 2"),
    ("#!/bin/bash\n#SBATCH -c\ntrue\n", "line 2: -c needs a value"),
    ("#!/bin/bash\n#SBATCH --job-name='unclosed\ntrue\n", "line 2: cannot read"),
    ("#!/bin/bash\n#SBATCH --uid=0\ntrue\n", "line 2: --uid is not allowed"),
    ("#!/bin/bash\n#SBATCH -c 0\ntrue\n", "cpus_per_task"),
    ("#!/bin/bash\n#SBATCH -N 100000000\ntrue\n", "line 2"),
    ("#!/bin/bash\n#SBATCH --mem=1G --mem-per-cpu=1G\ntrue\n", "mutually exclusive"),
    ("#!/bin/bash\n#SBATCH --array=1-x\ntrue\n", "array"),
    ("#!/bin/bash\n#SBATCH -c 2 stray\ntrue\n", "line 2: unexpected text"),
])
def test_invalid_directive_is_an_error_naming_the_line(script, fragment):
    with pytest.raises(ScriptError) as err:
        parse_submission(script)
    assert fragment in str(err.value)


@pytest.mark.parametrize("data,fragment", [
    (b"#!/bin/bash\necho \xff\xfe\n", "not UTF-8"),
    ("", "empty"),
    ("   \n", "empty"),
    ("echo no shebang\n", "interpreter line"),
    ("#!/bin/bash\r\necho dos\r\n", "DOS line breaks"),
    ("#!/bin/bash\necho \x00\n", "NUL"),
    ("#!/bin/bash\n" + "#" * (MAX_SCRIPT_BYTES + 1), "limit"),
])
def test_malformed_scripts(data, fragment):
    with pytest.raises(ScriptError) as err:
        parse_submission(data)
    assert fragment in str(err.value)


def test_bad_flag_names_the_command_line():
    with pytest.raises(ScriptError) as err:
        parse_submission("#!/bin/bash\ntrue\n", ["--ntasks=-3"])
    assert "command line" in str(err.value)


def test_gpu_totals():
    r = spec_of("#!/bin/bash\n#SBATCH -N 2 --gpus-per-node=4\ntrue\n").resources
    assert r.total_gpus == 8 and r.max_gpus_per_node() == 4
    r = spec_of("#!/bin/bash\n#SBATCH -N 2 --gpus=6\ntrue\n").resources
    assert r.total_gpus == 6 and r.max_gpus_per_node() == 3
    r = spec_of("#!/bin/bash\n#SBATCH --gres=gpu\ntrue\n").resources
    assert r.total_gpus == 1


def test_filename_patterns():
    from computenet.domain import patterns

    assert patterns.expand("out-%j-%x-%u.txt", "42", "md", "amy") == "out-42-md-amy.txt"
    assert patterns.expand("%A_%a.out", "42", "md", "amy") == "42_%a.out"  # task index: Slurm's business
    assert patterns.expand("%5j%%.log", "42", "md", "amy") == "00042%.log"
    assert patterns.expand("%N.out", "7", "n", "u", node="host1") == "host1.out"
    assert patterns.problem("ok-%j.out") is None
    assert "unknown pattern %Z" in patterns.problem("bad-%Z")
    assert "control characters" in patterns.problem("a\nb")


def test_the_published_option_table_is_the_one_the_code_reads():
    from pathlib import Path

    from computenet.domain import sbatch_options

    doc = Path(__file__).parent.parent / "docs" / "sbatch-options.md"
    assert doc.read_text() == sbatch_options.markdown(), (
        "docs/sbatch-options.md is stale: python -m computenet.domain.sbatch_options > docs/sbatch-options.md")
    assert all(f"`--{o.long}`" in doc.read_text() for o in sbatch_options.OPTIONS)
