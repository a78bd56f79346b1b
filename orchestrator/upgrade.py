"""`warm-restart upgrade-docker teamd IMAGE|TARBALL` and `rollback-docker teamd` (hld §11.4).

SONiC's `sonic-installer upgrade-docker` shape, made hitless: a tarball is `docker load`ed
first; the running image is remembered (STATE_DB `TEAMD_HITLESS_IMAGES|teamd`) and kept for
rollback; the handover itself is the docker runtime's teamd -> teamd_bak flow.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.handover import REFUSED, Controller, Outcome
from orchestrator.journal import Journal
from orchestrator.runtime import RuntimeFailure
from orchestrator.runtime.docker import DockerRuntime, load_tarball
from teamd_shim.db.sonic_db import Endpoint


def _refused(reason: str) -> Outcome:
    return Outcome(code=REFUSED, result="refused", reason=f"{reason}; nothing was changed")


def _tag_of(image: Any) -> str:
    return str(image.tags[0] if image.tags else image.id)


def upgrade(
    endpoint: Endpoint,
    source: str,
    *,
    tag: str | None,
    cleanup_image: bool,
    timeout: float,
    say: Callable[[str], None],
) -> Outcome:
    rt = DockerRuntime()
    journal = Journal(endpoint)
    try:
        if os.path.isfile(source):
            say(f"loading {source} (docker load)")
            image = load_tarball(rt, Path(source))
            say(f"      loaded {_tag_of(image)} ({image.id[:19]})")
        else:
            image = rt.resolve_image(source)
        ctrl = Controller(endpoint, rt, say, runtime_name="docker")
        active = ctrl.active()
    except RuntimeFailure as e:
        return _refused(str(e))
    except Exception as e:  # Refused, Redis unreachable, a broken tarball
        return _refused(f"{type(e).__name__}: {e}")
    if image.id == active.image:
        return _refused(f"{active.container_name} already runs {_tag_of(image)} ({image.id[:19]})")
    if tag:
        # the running image's repository (its own tags: the container's image reference may be
        # a bare id after an earlier handover)
        tags = rt.resolve_image(active.image).tags
        repo = tags[0].rsplit(":", 1)[0] if tags else "teamd-hitless/teamd"
        image.tag(repo, tag)
        image.reload()
        say(f"      tagged {repo}:{tag}")
    out = ctrl.restart(timeout=timeout, image=_tag_of(image))
    if out.result == "completed":
        journal.set_images(image.id, _tag_of(image), active.image, active.image_ref)
        if cleanup_image:
            try:
                rt.client.images.remove(active.image)
                say(f"      removed the previous image {active.image[:19]} (no rollback-docker)")
            except Exception as e:
                out.warnings.append(f"previous image kept: {e}")
    return out


def rollback(endpoint: Endpoint, *, timeout: float, say: Callable[[str], None]) -> Outcome:
    journal = Journal(endpoint)
    try:
        rec = journal.images()
    except Exception as e:
        return _refused(f"redis unreachable at {endpoint.url}: {e}")
    if not rec.get("previous"):
        return _refused("no previous image recorded (no upgrade-docker has completed here)")
    rt = DockerRuntime()
    try:
        image = rt.resolve_image(rec["previous"])
        ctrl = Controller(endpoint, rt, say, runtime_name="docker")
        active = ctrl.active()
    except RuntimeFailure as e:
        return _refused(str(e))
    except Exception as e:
        return _refused(f"{type(e).__name__}: {e}")
    if image.id == active.image:
        return _refused(
            f"{active.container_name} already runs the previous image "
            f"{rec.get('previous_ref') or image.id[:19]}"
        )
    say(f"rolling back to {rec.get('previous_ref') or image.id[:19]}")
    out = ctrl.restart(timeout=timeout, image=image.id)
    if out.result == "completed":
        journal.set_images(image.id, rec.get("previous_ref", ""), active.image, active.image_ref)
    return out
