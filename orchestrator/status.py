"""`warm-restart status`: what runs, what it sees, how the last run went."""

from __future__ import annotations

import json
from typing import Any

from teamd_shim.ownership import OwnerStore, client, instance_alive
from teamd_shim.redis_decoded import hget, hgetall, keys
from teamd_shim.sonic_db import Endpoint

from .journal import ENABLE_KEY, RUN_PREFIX, TABLE_KEY
from .report import table


def collect(endpoint: Endpoint) -> dict[str, Any]:
    store = OwnerStore(endpoint)
    r = client(endpoint, 6)
    owner = store.owner()
    records = store.instances()
    instances = {n: {**rec, "alive": instance_alive(rec)} for n, rec in records.items()}
    lags: dict[str, Any] = {}
    for key in sorted(keys(r, "LAG_TABLE|*")):
        name = key.split("|", 1)[1]
        lags[name] = {"lag": hgetall(r, key), "members": {}}
    for key in sorted(keys(r, "LAG_MEMBER_TABLE|*")):
        _, lag, port = key.split("|", 2)
        lags.setdefault(lag, {"lag": {}, "members": {}})["members"][port] = hgetall(r, key)
    wr = hgetall(r, TABLE_KEY)
    last = hgetall(r, RUN_PREFIX + wr["last_run"]) if wr.get("last_run") else {}
    if owner and owner.owner in instances:
        instances[owner.owner].update(_container_of(owner.owner, records[owner.owner]))
    return {"owner": owner.__dict__ if owner else None, "instances": instances, "lags": lags,
            "warm_restart": wr, "warm_restart_enable": hget(r, ENABLE_KEY, "enable"),
            "last_run": last}


def _container_of(name: str, rec: dict[str, str]) -> dict[str, str]:
    """Container, image and image version of a shim that runs in a container ({} if not)."""
    from .runtime import Instance, runtime_for
    from .runtime.docker import DockerRuntime

    inst = Instance.from_record(name, rec)
    rt = runtime_for("auto", inst)
    if not isinstance(rt, DockerRuntime):
        return {}
    try:
        found = rt.locate(inst)
        image = rt.resolve_image(found.image)
    except Exception as e:
        return {"container_error": str(e)}
    labels = image.attrs.get("Config", {}).get("Labels") or {}
    return {"container_name": found.container_name, "container": found.handle[:12],
            "image": image.tags[0] if image.tags else found.image[:19],
            "image_id": found.image[:19],
            "image_version": labels.get("org.opencontainers.image.version", "")}


def render(st: dict[str, Any]) -> str:
    lines = []
    own = st["owner"]
    if own:
        inst = st["instances"].get(own["owner"], {})
        lines.append(f"active: {own['owner']} (epoch {own['epoch']}, pid {inst.get('pid', '?')}, "
                     f"version {inst.get('version', '?')}, "
                     f"{'alive' if inst.get('alive') else 'NOT RUNNING'})")
        if inst.get("container"):
            lines.append(f"container: {inst['container_name']} {inst['container']}, image "
                         f"{inst['image']} ({inst['image_id']}), image version "
                         f"{inst.get('image_version') or '?'}")
        elif inst.get("container_error"):
            lines.append(f"container: unknown ({inst['container_error']})")
    else:
        lines.append("active: none")
    others = [f"{n} ({i.get('role')}, pid {i.get('pid')})" for n, i in st["instances"].items()
              if not own or n != own["owner"]]
    if others:
        lines.append("other instances: " + ", ".join(others))
    rows = []
    for lag, v in st["lags"].items():
        if "error" in v["lag"] and "oper_status" not in v["lag"]:
            rows.append([lag, "refused", v["lag"]["error"], "", ""])
            continue
        for port, m in sorted(v["members"].items()) or [("-", {})]:
            rows.append([lag, v["lag"].get("oper_status", "-"), port, m.get("runner.state", "-"),
                         "selected" if m.get("runner.selected") == "true" else
                         m.get("error", "unselected")])
    if rows:
        lines.append(table(["LAG", "oper", "member", "LACP", "selected"], rows))
    wr = st["warm_restart"]
    lines.append(f"warm restart: state {wr.get('state', '-')}, restore_count "
                 f"{wr.get('restore_count', '0')}, enable {st['warm_restart_enable'] or '-'}")
    last = st["last_run"]
    if last:
        summary = json.loads(last.get("summary") or "{}")
        gaps = [v["max_gap_s"] for v in summary.get("lags", {}).values()
                if v.get("max_gap_s") is not None]
        gap = f", largest PDU gap {max(gaps):.3f} s" if gaps else ""
        lines.append(f"last run {wr.get('last_run')}: {last.get('result')} "
                     f"({last.get('old')} -> {last.get('new')}){gap}"
                     f"{': ' + last['reason'] if last.get('reason') else ''}")
    return "\n".join(lines)
