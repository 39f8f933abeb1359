"""The top-level packages depend in one direction only (DESIGN.md section 1)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "channels", "bots", "dialog", "ticket_core")
ALLOWED = {
    "ticket_core": set(),
    "dialog": {"ticket_core"},
    "bots": {"ticket_core", "channels", "dialog"},
    "channels": {"ticket_core"},
    "gateway": {"ticket_core", "channels", "bots", "dialog", "templates"},
}


def _imports(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".", 1)[0]
                if top in (*PACKAGES, "templates") and top != package:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_dependency_direction_has_no_cycles() -> None:
    for package in PACKAGES:
        for target, files in _imports(package).items():
            assert target in ALLOWED[package], f"{package} must not import {target} (in {sorted(files)})"
