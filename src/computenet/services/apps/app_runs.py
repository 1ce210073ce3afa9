"""Running an app from the application centre: a form's values -> checked parameters ->
resources -> one rendered script per cluster where the app is available -> the router picks ->
inputs staged -> Slurm. A dry run shows the script and the resources and submits nothing."""

from __future__ import annotations

import math
from dataclasses import replace

from sqlalchemy import select

from ... import catalog
from ...store.models import Cluster, Job, User
from . import apps
from ...messages import msg
from ..errors import InvalidRequest
from ..files.job_files import resolve_inputs
from ..jobs.jobs import JobExtras, RoutingRequest, estimate_job, submit_job
from ..platform import Platform


def sbatch_flags(res: catalog.Resources, job_name: str, account: str | None = None, cluster: str | None = None,
                 partition: str | None = None) -> list[str]:
    """The app's resources as the sbatch options the platform parses like any job's."""
    flags = ["-J", job_name, "-N", str(res.nodes), "-n", str(res.cores), "-t", str(res.time_minutes)]
    if res.mem_mb:
        flags.append(f"--mem={res.mem_mb}M")
    if res.gpus:
        per_node = math.ceil(res.gpus / res.nodes)
        flags.append(f"--gres=gpu:{res.gpu_type}:{per_node}" if res.gpu_type else f"--gres=gpu:{per_node}")
    for option, value in (("-A", account), ("-M", cluster), ("-p", partition)):
        if value:
            flags += [option, value]
    return flags


def _local_inputs(local: dict, input_params: list[str], values: dict) -> list[dict]:
    """A dry run's inputs still on the client's disk: checked by name and size, never read."""
    out = []
    for param, size in local.items():
        if param not in input_params:
            raise InvalidRequest(msg("local_inputs names %(param)r, which is not an input of this app", param=param))
        name = str(values[param])
        if not isinstance(size, int) or size < 0:
            raise InvalidRequest(msg("local_inputs: the size of %(param)r must be a whole number of bytes",
                                     param=param))
        if not name or "/" in name or name in (".", ".."):
            raise InvalidRequest(msg("local_inputs: %(param)r must name a file, not %(value)r",
                                     param=param, value=name))
        out.append({"param": param, "path": f"(local) {name}", "name": name, "size": size})
    return out


def prepare(platform: Platform, user_id: int, name: str, params: dict, version: str | None = None,
            account: str | None = None, cluster: str | None = None, partition: str | None = None,
            local_inputs: dict | None = None):
    """Everything checked, nothing written: (app ref, values, resources, inputs, scripts, envs, flags).

    ``local_inputs`` (a dry run's files not uploaded): parameter -> size; the value is the file's name."""
    if not isinstance(params, dict):
        raise InvalidRequest(msg("params must be an object of parameter names to values"))
    local_inputs = local_inputs or {}
    with platform.db.session() as session:
        user = session.get(User, user_id)
        ref = apps.find(session, user, name, version)
        spec = ref.spec
        try:
            values = catalog.validate_params(spec, params)
            resources = catalog.resources_for(spec, values)
        except (catalog.ParamError, catalog.SpecError) as exc:
            raise InvalidRequest(msg("%(name)s: %(exc)s", name=spec.name, exc=exc)) from None
        input_params = [p for p in spec.input_parameters() if values.get(p) not in (None, "")]
        local = _local_inputs(local_inputs, input_params, values)
        input_params = [p for p in input_params if p not in local_inputs]
        inputs = resolve_inputs(session, platform, user, [str(values[p]) for p in input_params])
        for param, item in zip(input_params, inputs):
            item["param"] = param
        seen = {item["name"] for item in inputs}
        for item in local:
            if item["name"] in seen:
                raise InvalidRequest(msg("two inputs are named %(name)r in the working directory: rename one",
                                         name=item["name"]))
            seen.add(item["name"])
        inputs += local
        staged = {item["param"]: item["name"] for item in inputs}
        scripts, envs = {}, {}
        for cluster_name in session.scalars(select(Cluster.name).order_by(Cluster.name)):
            try:
                tags = platform.cluster_config(cluster_name).tags
            except KeyError:
                continue
            env = spec.environment_for(cluster_name, tags)
            if env is None:
                continue
            try:
                scripts[cluster_name] = catalog.render(spec, values, env, staged, resources)
            except (catalog.SpecError, catalog.ParamError) as exc:
                raise InvalidRequest(msg("%(name)s: %(exc)s", name=spec.name, exc=exc)) from None
            envs[cluster_name] = env.name
    if not scripts:
        needs = ["+".join(env.tags) for env in spec.environments if env.tags]
        if needs and len(needs) == len(spec.environments):  # the reason: what the clusters' tags lack
            raise InvalidRequest(msg("app %(name)s %(version)s is not available on any cluster of the network: "
                                     "it needs a cluster tagged %(tags)s", name=spec.name, version=spec.version,
                                     tags=" / ".join(dict.fromkeys(needs))))
        raise InvalidRequest(msg("app %(name)s %(version)s is not available on any cluster of the network",
                                 name=spec.name, version=spec.version))
    if cluster and cluster not in scripts:
        raise InvalidRequest(msg("app %(name)s is not available on cluster %(cluster)s (available on: "
                                 "%(listed)s)",
                                 name=spec.name, cluster=cluster, listed=', '.join(sorted(scripts))))
    flags = sbatch_flags(resources, spec.name, account, cluster, partition)
    return ref, values, resources, inputs, scripts, envs, flags


def run_app(platform: Platform, user_id: int, name: str, params: dict, version: str | None = None,
            account: str | None = None, cluster: str | None = None, partition: str | None = None,
            wanted: RoutingRequest | None = None, dry_run: bool = False,
            local_inputs: dict | None = None) -> Job | dict:
    if local_inputs and not dry_run:  # a real run stages files from the workspace only
        raise InvalidRequest(msg("local_inputs is for a dry run only: upload the files first"))
    ref, values, resources, inputs, scripts, envs, flags = prepare(
        platform, user_id, name, params, version, account, cluster, partition, local_inputs)
    spec = ref.spec
    if spec.interactive:  # its script needs the secret and base URL a session stages
        raise InvalidRequest(f"app {spec.name} is interactive: start it as a session (POST /sessions)")
    wanted = replace(wanted or RoutingRequest(), only_clusters=frozenset(scripts),
                     only_reason=f"does not offer app {spec.name}")
    any_script = next(iter(scripts.values()))
    if dry_run:
        decision = estimate_job(platform, user_id, any_script, flags, wanted)
        chosen = decision.chosen.target.cluster if decision.chosen else None
        return {"app": spec.name, "version": spec.version, "params": values, "resources": {
                    "nodes": resources.nodes, "cores": resources.cores, "gpus": resources.gpus,
                    "gpu_type": resources.gpu_type, "mem_mb": resources.mem_mb,
                    "time_minutes": resources.time_minutes},
                "flags": flags, "inputs": [{"param": i["param"], "path": i["path"], "name": i["name"],
                                            "size": i["size"]} for i in inputs],
                "available_on": envs, "cluster": chosen,
                "script": scripts.get(chosen) if chosen else any_script,
                "decision": decision.to_json()}
    extras = JobExtras(
        scripts=scripts, inputs=inputs, outputs={"patterns": list(spec.outputs), "dest": None},
        app={"name": spec.name, "version": spec.version, "scope": ref.scope, "params": values,
             "environments": envs, "scripts": scripts, "runtime_hint_minutes": spec.runtime_hint_minutes})
    return submit_job(platform, user_id, any_script, flags, script_name=spec.name, wanted=wanted, extras=extras)
