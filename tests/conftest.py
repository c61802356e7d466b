"""Test-wide settings: deterministic seeds and one torch thread per test worker (pytest -n 2)."""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
