"""The reference's and MMAction2's checkpoint files: safe reading (``files``), their layouts mapped
onto tsm's keys (``layouts``), the architecture their weights reveal (``architecture``), what their
file names and metadata say (``hints``), and loading them into a Recognizer (``loader``)."""

from tsm.checkpoint.foreign.files import UnsafeCheckpointError
from tsm.checkpoint.foreign.layouts import FOREIGN_FORMATS
from tsm.checkpoint.foreign.loader import load_foreign_checkpoint

__all__ = ["FOREIGN_FORMATS", "UnsafeCheckpointError", "load_foreign_checkpoint"]
