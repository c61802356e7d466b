"""Error text shared by every layer: messages the user reads on one line."""

from __future__ import annotations


def one_line(error: BaseException) -> str:
    """An exception's message on one line (FFmpeg's and ONNX Runtime's may span several), or its
    type's name when it has no message."""
    return " ".join(str(error).split()) or type(error).__name__


class MissingExtra(RuntimeError):
    """An optional package that a format or runtime needs is not installed; the message names the
    pip extra that installs it (one line, as the CLI prints it)."""

    def __init__(self, what: str, package: str, extra: str) -> None:
        super().__init__(f"{what} needs the '{package}' package: pip install 'tsm[{extra}]'")
        self.package = package
        self.extra = extra
