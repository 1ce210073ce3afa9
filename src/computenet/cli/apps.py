"""`cnet apps`, `cnet app show|publish|review`, `cnet run NAME --param k=v --input FILE`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app_app = typer.Typer(no_args_is_help=True, help="One app of the application centre: show, publish, review.")
console = Console(emoji=False)


def apps(all_versions: bool = typer.Option(False, "--all", help="every version, pending ones included"),
         lang: str = typer.Option("en", help="en or zh")) -> None:
    """The application centre: apps you can run."""
    from .main import api, client

    table = Table(box=None)
    for column in ("name", "version", "category", "title", "scope", "status"):
        table.add_column(column)
    for a in api(lambda: client().apps(all_versions)):
        table.add_row(*map(escape, (a["name"], a["version"], a["category"], a["title"].get(lang) or a["title"]["en"],
                                    a["scope"], a["status"])))
    console.print(table)


@app_app.command("show")
def show(name: str, version: Optional[str] = typer.Option(None, "--version"),
         lang: str = typer.Option("en", help="en or zh")) -> None:
    """An app's description, parameters, resources and where it is available."""
    from .main import api, client

    a = api(lambda: client().app(name, version))
    console.print(f"[bold]{escape(a['name'])} {escape(a['version'])}[/] "
                  + escape(f"({a['category']}, {a['scope']}, {a['status']})"))
    console.print(a["title"].get(lang) or a["title"]["en"], markup=False)
    console.print(a["description"].get(lang) or a["description"]["en"], highlight=False, markup=False)
    table = Table(title="parameters", box=None)
    for column in ("name", "type", "default", "allowed", "help"):
        table.add_column(column)
    required = set(a["parameters"].get("required") or [])
    for pname, prop in (a["parameters"].get("properties") or {}).items():
        kind = ("input file" if prop.get("x-input") else prop.get("type", "")) + (" *" if pname in required else "")
        allowed = ", ".join(map(str, prop["enum"])) if "enum" in prop else " .. ".join(
            str(prop[k]) if k in prop else "" for k in ("minimum", "maximum")).strip(" .")
        help_text = (prop.get("x-help") or {}).get(lang) if lang != "en" else None
        table.add_row(*map(escape, (pname, kind, json.dumps(prop["default"]) if "default" in prop else "", allowed,
                                    help_text or prop.get("description", ""))))
    console.print(table)
    console.print("resources: " + json.dumps(a["resources"].get("defaults", {})) +
                  ("; maximum " + json.dumps(a["resources"]["maximum"]) if a["resources"].get("maximum") else ""),
                  markup=False)
    console.print("outputs: " + ", ".join(a["outputs"]), markup=False)
    typical = a.get("typical")
    if typical:
        eff = typical["cpu_efficiency_p50"]
        console.print(f"typical run ({typical['jobs']} monitored): {typical['runtime_s']['p50'] / 60:.1f} min "
                      f"(90 % within {typical['runtime_s']['p90'] / 60:.1f} min), cost {typical['cost_p50']}"
                      + (f", CPU efficiency {100 * eff:.0f} %" if eff is not None else ""))
    elif a.get("runtime_hint_minutes"):
        console.print(f"typical runtime: about {a['runtime_hint_minutes']} min (the publisher's estimate)")
    where = ", ".join(escape(f"{c} ({e})") if e else f"[dim]{escape(c)}: not available[/]"
                      for c, e in a["available_on"].items())
    console.print(f"available on: {where}")


@app_app.command("publish")
def publish(spec: Path = typer.Argument(..., exists=True, dir_okay=False, help="the app spec (YAML)"),
            scope: str = typer.Option("platform", help="platform (operators), tenant (your tenant only) or vendor "
                                                       "(an ISV's, shown once an operator approves)")) -> None:
    """Publish an app (a new version of one you published before)."""
    from .main import api, client

    a = api(lambda: client().publish_app(spec.read_text(encoding="utf-8"), scope))
    console.print(f"{a['name']} {a['version']} published ({a['scope']}): {a['status']}", markup=False)


