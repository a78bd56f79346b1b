"""`warm-restart status`: what runs, what it sees, how the last run went."""

from __future__ import annotations

import json
import time
from typing import Any

from orchestrator.report import table
from teamd_shim.db.ownership import OwnerStore, client, instance_alive
from teamd_shim.db.redis_decoded import hget, hgetall, keys
from teamd_shim.db.schema import (
    CONFIG_ERROR_TABLE,
    ENABLE_KEY,
    LAG_MEMBER_TABLE,
    LAG_TABLE,
    LAST_RUN_KEY,
    RUN_PREFIX,
    STATE_DB,
    STATE_DB_ID,
    TEAMMGRD_KEY,
    TEAMSYNCD_KEY,
    keys_pattern,
)
from teamd_shim.db.sonic_db import Endpoint


def collect(endpoint: Endpoint) -> dict[str, Any]:
    store = OwnerStore(endpoint)
    r = client(endpoint, STATE_DB_ID)
    owner = store.owner()
    records = store.instances()
    instances = {n: {**rec, "alive": instance_alive(rec)} for n, rec in records.items()}
    lags: dict[str, Any] = {}
    for key in sorted(keys(r, keys_pattern(STATE_DB, LAG_TABLE))):
        name = key.split("|", 1)[1]
        lags[name] = {"lag": hgetall(r, key), "members": {}}
    for key in sorted(keys(r, keys_pattern(STATE_DB, LAG_MEMBER_TABLE))):
        _, lag, port = key.split("|", 2)
        lags.setdefault(lag, {"lag": {}, "members": {}})["members"][port] = hgetall(r, key)
    refused = {}
    for key in sorted(keys(r, keys_pattern(STATE_DB, CONFIG_ERROR_TABLE))):
        refused[key.split("|", 1)[1]] = hget(r, key, "error") or ""
    wr = hgetall(r, TEAMSYNCD_KEY)
    wr["teammgrd_restore_count"] = hget(r, TEAMMGRD_KEY, "restore_count") or "0"
    last_id = hget(r, LAST_RUN_KEY, "last_run")
    last = hgetall(r, RUN_PREFIX + last_id) if last_id else {}
    if owner and owner.owner in instances:
        instances[owner.owner].update(_container_of(owner.owner, records[owner.owner]))
    from orchestrator.supervisor import read_record

    return {
        "owner": owner.__dict__ if owner else None,
        "instances": instances,
        "lags": lags,
        "refused": refused,
        "warm_restart": wr,
        "warm_restart_enable": hget(r, ENABLE_KEY, "enable"),
        "last_run": last,
        "supervisor": read_record(r),
    }


def _container_of(name: str, rec: dict[str, str]) -> dict[str, str]:
    """Container, image and image version of a shim that runs in a container ({} if not)."""
    from orchestrator.runtime import Instance, runtime_for
    from orchestrator.runtime.docker import DockerRuntime

    try:
        inst = Instance.from_record(name, rec)
    except Exception as e:
        return {"container_error": str(e)}
    rt = runtime_for("auto", inst)
    if not isinstance(rt, DockerRuntime):
        return {}
    try:
        found = rt.locate(inst)
        image = rt.resolve_image(found.image)
    except Exception as e:
        return {"container_error": str(e)}
    labels = image.attrs.get("Config", {}).get("Labels") or {}
    return {
        "container_name": found.container_name,
        "container": found.handle[:12],
        "image": image.tags[0] if image.tags else found.image[:19],
        "image_id": found.image[:19],
        "image_version": labels.get("org.opencontainers.image.version", ""),
    }


