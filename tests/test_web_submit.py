"""The portal's submit area (issue 15): the job composer with #SBATCH assistance and the estimate
panel, submitting through the same service as POST /jobs (funds check included), and the application
centre (catalogue, forms from JSON Schema, preview, run). Real jobs on the local executor."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from computenet.api.app import create_app
from computenet.cli.embedded import EmbeddedServer
from computenet.services.tenancy import accounts
from computenet.services import audit
from computenet.services.files import workspaces
from computenet.services.signin import passwords
from computenet.store.models import Account, Cluster, Job, JobProfile, User
from computenet.store.types import utcnow
from computenet.web.pages.submit_sbatch import read_fields, write_fields

from browser import axe, new_page, shot, sign_in
from conftest import local_cluster

GOOD = "Correct-Horse-7"
SCRIPT = "#!/bin/bash\n#SBATCH --job-name=hello\n#SBATCH --ntasks=1\n#SBATCH --time=5\necho hello\n"


def _person(platform, name: str, balance: str) -> None:
    with platform.db.session() as session:
        user = accounts.create_user(session, name)
        account = accounts.create_account(session, f"{name}-lab", owner=user)
        if balance != "0":
            accounts.top_up(session, account, balance, key=f"submit-{name}")
        passwords.set_password(session, audit.SYSTEM, user, GOOD, platform.settings.auth)
        workspaces.write_small(session, platform, user, "run.sh", b"echo from the app\n", overwrite=True)


@pytest.fixture
def site(make_platform):
    # "stand-in" lets the apps run here through their stand-ins
    platform = make_platform([local_cluster(tags=["stand-in"])])
    _person(platform, "li", "100.00")
    _person(platform, "broke", "0")
    return platform


def _client(platform, name: str = "li", language: str = "en") -> TestClient:
    with platform.db.session() as session:
        accounts.get_user(session, name).language = language  # the profile's choice wins over the browser's
    client = TestClient(create_app(platform), follow_redirects=False)
    assert client.post("/login", data={"login": name, "password": GOOD, "next": "/"}).status_code == 303
    return client


def _csrf(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def _jobs(platform) -> int:
    with platform.db.session() as session:
        return session.scalar(select(func.count()).select_from(Job))


def test_the_assistance_reads_and_writes_sbatch_lines():
    assert read_fields("#!/bin/bash\n#SBATCH -J x -n 4\n#SBATCH --gres=gpu:a100:2\n") == {
        "job_name": "x", "ntasks": "4", "gpus": "2"}
    written = write_fields("#!/bin/bash\n#SBATCH -J x -n 4\necho hi\n", {"job_name": "y", "mem": "4G", "nodes": ""})
    assert written == "#!/bin/bash\n#SBATCH -n 4\n#SBATCH --job-name=y\n#SBATCH --mem=4G\necho hi\n"
    # directives are only read before the first command: new lines go in the header
    assert write_fields("echo hi", {"nodes": "2"}) == "#SBATCH --nodes=2\necho hi"


def test_the_composer_fills_the_script_from_its_fields(site):
    client = _client(site)
    token = _csrf(client.get("/portal/submit").text)
    answer = client.post("/portal/submit/script", data={"script": SCRIPT, "opt_ntasks": "2", "opt_mem": "1G"},
                         headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert answer.status_code == 200
    assert "#SBATCH --ntasks=2\n" in answer.text and "#SBATCH --mem=1G" in answer.text
    # a value that would smuggle a second directive in is refused, naming the field
    bad = client.post("/portal/submit/script", data={"script": SCRIPT, "opt_job_name": "a --mem=1T"},
                      headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert bad.status_code == 400 and "Job name: only letters" in bad.text and "--mem=1T" not in bad.text.split(
        "<textarea")[1]


def test_the_estimate_lists_every_candidate_and_submits_nothing(make_platform):
    platform = make_platform([local_cluster(), local_cluster("small", slots=1)])
    _person(platform, "li", "100.00")
    client = _client(platform)
    token = _csrf(client.get("/portal/submit").text)
    answer = client.post("/portal/submit/estimate", data={"script": SCRIPT.replace("--ntasks=1", "--ntasks=2")},
                         headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert answer.status_code == 200
    rows = re.findall(r'<tr class="(feasible|ruled-out)">\s*<td data-label="Cluster">(\w+)', answer.text)
    assert ("feasible", "local") in rows and ("ruled-out", "small") in rows
    assert "¥" in answer.text and "chosen" in answer.text
    assert _jobs(platform) == 0
    # without JavaScript the same button posts the form: the whole page with the estimate
    whole = client.post("/portal/submit/estimate", data={"script": SCRIPT, "csrf_token": token})
    assert whole.status_code == 200 and "<h1>Submit a job</h1>" in whole.text and 'class="feasible"' in whole.text


def test_a_submitted_job_runs_and_the_browser_goes_to_its_page(site):
    client = _client(site)
    token = _csrf(client.get("/portal/submit").text)
    answer = client.post("/portal/submit", data={"script": SCRIPT, "opt_job_name": "from-portal",
                                                  "csrf_token": token})
    assert answer.status_code == 303
    job_id = int(re.fullmatch(r"/portal/jobs/(\d+)", answer.headers["location"]).group(1))
    with site.db.session() as session:
        job = session.get(Job, job_id)
        assert job.name == "from-portal" and job.state in ("PENDING", "RUNNING", "COMPLETED")


def test_a_refused_submit_shows_the_funds_check_and_keeps_the_script(site):
    client = _client(site, "broke", language="zh-CN")
    token = _csrf(client.get("/portal/submit").text)
    typed = SCRIPT.replace("echo hello", "echo 'kept <b>as typed</b>'")
    answer = client.post("/portal/submit", data={"script": typed, "csrf_token": token})
    assert answer.status_code == 402
    assert "作业未提交" in answer.text  # the heading in the user's language
    assert "账户 broke-lab 不足以支付此作业：作业最多可能花费 ¥" in answer.text  # the service's figures, in zh-CN
    assert "echo &#39;kept &lt;b&gt;as typed&lt;/b&gt;&#39;" in answer.text
    assert _jobs(site) == 0


def test_bad_options_are_refused_with_the_services_message(site):
    client = _client(site)
    token = _csrf(client.get("/portal/submit").text)
    answer = client.post("/portal/submit", data={"script": SCRIPT, "opt_partition": "nowhere", "csrf_token": token})
    assert answer.status_code == 400 and "unknown partition &#39;nowhere&#39;" in answer.text
    assert "#SBATCH --partition=nowhere" in answer.text  # the form keeps what was typed
    assert _jobs(site) == 0


@pytest.mark.parametrize("data, status, message", [
    # past the form parser's and the body's limits (a script is at most 1 MiB)
    ({"script": "#!/bin/bash\n#" + "a" * (1 << 20)}, 400, "Field exceeded maximum size"),
    ({"script": "#!/bin/bash\n#" + "#" * (1 << 20)}, 413, "request body is larger than"),
    ({"script": SCRIPT, "opt_nodes": "two"}, 400, "Nodes: enter a whole number."),
    ({"script": ""}, 400, "script is empty"),
    ({"script": SCRIPT.replace("--time=5", "--time=5\n#SBATCH --frobnicate=1"), "opt_ntasks": "1"}, 400,
     "frobnicate"),
])
def test_hostile_submissions_are_refused_naming_the_problem(site, data, status, message):
    client = _client(site)
    token = _csrf(client.get("/portal/submit").text)
    answer = client.post("/portal/submit", data=data | {"csrf_token": token})
    assert answer.status_code == status and message in answer.text
    assert _jobs(site) == 0


def test_submitting_without_the_csrf_token_changes_nothing(site):
    client = _client(site)
    assert client.post("/portal/submit", data={"script": SCRIPT}).status_code == 403
    assert client.post("/portal/submit", data={"script": SCRIPT, "csrf_token": "x" * 43}).status_code == 403
    assert client.post("/portal/submit/estimate", data={"script": SCRIPT}, headers={"HX-Request": "true"}
                       ).status_code == 403
    token = _csrf(client.get("/portal/apps/generic-shell").text)
    assert client.post("/portal/apps/generic-shell/run", data={"p_script": "run.sh"}).status_code == 403
    assert _jobs(site) == 0 and token


def test_the_catalogue_searches_and_filters_by_category(site):
    client = _client(site)
    every = client.get("/portal/apps").text
    assert "/portal/apps/lammps" in every and "/portal/apps/generic-shell" in every
    found = client.get("/portal/apps", params={"q": "molecular"}).text
    assert "/portal/apps/lammps" in found and "/portal/apps/generic-shell" not in found
    general = client.get("/portal/apps", params={"category": "general"}).text
    assert "/portal/apps/generic-shell" in general and "/portal/apps/lammps" not in general
    chinese = _client(site, language="zh-CN").get("/portal/apps").text
    assert "LAMMPS 分子动力学" in chinese


def test_an_app_form_is_drawn_from_its_schema(site):
    client = _client(site, language="zh-CN")
    page = client.get("/portal/apps/lammps").text
    assert re.search(r'<input id="p_steps" name="p_steps" type="number" value="1000" step="1" min="1" '
                     r'max="1000000"', page)
    assert re.search(r'<input id="p_input" name="p_input" [^>]*required', page)
    assert '<select id="p_size" name="p_size"' in page and '<option value="medium">' in page
    assert 'list="files_input"' in page and '<option value="run.sh">' in page  # the workspace's files
    assert "分子动力学步数" in page  # the parameter's help in the user's language
    assert client.get("/portal/apps/no-such-app").status_code == 404


def test_an_app_page_shows_a_typical_runs_time_and_cost_from_three_runs_on(site):
    client = _client(site)
    first = client.get("/portal/apps/lammps").text
    assert "Not enough measured runs yet" in first and "Runs on: local" in first
    with site.db.session() as session:
        li = accounts.get_user(session, "li")
        cluster = session.scalar(select(Cluster).where(Cluster.name == "local"))
        account = session.scalar(select(Account).where(Account.name == "li-lab"))
        for i in range(3):  # past lammps runs took 5, 6 and 7 minutes and cost 1, 2 and 3
            job = Job(name="lammps", native_id=str(300 + i), state="COMPLETED", time_limit_minutes=60,
                      owner_id=li.id, account_id=account.id, cluster_id=cluster.id, partition="local", spec={},
                      script="", workdir="", stdout_path="", stderr_path="", cores=2)
            session.add(job)
            session.flush()
            session.add(JobProfile(job_id=job.id, app="lammps", user_id=li.id, cluster_id=cluster.id, cores=2,
                                   gpus=0, runtime_s=300 + 60 * i, time_limit_s=3600, cpu_efficiency=0.9,
                                   peak_rss=10**9, gpu_utilisation=None, price=Decimal(i + 1), wasted=Decimal("0"),
                                   finished_at=utcnow() - timedelta(hours=i)))
    page = client.get("/portal/apps/lammps").text
    assert "<dt>Median time</dt><dd>6 min</dd>" in page and "<dt>Median cost</dt><dd>CN¥2.00</dd>" in page


@pytest.mark.parametrize("values, field, message", [
    ({"p_steps": "100"}, "input", "This field is required."),
    ({"p_input": "in.lj", "p_steps": "0"}, "steps", "Enter a number from 1 to 1000000."),
    ({"p_input": "in.lj", "p_steps": "ten"}, "steps", "Enter a whole number."),
    ({"p_input": "in.lj", "p_size": "huge"}, "size", "Choose one of the offered values."),
])
def test_bad_app_values_are_named_in_the_form(site, values, field, message):
    client = _client(site)
    token = _csrf(client.get("/portal/apps/lammps").text)
    answer = client.post("/portal/apps/lammps/run", data=values | {"csrf_token": token})
    assert answer.status_code == 400
    assert f'<span class="field-error" id="err_{field}">{message}</span>' in answer.text
    assert _jobs(site) == 0


def test_bad_app_values_are_said_in_chinese_too(site):
    client = _client(site, language="zh-CN")
    token = _csrf(client.get("/portal/apps/lammps").text)
    answer = client.post("/portal/apps/lammps/run", data={"p_input": "in.lj", "p_steps": "0", "csrf_token": token})
    assert answer.status_code == 400 and "请输入 1 到 1000000 之间的数。" in answer.text


def test_the_preview_shows_the_generated_script_and_submits_nothing(site):
    client = _client(site)
    token = _csrf(client.get("/portal/apps/generic-shell").text)
    answer = client.post("/portal/apps/generic-shell/preview", data={"p_script": "run.sh", "p_args": "one two"},
                         headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert answer.status_code == 200 and "bash run.sh one two" in answer.text
    assert '<td data-label="Cluster">local' in answer.text
    refused = client.post("/portal/apps/generic-shell/preview", data={"p_script": "../etc/passwd"},
                          headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert refused.status_code == 400 and "&#39;..&#39; is refused in input paths" in refused.text
    assert _jobs(site) == 0


def test_an_app_run_creates_a_job_with_the_app_recorded(site):
    client = _client(site)
    token = _csrf(client.get("/portal/apps/generic-shell").text)
    answer = client.post("/portal/apps/generic-shell/run", data={"p_script": "run.sh", "csrf_token": token})
    assert answer.status_code == 303
    job_id = int(re.fullmatch(r"/portal/jobs/(\d+)", answer.headers["location"]).group(1))
    with site.db.session() as session:
        job = session.get(Job, job_id)
        assert job.app["name"] == "generic-shell" and job.app["params"]["script"] == "run.sh"
        assert session.get(User, job.owner_id).name == "li"


# -- in a real browser ------------------------------------------------------------------

@pytest.fixture
def served(site):
    with EmbeddedServer(site, run_services=False) as server:
        yield server


@pytest.mark.parametrize("locale, language", [("en-US", "en"), ("zh-CN", "zh")])
def test_composer_and_app_page_in_a_browser(chromium, served, site, locale, language):
    from playwright.sync_api import expect

    with site.db.session() as session:
        accounts.get_user(session, "li").language = "zh-CN" if language == "zh" else "en"
    page = new_page(chromium, served.url, locale=locale)
    sign_in(page, "li", GOOD)
    page.goto("/portal/submit")
    page.fill("#opt_ntasks", "2")
    page.press("#opt_ntasks", "Tab")  # change: the field is written into the script
    expect(page.locator("#script")).to_have_value(re.compile("#SBATCH --ntasks=2\n"))
    page.click("#estimate-button")
    page.wait_for_selector("#estimate table.estimate")
    assert axe(page) == []
    shot(page, f"submit-composer-{language}")
    page.click("#submit-button")
    page.wait_for_url(re.compile(r"/portal/jobs/\d+$"))

    page.goto("/portal/apps")
    assert axe(page) == []
    shot(page, f"submit-apps-{language}")
    page.goto("/portal/apps/generic-shell")
    page.fill("#p_script", "run.sh")
    page.click("#preview-button")
    page.wait_for_selector("#preview pre.script")
    assert "bash run.sh" in page.inner_text("#preview pre.script")
    assert axe(page) == []
    shot(page, f"submit-app-{language}")
    page.click("#run-button")
    page.wait_for_url(re.compile(r"/portal/jobs/\d+$"))
    page.context.close()

    phone = new_page(chromium, served.url, locale=locale, phone=True)
    sign_in(phone, "li", GOOD)
    phone.goto("/portal/submit")
    phone.click("#estimate-button")
    phone.wait_for_selector("#estimate table.estimate")
    # nothing wider than the screen: the page does not scroll sideways
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shot(phone, f"submit-composer-phone-{language}")
    phone.context.close()
    with site.db.session() as session:
        assert [job.app["name"] for job in session.scalars(select(Job)) if job.app] == ["generic-shell"]
