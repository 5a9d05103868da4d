"""The API uses supervision only through the names ``supervision/__init__.py`` exports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import supervision

API = Path(__file__).resolve().parents[1] / "api"


def test_every_exported_name_loads() -> None:
    for name in supervision.__all__:
        assert getattr(supervision, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = supervision.nope


def test_the_api_imports_no_supervision_module_directly() -> None:
    direct = []
    for path in sorted(API.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("supervision."):
                direct.append(f"{path.relative_to(API.parent)}: from {node.module} import ...")
            elif isinstance(node, ast.Import):
                direct += [f"{path.relative_to(API.parent)}: import {a.name}" for a in node.names
                           if a.name.startswith("supervision.")]
    assert direct == []
    assert set(supervision.__all__) == set(supervision._EXPORTS)
