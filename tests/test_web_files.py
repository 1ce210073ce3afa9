"""The portal's files area (issue 15): the workspace browser over ~ and @project, new folder,
rename/move, delete (each with CSRF), download through the API with the session cookie, paths outside
the user's spaces refused; and in a real browser, two files uploaded in checked chunks at once."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from computenet.api.app import create_app
from computenet.cli.embedded import EmbeddedServer
from computenet.services.tenancy import accounts, tenants
from computenet.services import audit
from computenet.services.signin import passwords
from computenet.store.models import Upload, User

from browser import axe, new_page, shot, sign_in

GOOD = "Correct-Horse-7"


def _people(platform):
    with platform.db.session() as session:
        li = accounts.create_user(session, "li")
        li.display_name = "Li"
        accounts.create_account(session, "li-lab", owner=li)
        tenant = tenants.create_tenant(session, "phys", "university")
        tenants.create_project(session, tenant, "md-lab", pi=li)
        other = accounts.create_user(session, "mallory")
        tenants.create_project(session, tenant, "secret", pi=other)
        for user in (li, other):
            passwords.set_password(session, audit.SYSTEM, user, GOOD, platform.settings.auth)


def _own(platform) -> Path:
    return platform.settings.storage_root() / "users" / "li"


@pytest.fixture
def portal(platform):
    _people(platform)
    client = TestClient(create_app(platform), follow_redirects=False)
    assert client.post("/login", data={"login": "li", "password": GOOD, "next": "/"}).status_code == 303
    return client


def _csrf(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def _put(client, path: str, data: bytes):
    csrf = _csrf(client.get("/portal/files").text)
    answer = client.put("/files/content", params={"path": path}, content=data, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 201, answer.text


def test_a_folder_lists_its_entries_with_breadcrumb_and_quota(portal, platform):
    _put(portal, "runs/a/in.lj", b"units lj\n")
    _put(portal, "runs/notes <b>.txt", b"x" * 2048)
    page = portal.get("/portal/files", params={"path": "~/runs"})
    assert page.status_code == 200
    html = page.text
    assert 'href="/portal/files?path=~%2Fruns%2Fa">a/</a>' in html  # a folder opens in the browser
    assert "notes &lt;b&gt;.txt" in html and "<b>.txt" not in html  # names are text, not markup
    assert "2 KiB" in html
    assert '<span aria-current="location">runs</span>' in html and 'href="/portal/files?path=~">~</a>' in html
    # a quota bar for each space the user may reach: their own and their project's, not another's
    assert 'aria-label="~ used"' in html and 'aria-label="@md-lab used"' in html and "@secret" not in html
    assert portal.get("/portal/files", params={"path": "@md-lab"}).status_code == 200
    # files.js refreshes the listing alone after uploads
    fragment = portal.get("/portal/files", params={"path": "~/runs"}, headers={"HX-Request": "true",
                                                                             "HX-Target": "listing"}).text
    assert fragment.lstrip().startswith("<table") and "notes &lt;b&gt;.txt" in fragment and "<html" not in fragment


def test_the_listing_is_in_the_users_language(portal, platform):
    _put(portal, "a.txt", b"x")
    with platform.db.session() as session:
        session.scalar(select(User).where(User.name == "li")).language = "zh-CN"
    html = portal.get("/portal/files").text
    assert "文件" in html and "新建文件夹" in html and "删除" in html


@pytest.mark.parametrize("path", ["../li2", "~/../../etc", "/etc/passwd", "@secret", "@secret/x", "@", "~/a\x01b"])
def test_a_path_outside_the_users_spaces_is_refused_with_a_page(portal, path):
    answer = portal.get("/portal/files", params={"path": path})
    assert 400 <= answer.status_code < 500
    assert "This cannot be done" in answer.text and "Back to your files" in answer.text


def test_a_new_folder_needs_the_csrf_token(portal):
    page = portal.get("/portal/files").text
    refused = portal.post("/portal/files/mkdir", data={"folder": "~", "name": "data"})
    assert refused.status_code == 403 and not (_own_dir(portal) / "data").exists()
    made = portal.post("/portal/files/mkdir", data={"folder": "~", "name": "data", "csrf_token": _csrf(page)})
    assert made.status_code == 303 and made.headers["location"] == "/portal/files?path=~"
    assert (_own_dir(portal) / "data").is_dir()


def _own_dir(client) -> Path:
    return client.app.state.platform.settings.storage_root() / "users" / "li"


@pytest.mark.parametrize("name", ["", "a/b", "..", "x\x00y"])
def test_a_bad_folder_name_is_refused_and_nothing_is_made(portal, name):
    csrf = _csrf(portal.get("/portal/files").text)
    before = sorted(p.name for p in _own_dir(portal).rglob("*")) if _own_dir(portal).exists() else []
    answer = portal.post("/portal/files/mkdir", data={"folder": "~", "name": name, "csrf_token": csrf})
    assert 400 <= answer.status_code < 500
    after = sorted(p.name for p in _own_dir(portal).rglob("*")) if _own_dir(portal).exists() else []
    assert after == before


def test_a_folder_cannot_be_made_in_another_users_project(portal, platform):
    csrf = _csrf(portal.get("/portal/files").text)
    answer = portal.post("/portal/files/mkdir", data={"folder": "@secret", "name": "x", "csrf_token": csrf})
    assert answer.status_code == 404
    assert not (platform.settings.storage_root() / "projects" / "secret" / "x").exists()


def test_rename_and_move_need_the_csrf_token_and_stay_in_the_space(portal, platform):
    _put(portal, "in.txt", b"hello")
    _put(portal, "data/keep.txt", b"k")
    csrf = _csrf(portal.get("/portal/files").text)
    refused = portal.post("/portal/files/move", data={"src": "~/in.txt", "dst": "~/out.txt"})
    assert refused.status_code == 403 and (_own(platform) / "in.txt").exists()
    renamed = portal.post("/portal/files/move", data={"src": "~/in.txt", "dst": "~/out.txt", "csrf_token": csrf})
    assert renamed.status_code == 303 and (_own(platform) / "out.txt").read_bytes() == b"hello"
    moved = portal.post("/portal/files/move", data={"src": "~/out.txt", "dst": "~/data", "csrf_token": csrf})
    assert moved.status_code == 303 and moved.headers["location"] == "/portal/files?path=~%2Fdata"
    assert (_own(platform) / "data" / "out.txt").exists()
    for dst in ("~/../escaped.txt", "/tmp/escaped.txt", "@md-lab/x.txt", "@secret/x.txt"):
        answer = portal.post("/portal/files/move", data={"src": "~/data/out.txt", "dst": dst, "csrf_token": csrf})
        assert 400 <= answer.status_code < 500, dst
    assert (_own(platform) / "data" / "out.txt").read_bytes() == b"hello"


def test_delete_needs_the_csrf_token_and_asks_first(portal, platform):
    _put(portal, "old/a.txt", b"a")
    page = portal.get("/portal/files").text
    assert 'data-confirm="Delete the folder old and everything in it?"' in page
    refused = portal.post("/portal/files/delete", data={"path": "~/old", "csrf_token": "x" * 43})
    assert refused.status_code == 403 and (_own(platform) / "old" / "a.txt").exists()
    done = portal.post("/portal/files/delete", data={"path": "~/old", "csrf_token": _csrf(page)})
    assert done.status_code == 303 and not (_own(platform) / "old").exists()
    for path in ("~", "~/../li", "@secret/x"):
        answer = portal.post("/portal/files/delete", data={"path": path, "csrf_token": _csrf(page)})
        assert 400 <= answer.status_code < 500, path


def test_the_download_link_works_with_the_session_cookie(portal):
    _put(portal, "results/out.dat", b"\x00\x01binary")
    html = portal.get("/portal/files", params={"path": "~/results"}).text
    link = re.search(r'href="(/v1/files/content\?path=[^"]+)" download="out.dat"', html).group(1)
    answer = portal.get(link.replace("&amp;", "&"))
    assert answer.status_code == 200 and answer.content == b"\x00\x01binary"
    assert answer.headers["x-checksum-sha256"] == hashlib.sha256(b"\x00\x01binary").hexdigest()


def test_a_signed_out_browser_is_sent_to_sign_in(platform):
    client = TestClient(create_app(platform), follow_redirects=False)
    answer = client.get("/portal/files?path=~/x")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")


def test_two_files_upload_in_chunks_and_are_listed(platform, chromium, tmp_path):
    _people(platform)
    small = tmp_path / "in.lj"
    small.write_bytes(b"units lj\natom_style atomic\n")
    big = tmp_path / "traj.bin"  # three chunks of 1 MiB, the last one short
    big.write_bytes(bytes(range(256)) * 9000)
    platform.settings.files.chunk_mb = 1
    with EmbeddedServer(platform, run_services=False) as server:
        for language, locale in (("en", "en-US"), ("zh-CN", "zh-CN")):
            page = new_page(chromium, server.url, locale=locale)
            sign_in(page, "li", GOOD)
            page.goto("/portal/files?path=~")
            if language != "en":  # the language switch, as a person would use it
                page.select_option("#language", language)
                page.wait_for_selector(f"html[lang='{language}']")
                assert page.locator("h1").inner_text() == "文件"
            if language == "en":
                page.set_input_files("#upload-files", [str(small), str(big)])
                page.wait_for_selector("#uploads li[data-state=done] >> nth=1")
                page.wait_for_selector("#listing a[download='traj.bin']")
                assert page.locator("#uploads li[data-state=done]").count() == 2
                assert page.locator("#uploads progress").evaluate_all("bars => bars.map(b => b.value)") == [100, 100]
                assert page.locator("#listing a[download='in.lj']").count() == 1
                # a file dropped onto the folder goes the same way
                page.evaluate("""() => { const files = new DataTransfer();
                    files.items.add(new File(["dropped\\n"], "dropped.txt"));
                    document.getElementById("drop").dispatchEvent(
                        new DragEvent("drop", {dataTransfer: files, bubbles: true, cancelable: true})); }""")
                page.wait_for_selector("#listing a[download='dropped.txt']")
                # a file that exists is refused, with the service's reason, unless replacing is asked for
                small.write_bytes(b"units metal\n")
                page.set_input_files("#upload-files", [str(small)])
                page.wait_for_selector("#uploads li[data-state=failed]")
                assert "exists" in page.locator("#uploads li[data-state=failed]").inner_text()
                page.check("#upload-overwrite")
                page.set_input_files("#upload-files", [str(small)])
                page.wait_for_selector("#uploads li[data-state=done] >> nth=3")
                assert axe(page) == []
            shot(page, f"files-{language}")
            page.context.close()
        phone = new_page(chromium, server.url, phone=True)
        sign_in(phone, "li", GOOD)
        phone.goto("/portal/files?path=~")
        assert axe(phone) == []
        shot(phone, "files-zh-CN-phone")  # li chose Chinese above: it is kept in the profile
        phone.context.close()
    assert (_own(platform) / "traj.bin").read_bytes() == big.read_bytes()
    with platform.db.session() as session:  # sent in three checked chunks, and finished
        sent = session.scalar(select(Upload).where(Upload.path == "traj.bin"))
        assert sent.chunk_size == 1024 * 1024 and sent.completed_at is not None
    assert (_own(platform) / "in.lj").read_bytes() == small.read_bytes()
    assert (_own(platform) / "dropped.txt").read_bytes() == b"dropped\n"


def test_an_interrupted_upload_resumes_with_the_missing_chunks_only(platform, chromium, tmp_path):
    _people(platform)
    platform.settings.files.chunk_mb = 1
    data = bytes(i % 251 for i in range(3 * 1024 * 1024 - 5))  # three chunks
    local = tmp_path / "resume.bin"
    local.write_bytes(data)
    whole = hashlib.sha256(data).hexdigest()
    with EmbeddedServer(platform, run_services=False) as server:
        page = new_page(chromium, server.url)
        sign_in(page, "li", GOOD)
        page.goto("/portal/files?path=~")
        # an earlier visit began the upload and sent the first chunk, then the tab was closed
        page.evaluate("""async ([size, whole]) => {
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const begun = await (await fetch("/uploads", {method: "POST", headers: {"X-CSRF-Token": csrf,
                "Content-Type": "application/json"},
                body: JSON.stringify({path: "~/resume.bin", size, sha256: whole})})).json();
            const first = new Uint8Array(begun.chunk_size).map((_, i) => i % 251);
            const sum = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", first)))
                .map(b => b.toString(16).padStart(2, "0")).join("");
            const put = await fetch(`/uploads/${begun.id}/chunks/0`, {method: "PUT", body: first,
                headers: {"X-CSRF-Token": csrf, "X-Chunk-SHA256": sum}});
            if (!put.ok) throw new Error(await put.text());
            localStorage.setItem(`cnet-upload:~/resume.bin:${size}:${whole}`, begun.id);
        }""", [len(data), whole])
        sent = []
        page.on("request", lambda request: sent.append(request.url) if request.method == "PUT" else None)
        page.set_input_files("#upload-files", [str(local)])
        page.wait_for_selector("#uploads li[data-state=done]")
        page.context.close()
    assert [url.rsplit("/", 1)[-1] for url in sent if "/chunks/" in url] == ["1", "2"]
    assert (_own(platform) / "resume.bin").read_bytes() == data
