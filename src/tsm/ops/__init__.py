"""Low-level TSM operations: the temporal shift and temporal pooling."""

from tsm.ops.pool import TemporalPool, temporal_pool
from tsm.ops.shift import SHIFT_MODES, ShiftMode, TemporalShift, temporal_shift

__all__ = ["SHIFT_MODES", "ShiftMode", "TemporalPool", "TemporalShift", "temporal_pool", "temporal_shift"]