def render(st: dict[str, Any]) -> str:
    lines = []
    own = st["owner"]
    if own:
        inst = st["instances"].get(own["owner"], {})
        lines.append(
            f"active: {own['owner']} (epoch {own['epoch']}, pid {inst.get('pid', '?')}, "
            f"version {inst.get('version', '?')}, "
            f"{'alive' if inst.get('alive') else 'NOT RUNNING'})"
        )
        if inst.get("container"):
            lines.append(
                f"container: {inst['container_name']} {inst['container']}, image "
                f"{inst['image']} ({inst['image_id']}), image version "
                f"{inst.get('image_version') or '?'}"
            )
        elif inst.get("container_error"):
            lines.append(f"container: unknown ({inst['container_error']})")
    else:
        lines.append("active: none")
    others = [
        _describe(n, i)
        for n, i in st["instances"].items()
        if (not own or n != own["owner"]) and i.get("alive")
    ]
    if others:
        lines.append("other instances: " + ", ".join(others))
    lines += _supervisor_lines(st.get("supervisor") or {})
    rows = []
    refused = st.get("refused") or {}
    for lag, v in st["lags"].items():
        for port, m in sorted(v["members"].items()) or [("-", {})]:
            rows.append(
                [
                    lag,
                    v["lag"].get("oper_status", "-"),
                    port,
                    m.get("runner.state", "-"),
                    "selected" if m.get("runner.selected") == "true" else "unselected",
                ]
            )
    if rows:
        lines.append(table(["LAG", "oper", "member", "LACP", "selected"], rows))
    if refused:
        lines.append(
            table(["refused CONFIG_DB entry", "error"], [[k, e] for k, e in refused.items()])
        )
    wr = st["warm_restart"]
    lines.append(
        f"warm restart: teamsyncd state {wr.get('state', '-')}, restore_count "
        f"{wr.get('restore_count', '0')} (teammgrd {wr.get('teammgrd_restore_count', '0')}), "
        f"enable {st['warm_restart_enable'] or '-'}"
    )
    last = st["last_run"]
    if last:
        summary = json.loads(last.get("summary") or "{}")
        gaps = [
            v["max_gap_s"]
            for v in summary.get("lags", {}).values()
            if v.get("max_gap_s") is not None
        ]
        gap = f", largest PDU gap {max(gaps):.3f} s" if gaps else ""
        lines.append(
            f"last run {wr.get('last_run')}: {last.get('result')} "
            f"({last.get('old')} -> {last.get('new')}){gap}"
            f"{': ' + last['reason'] if last.get('reason') else ''}"
        )
    return "\n".join(lines)


def _describe(name: str, i: dict[str, Any]) -> str:
    role = ("hot " if i.get("hot") == "true" else "") + str(i.get("role"))
    ready = (
        ", READY"
        if i.get("ready") == "true"
        else (f", not ready: {i.get('ready_detail')}" if i.get("role") == "standby" else "")
    )
    refused = f", would not promote: {i['promotion_refused']}" if i.get("promotion_refused") else ""
    return f"{name} ({role}, pid {i.get('pid')}{ready}{refused})"


def _when(t: str | float) -> str:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(float(t)))
    except (TypeError, ValueError):
        return "?"


def _supervisor_lines(sup: dict[str, Any]) -> list[str]:
    if not sup:
        return [
            "supervisor: none (an unplanned death of the active flaps every LAG; "
            "`warm-restart supervise` keeps a hot standby)"
        ]
    if not sup.get("alive"):
        head = f"supervisor: NOT RUNNING (last state {sup.get('state') or '?'})"
    else:
        head = (
            f"supervisor: pid {sup['pid']}, runtime {sup.get('runtime')}, up since "
            f"{_when(sup.get('since', ''))}"
        )
    out = [head, f"  now: {sup.get('note') or '-'}"]
    p = sup.get("last_promotion") or {}
    if p:
        out.append(
            f"  last promotion: {_when(p.get('at', ''))} {p.get('from')} "
            f"{p.get('why')} -> {p.get('to')} (epoch {p.get('epoch')}, "
            f"{p.get('took_ms')} ms: {p.get('how')})"
        )
    else:
        out.append("  last promotion: none")
    c = sup.get("last_cold_start") or {}
    if c:
        out.append(
            f"  cold starts: {sup.get('cold_starts')}, last {_when(c.get('at', ''))}: "
            f"{c.get('why')}"
        )
    if sup.get("crashes"):
        until = float(sup.get("backoff_until") or 0)
        out.append(
            f"  standby crashes in a row: {sup['crashes']}"
            + (f", backing off until {_when(until)}" if until > time.time() else "")
        )
    return out
