"""What the `tsm` command prints when something goes wrong: one line for bad input, the traceback
for a bug."""

from __future__ import annotations

import pytest

import tsm.cli.demo
from tsm.cli.main import main
from tsm.data import VideoReadError
from tsm.training import TrainingDiverged


def failing_with(error: BaseException):
    def handler(args) -> int:
        raise error

    return handler


@pytest.mark.parametrize(
    "error",
    [
        ValueError("num_segments must be >= 1"),
        FileNotFoundError("checkpoint 'x.pth' does not exist"),
        VideoReadError("clip.mp4", "no video stream"),
        TrainingDiverged("the training loss became nan"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_bad_input_is_one_line(error, monkeypatch, capsys) -> None:
    monkeypatch.setattr(tsm.cli.demo, "run", failing_with(error))
    assert main(["demo"]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"tsm demo: error: {error}\n"
    assert "Traceback" not in captured.out + captured.err


@pytest.mark.parametrize(
    "error", [TypeError("unsupported operand"), RuntimeError("shape '[2, -1]' is invalid"), KeyError("x")]
)
def test_a_bug_keeps_its_traceback(error, monkeypatch, capsys) -> None:
    monkeypatch.setattr(tsm.cli.demo, "run", failing_with(error))
    with pytest.raises(type(error)) as raised:
        main(["demo"])
    assert raised.value is error  # not swallowed into one line: Python prints the traceback
    assert capsys.readouterr().err == ""
