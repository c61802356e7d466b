"""``tsm.export_model`` leaves the caller's model as it was: device, dtype, weights (bit for bit) and
the train/eval mode of every module, whatever the model's dtype; the file still passes its check."""

from __future__ import annotations

import pytest
import torch

import tsm


@pytest.mark.filterwarnings("ignore:`torch.jit")
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float32])
def test_export_leaves_the_callers_model_as_it_was(tmp_path, dtype: torch.dtype) -> None:
    model = tsm.Recognizer(3, num_segments=2, backbone="resnet18").to(dtype).train()
    model.base_model.bn1.eval()  # a BatchNorm frozen by hand keeps its own mode
    weights = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    modes = {name: module.training for name, module in model.named_modules()}
    devices = {tensor.device for tensor in weights.values()}

    check = tsm.export_model(model, tmp_path / "model.pt", frame_size=32)

    assert check is not None and check.passed, check.summary()
    after = model.state_dict()
    assert {name: tensor.dtype for name, tensor in after.items()} == {k: v.dtype for k, v in weights.items()}
    assert {tensor.device for tensor in after.values()} == devices
    assert all(torch.equal(after[name], tensor) for name, tensor in weights.items())
    assert {name: module.training for name, module in model.named_modules()} == modes
    assert modes[""] and not modes["base_model.bn1"]