@app_app.command("review")
def review(name: str, version: str, approve: bool = typer.Option(..., "--approve/--reject"),
           note: str = typer.Option("", help="why (shown to the publisher)")) -> None:
    """Approve or reject a vendor's app version (operators)."""
    from .main import api, client

    a = api(lambda: client().review_app(name, version, approve, note))
    console.print(f"{a['name']} {a['version']}: {a['status']}", markup=False)


def _params(pairs: list[str]) -> dict:
    from .main import fail

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--param takes name=value, not {pair!r}")
        out[key] = value
    return out


def run(name: str = typer.Argument(..., help="the app (see `cnet apps`)"),
        param: list[str] = typer.Option([], "--param", "-P", help="name=value, repeatable"),
        input: list[str] = typer.Option([], "--input", "-i", help="\\[param=]FILE: a local file is uploaded first "
                                                                   "(to inputs/), otherwise a workspace path"),
        version: Optional[str] = typer.Option(None, "--version"),
        account: Optional[str] = typer.Option(None, "-A", "--account"),
        cluster: Optional[str] = typer.Option(None, "-M", "--clusters"),
        partition: Optional[str] = typer.Option(None, "-p", "--partition"),
        dry_run: bool = typer.Option(False, "--dry-run", help="print the script and resources; submit nothing"),
        wait: bool = typer.Option(False, "--wait", help="wait for the job and its outputs")) -> None:
    """Run an app: the form's values as --param, inputs from here or the workspace."""
    from .files import upload_with_bar
    from .main import api, client, fail

    cli = client()
    values = _params(param)
    detail = api(lambda: cli.app(name, version))
    input_params = [p for p, prop in (detail["parameters"].get("properties") or {}).items() if prop.get("x-input")]
    local_inputs: dict[str, int] = {}
    for item in input:
        key, sep, path = item.partition("=")
        if not sep or key not in input_params:
            if len(input_params) != 1:
                fail(f"{name} takes input files {', '.join(input_params) or '(none)'}: use --input PARAM=FILE")
            key, path = input_params[0], item
        local = Path(path)
        if local.is_file() and dry_run:  # checked on the server by name and size; the file stays here
            local_inputs[key] = local.stat().st_size
            path = local.name
        elif local.is_file():
            done = api(lambda: upload_with_bar(cli, local, f"inputs/{local.name}", True))
            path = done["path"]
        values[key] = path
    result = api(lambda: cli.run_app(name, values, version, account, cluster, partition, dry_run=dry_run,
                                     local_inputs=local_inputs))
    if dry_run:
        from rich.syntax import Syntax

        console.print(f"[bold]{escape(result['app'])} {escape(result['version'])}[/] "
                      + escape(f"would go to {result['cluster'] or 'no cluster'} "
                               f"with {json.dumps(result['resources'])}"))
        for item in result.get("inputs") or []:
            if item["param"] in local_inputs:
                console.print(f"input {item['param']}: {item['name']}, {item['size']} bytes (local, not uploaded)",
                              highlight=False, markup=False)
        console.print("sbatch " + " ".join(result["flags"]), highlight=False, markup=False)
        console.print(Syntax(result["script"], "bash", theme="ansi_dark"))
        return
    console.print(f"Submitted {name} as job {result.id} on {result.cluster}/{result.partition}", markup=False)
    if wait:
        import time

        job = api(lambda: cli.wait(result.id, timeout=24 * 3600))
        detail = api(lambda: cli.job(result.id))
        stop = time.monotonic() + 600  # fetching outputs back: big files take a while
        while detail.outputs == "pending" and time.monotonic() < stop:
            time.sleep(0.5)
            detail = api(lambda: cli.job(result.id))
        console.print(f"job {job.id} {job.state}; outputs {detail.outputs}", markup=False)
        for f in detail.output_files:
            console.print(f"  {f['path']}  {f['size']} bytes  sha256 {f['sha256'][:16]}  from {f['cluster']}",
                          markup=False)
