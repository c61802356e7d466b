"""pyproject.toml: each dependency is declared once (in the core list and in each extra)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

PROJECT = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))["project"]


@pytest.mark.parametrize("group", ["dependencies", *PROJECT.get("optional-dependencies", {})])
def test_each_dependency_is_declared_once(group: str) -> None:
    declared = PROJECT["dependencies"] if group == "dependencies" else PROJECT["optional-dependencies"][group]
    names = Counter(canonicalize_name(Requirement(line).name) for line in declared)
    assert [name for name, count in names.items() if count > 1] == []
