"""ExecuTorch: ``.pte`` programs for phones and boards, lowered to the XNNPACK delegate.

The clip model or the streaming step is captured by ``torch.export`` with a dynamic batch
dimension (1 to :data:`MAX_BATCH`; a larger batch runs in chunks) and the streaming step's caches
as explicit inputs and outputs (not mutable buffers), so an app carries them between frames as it
does with the ONNX files. The metadata (classes, test pipeline, shapes, precision) is the
program's constant method ``tsm_metadata``: one JSON string that a mobile app reads with
ExecuTorch's ``Module`` (``module.execute("tsm_metadata")``), no Python and no second file.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import json
import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tsm.errors import MissingExtra, one_line
from tsm.fileio import atomic_write

METADATA_METHOD = "tsm_metadata"  # the constant method that returns the metadata as JSON
MAX_BATCH = 8  # the batch the program's inputs are planned for; larger batches run in chunks
EXTRA = "executorch"
_LOG_PREFIX = re.compile(r"^\[[\w.]+:\d+\] ")  # "[program.cpp:114] " before each runtime log line


def require_executorch(module: str) -> Any:
    """Import an ExecuTorch module, or raise :class:`~tsm.errors.MissingExtra` naming the extra.
    torchao (which the exporter imports) registers an Enum with torch's pytree, which torch 2.14
    logs a deprecation warning about on every import: that line is kept off the terminal."""
    pytree_log = logging.getLogger("torch.utils._pytree")
    level = pytree_log.level
    pytree_log.setLevel(logging.ERROR)
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra("ExecuTorch (.pte) files", "executorch", EXTRA) from None
    finally:
        pytree_log.setLevel(level)


def batch_dynamic_shapes(example: Sequence[Tensor], batch: Any) -> tuple[Any, ...]:
    """``torch.export``'s dynamic shapes for ``network(inputs...)`` with ``batch`` as every input's
    first dimension: a clip model takes ``(clips,)``, a streaming step ``(frames, *caches)``."""
    first = {0: batch}
    return (first,) if len(example) == 1 else (first, tuple(first for _ in example[1:]))


def batch_dim() -> Any:
    """The dynamic batch dimension of an ExecuTorch program."""
    return torch.export.Dim("batch", min=1, max=MAX_BATCH)


def lower_to_xnnpack(program: torch.export.ExportedProgram) -> Any:
    """The edge program with every part XNNPACK runs delegated to it (an ``EdgeProgramManager``)."""
    exir = require_executorch("executorch.exir")
    partitioner = require_executorch("executorch.backends.xnnpack.partition.xnnpack_partitioner")
    return exir.to_edge_transform_and_lower(program, partitioner=[partitioner.XnnpackPartitioner()])


def program_bytes(lowered: Any, metadata: dict[str, str]) -> bytes:
    """The ``.pte`` bytes of a lowered program with ``metadata`` as its ``tsm_metadata`` method.
    ``lowered`` is left as it was (emitting changes the programs it emits), so a program lowered
    once can be written again with other metadata (int8: after its check)."""
    program_module = require_executorch("executorch.exir.program._program")
    programs = {name: copy.deepcopy(lowered.exported_program(name)) for name in lowered.methods}
    document = json.dumps({key: json.loads(value) for key, value in metadata.items()})
    manager = program_module.EdgeProgramManager(programs, {METADATA_METHOD: document}, lowered.compile_config)
    return manager.to_executorch().buffer


def write_executorch(
    network: nn.Module,
    example: tuple[Tensor, ...],
    path: Path,
    names: tuple[list[str], list[str]],
    metadata: dict[str, str],
) -> None:
    """Capture ``network`` with a dynamic batch, lower it to XNNPACK and write the program."""
    program = torch.export.export(network, example, dynamic_shapes=batch_dynamic_shapes(example, batch_dim()))
    data = program_bytes(lower_to_xnnpack(program), metadata)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


@contextlib.contextmanager
def _runtime_log(path: Path) -> Iterator[None]:
    """Keep the runtime's log lines (which it writes to ``sys.stderr``: CPU probing on every load,
    the reason a file does not load) off the terminal; a failure becomes one ValueError that
    includes them."""
    log = io.StringIO()
    try:
        with contextlib.redirect_stderr(log):
            yield
    except Exception as error:  # the runtime raises RuntimeError (and others) with its status code
        lines = [_LOG_PREFIX.sub("", line) for line in log.getvalue().splitlines() if _LOG_PREFIX.match(line)]
        details = "; ".join([*lines, one_line(error)])
        raise ValueError(
            f"executorch cannot load {path}: {details}; write it again with tsm export"
        ) from None


def runtime_binding() -> Any:
    """ExecuTorch's C++ runtime binding: the C extension that ``executorch.runtime`` wraps, alone
    (it loads in milliseconds; ``executorch.runtime`` imports the exporter, ``executorch.exir``,
    too: seconds and about 200 MB that running a file does not need). Where the extension is not
    laid out as in executorch 1.5, the public wrapper's module, which has the same functions."""
    try:
        binding = importlib.import_module("executorch.extension.pybindings._C")
    except ImportError:
        binding = None
    if binding is None or not hasattr(binding, "_load_program"):
        binding = require_executorch("executorch.extension.pybindings.portable_lib")
    return binding


def load_program(path: Path) -> Any:
    """The runtime's program of ``path`` (``num_methods``, ``get_method_name``, ``load_method``);
    an unloadable file is a one-line ValueError."""
    binding = runtime_binding()
    with _runtime_log(path):
        return binding._load_program(
            str(path),
            enable_etdump=False,
            debug_buffer_size=0,
            program_verification=binding.Verification.InternalConsistency,
        )


def method_names(program: Any) -> list[str]:
    return [program.get_method_name(index) for index in range(program.num_methods())]


def read_executorch_metadata(path: Path) -> dict[str, str]:
    """The metadata of a ``.pte`` program (values as JSON strings, as the ONNX files hold them);
    empty for a program without the ``tsm_metadata`` method."""
    program = load_program(path)
    if METADATA_METHOD not in method_names(program):
        return {}
    with _runtime_log(path):
        (document,) = program.load_method(METADATA_METHOD)([])
    return {key: json.dumps(value) for key, value in json.loads(document).items()}


class ExecuTorchProgram:
    """The ``forward`` method of a ``.pte`` file on torch tensors; a batch larger than the one the
    program is planned for runs in chunks."""

    def __init__(self, path: Path) -> None:
        program = load_program(path)
        if "forward" not in method_names(program):
            raise ValueError(f"{path} has no forward method: it is not a model tsm exported")
        with _runtime_log(path):
            self.method = program.load_method("forward")
        meta = self.method.method_meta()
        self.shapes = [tuple(meta.input_tensor_meta(i).sizes()) for i in range(meta.num_inputs())]
        self.max_batch = self.shapes[0][0]

    def __call__(self, inputs: Sequence[Tensor]) -> list[Tensor]:
        tensors = [tensor.detach().to("cpu", torch.float32).contiguous() for tensor in inputs]
        if tensors and tensors[0].shape[0] > self.max_batch:
            chunks = zip(*(tensor.split(self.max_batch) for tensor in tensors), strict=True)
            parts = [self.method(list(chunk)) for chunk in chunks]
            return [torch.cat(outputs) for outputs in zip(*parts, strict=True)]
        return list(self.method(tensors))


def executorch_runner(path: Path) -> ExecuTorchProgram:
    """A function running the ``.pte`` file on tensors, returning tensors (the export check's)."""
    return ExecuTorchProgram(path)
