"""Per-path engine settings: the workload an engine runs in, and what ONNX Runtime makes of it."""

from __future__ import annotations

import pytest

import tsm
from stream_helpers import random_eval_model
from tsm.inference import EngineOptions, streaming_engine

SPINNING = "session.intra_op.allow_spinning"


def test_an_unknown_workload_or_precision_is_refused():
    with pytest.raises(ValueError, match="unknown workload 'busy': use one of alone, overlapped, served"):
        EngineOptions(workload="busy")
    with pytest.raises(ValueError, match="unknown precision 'int4'"):
        EngineOptions(precision="int4")


def test_onnxruntime_spins_only_when_the_engine_runs_alone(tmp_path):
    model = random_eval_model("tsm_online_resnet18", num_segments=2)
    path = tmp_path / "step.onnx"
    tsm.export_model(model, path, streaming=True, frame_size=32, check=False)
    for workload, spinning in (("alone", "1"), ("overlapped", "0"), ("served", "0")):
        engine = streaming_engine(path, workload=workload)
        session = engine.runner.session
        assert session.get_session_options().get_session_config_entry(SPINNING) == spinning
        assert ("spinning" in engine.reason) == (spinning == "1")
    default = streaming_engine(path).runner.session.get_session_options()  # the default: overlapped
    assert default.get_session_config_entry(SPINNING) == "0"
