"""`cnet login`, `cnet logout`, `cnet passwd`: signing the CLI in with a password (local or the centre's
directory) or an OIDC provider in the browser, instead of a token pasted on the command line.

What the server gives, a short-lived API token and a refresh token, is kept in
~/.config/computenet/login.json (0600); `client()` in cli/main.py trades the refresh token for a new
pair when the API token is about to expire.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import os
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Optional
from urllib.parse import parse_qs, urlsplit

import typer

from .main import api, app, console, err, fail, login_file, save_login

CALLBACK_WAIT_S = 300  # how long `cnet login --sso` waits for the browser to come back (COMPUTENET_LOGIN_WAIT_S)


def _expiry(seconds: int) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat(timespec="seconds")


def _save_pair(url: str, pair: dict) -> None:
    save_login(url, pair["access_token"], refresh_token=pair["refresh_token"],
               expires_at=_expiry(pair["expires_in"]), user=pair["user"])


def _post_token(url: str, body: dict) -> dict:
    from ..client import ComputeNetClient

    with ComputeNetClient(url) as c:
        return api(lambda: c._call("POST", "/auth/token", json=body))


def _browser_code(url: str, provider: str, open_browser: bool) -> tuple[str, str]:
    """Run the OIDC sign-in in the browser; the one-time code the server sends back to a listener on
    127.0.0.1, and the PKCE verifier that proves this CLI started it."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    got: dict[str, str] = {}

    class Callback(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            query = parse_qs(urlsplit(self.path).query)
            if urlsplit(self.path).path != "/callback" or not ("code" in query or "error" in query):
                self.send_response(404)
                self.end_headers()
                return
            if "error" in query:
                got["error"] = query["error"][0]
                text = f"Not signed in: {got['error']}\n未登录：{got['error']}\n"
            else:
                got["code"] = query["code"][0]
                text = "Signed in to ComputeNet: you may close this tab.\n已登录 ComputeNet，可关闭此页。\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(text.encode())

        def log_message(self, *args):
            pass

    listener = HTTPServer(("127.0.0.1", 0), Callback)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    start = (f"{url.rstrip('/')}/auth/oidc/{provider}/start?cli_port={listener.server_address[1]}"
             f"&cli_challenge={challenge}")
    console.print(f"Sign in in your browser: {start}", highlight=False, soft_wrap=True)
    if open_browser:
        import webbrowser

        webbrowser.open(start)
    wait = float(os.environ.get("COMPUTENET_LOGIN_WAIT_S") or CALLBACK_WAIT_S)
    deadline = time.monotonic() + wait
    try:
        while not got and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        listener.shutdown()
        listener.server_close()
    if "error" in got:
        fail(f"the sign-in was refused: {got['error']}")
    if "code" not in got:
        fail(f"no sign-in came back within {wait:.0f} seconds")
    return got["code"], verifier


@app.command()
def login(url: str = typer.Argument(..., help="the server, e.g. https://hpc.example.edu"),
          token: Optional[str] = typer.Argument(None, help="an API token to keep instead of signing in "
                                                            "(for scripts; see `cnet tokens`)"),
          user: Optional[str] = typer.Option(None, "--user", "-u", help="login name (default: yours here)"),
          sso: Optional[str] = typer.Option(None, "--sso", help="sign in with this OIDC provider in the browser "
                                                                "(`cnet login URL --sso list` lists them)"),
          browser: bool = typer.Option(True, "--browser/--no-browser", help="open the browser (--sso)")) -> None:
    """Sign in: with a password (asked for, never on the command line) or in the browser (--sso).
    Keeps a short-lived token and a refresh token in ~/.config/computenet (mode 0600)."""
    from ..client import ComputeNetClient

    if token is not None:
        with ComputeNetClient(url, token) as c:
            me = api(c.me)
        path = save_login(url, token)
        console.print(f"logged in to {url} as {me.user}; saved in {path}", markup=False)
        return
    if sso == "list":
        with ComputeNetClient(url) as c:
            for p in api(lambda: c._call("GET", "/auth/methods"))["oidc"]:
                console.print(f"{p['name']}  {p['title']}", markup=False)
        return
    if sso:
        code, verifier = _browser_code(url, sso, browser)
        pair = _post_token(url, {"grant_type": "cli_code", "code": code, "code_verifier": verifier})
    else:
        name = user or typer.prompt("login", default=getpass.getuser())
        password = typer.prompt("password", hide_input=True)
        pair = _post_token(url, {"grant_type": "password", "login": name, "password": password})
    _save_pair(url, pair)
    console.print(f"signed in to {url} as {pair['user']}; saved in {login_file()} (the token is renewed as "
                  "you go until the sign-in ends: `cnet logout`)", highlight=False, markup=False)


@app.command()
def logout() -> None:
    """Sign this CLI out: the server ends the sign-in and the saved token is removed."""
    from ..client import ApiError, ComputeNetClient
    from ..fsutil import read_json_or

    path = login_file()
    saved = read_json_or(path, {}) if path.exists() else {}
    if not isinstance(saved, dict) or not saved.get("url"):
        console.print("not signed in")
        return
    if saved.get("refresh_token"):
        try:
            with ComputeNetClient(saved["url"], saved.get("token")) as c:
                c._call("POST", "/auth/logout", json={"refresh_token": saved["refresh_token"]})
        except ApiError as exc:  # an expired token: the refresh token ends with the file anyway
            err.print(f"the server said: {exc.detail}", highlight=False, markup=False)
    path.unlink(missing_ok=True)
    console.print(f"signed out of {saved['url']}", highlight=False, markup=False)


@app.command()
def passwd(url: Optional[str] = typer.Option(None, help="the server (default: the one you signed in to)"),
           user: Optional[str] = typer.Option(None, "--user", "-u", help="login name")) -> None:
    """Change your local password (also one an operator set, which must be changed before use)."""
    from ..fsutil import read_json_or

    saved = read_json_or(login_file(), {}) if login_file().exists() else {}
    url = url or (saved.get("url") if isinstance(saved, dict) else None)
    if not url:
        fail("name the server: cnet passwd --url URL")
    name = user or (saved.get("user") if isinstance(saved, dict) else None) or typer.prompt(
        "login", default=getpass.getuser())
    current = typer.prompt("current password", hide_input=True)
    new = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    from ..client import ComputeNetClient

    with ComputeNetClient(url) as c:
        api(lambda: c._call("POST", "/auth/password",
                            json={"login": name, "current_password": current, "new_password": new}))
    console.print("password changed; other sessions were signed out")


def refreshed(saved: dict) -> dict:
    """The saved login with a fresh API token when the old one expires within a minute."""
    if not saved.get("refresh_token") or not saved.get("expires_at"):
        return saved
    try:
        expires = datetime.fromisoformat(saved["expires_at"])
    except (TypeError, ValueError):
        expires = datetime.now(timezone.utc)
    if expires - datetime.now(timezone.utc) > timedelta(minutes=1):
        return saved
    pair = _post_token(saved["url"], {"grant_type": "refresh_token", "refresh_token": saved["refresh_token"]})
    _save_pair(saved["url"], pair)
    return saved | {"token": pair["access_token"], "refresh_token": pair["refresh_token"]}
