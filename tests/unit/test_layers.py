"""The import direction of the product (CONTRIBUTING.md "Layers"; hld §3).

teamd_shim's subpackages are layers, the pure LACP core at the bottom: a module may import its
own subpackage and any layer below, never one above. The product (teamd_shim, orchestrator)
imports neither the lab, the benchmarks, the tests nor the Docker SDK from the daemon. Read from
the source with `ast`, every import counted (inside functions and `if TYPE_CHECKING:` too), so
a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHIM = REPO / "teamd-shim" / "teamd_shim"
ORCH = REPO / "orchestrator"
# bottom -> top; the package root (teamd_shim/__init__.py: the version) is below everything
LAYERS = ["lacp", "model", "io", "db", "control", "roles", "daemon", "cli"]
NEVER_IN_PRODUCT = ("teamd_lab", "bench", "tests", "conftest")
NEVER_IN_DAEMON = NEVER_IN_PRODUCT + ("docker", "compose", "orchestrator")


def module_name(path: Path, root: Path, package: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def imports_of(path: Path, module: str) -> list[tuple[int, str]]:
    """Every module `path` imports, absolute, with its line."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_pkg:
                    base = base[:-1]
                base = base[: len(base) - node.level + 1]
                src = ".".join(base + ([node.module] if node.module else []))
            else:
                src = node.module or ""
            out.append((node.lineno, src))
            # `from teamd_shim import db` names a subpackage: count it as that import
            out += [
                (node.lineno, f"{src}.{a.name}")
                for a in node.names
                if (SHIM / Path(*f"{src}.{a.name}".split(".")[1:])).exists()
                and src.startswith("teamd_shim")
            ]
    return out


def layer_of(module: str) -> int | None:
    """The layer of a teamd_shim module, None for the package root (below every layer)."""
    parts = module.split(".")
    if parts[0] != "teamd_shim" or len(parts) == 1:
        return None
    return LAYERS.index(parts[1])


def violations(root: Path, package: str) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        mod = module_name(path, root, package)
        mine = layer_of(mod) if package == "teamd_shim" else None
        for line, imp in imports_of(path, mod):
            where = f"{path.relative_to(root.parent)}:{line} imports {imp}"
            top = imp.split(".")[0]
            banned = NEVER_IN_DAEMON if package == "teamd_shim" else NEVER_IN_PRODUCT
            if top in banned:
                found.append(f"{where}: the product never imports {top}")
            if package == "teamd_shim" and top == "teamd_shim" and mine is not None:
                theirs = layer_of(imp)
                if theirs is not None and theirs > mine:
                    found.append(
                        f"{where}: layer {LAYERS[mine]} may not import the higher "
                        f"layer {LAYERS[theirs]}"
                    )
    return found


def test_every_subpackage_is_a_layer() -> None:
    subs = {p.name for p in SHIM.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    mods = {p.stem for p in SHIM.glob("*.py") if p.name != "__init__.py"}
    assert subs | mods == set(LAYERS), "a new subpackage needs its place in LAYERS"


@pytest.mark.parametrize(("root", "package"), [(SHIM, "teamd_shim"), (ORCH, "orchestrator")])
def test_imports_point_down_only(root: Path, package: str) -> None:
    assert violations(root, package) == []


def test_the_check_sees_a_lazy_upward_import(tmp_path: Path) -> None:
    """The rule itself: an import of a higher layer inside a function is caught."""
    pkg = tmp_path / "teamd_shim"
    (pkg / "lacp").mkdir(parents=True)
    (pkg / "lacp" / "__init__.py").write_text("")
    (pkg / "lacp" / "pdu.py").write_text("def f():\n    from teamd_shim.roles import machine\n")
    found = violations(pkg, "teamd_shim")
    assert found and "layer lacp may not import the higher layer roles" in found[0]
