"""Files the project writes get the permissions of an ordinary file (0666 less the umask)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

import tsm
from tsm.fileio import atomic_write
from tsm.training import write_evaluation_report


@pytest.fixture(params=[0o022, 0o077, 0o002], ids=["022", "077", "002"])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.filterwarnings("ignore:`torch.jit")
def test_checkpoints_exports_and_reports_respect_the_umask(tmp_path, umask) -> None:
    expected = 0o666 & ~umask
    model = tsm.Recognizer(3, num_segments=2, backbone="resnet18").eval()
    checkpoint = tsm.save_checkpoint(tmp_path / "model.safetensors", model, ["a", "b", "c"])
    tsm.export_model(model, tmp_path / "model.pt", frame_size=32, check=False)
    report = tmp_path / "report"
    write_evaluation_report(report, torch.eye(3), torch.arange(3), ["a", "b", "c"])
    written = [checkpoint, tmp_path / "model.pt", *sorted(report.iterdir())]
    assert {path.name: oct(mode_of(path)) for path in written} == dict.fromkeys(
        (path.name for path in written), oct(expected)
    )
    assert [path.name for path in tmp_path.iterdir() if path.name.endswith(".tmp")] == []


def test_atomic_write_leaves_nothing_behind_when_writing_fails(tmp_path) -> None:
    def fail(tmp: str) -> None:
        Path(tmp).write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(tmp_path / "out.bin", fail)
    assert list(tmp_path.iterdir()) == []
