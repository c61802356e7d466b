"""Test-wide settings: deterministic seeds, one torch thread per test worker (pytest -n 2), and an
export cache of the test session's own."""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _export_cache(tmp_path_factory, monkeypatch) -> None:
    """Files exported on first use go to one folder of the test session, never the user's cache."""
    monkeypatch.setenv("TSM_EXPORT_CACHE", str(tmp_path_factory.getbasetemp() / "export-cache"))
