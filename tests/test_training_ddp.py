"""DDP through Lightning: two CPU processes (gloo) launched by torchrun stay in sync."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from tsm.data import generate_synthetic_dataset

WORKER = textwrap.dedent(
    """
    import sys
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    from tsm.data import VideoDataset
    from tsm.training import OptimizerConfig, RecognizerModule
    from tsm.checkpoint import model_config

    out, test_list = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    torch.manual_seed(0)
    clips = torch.randn(16, 4, 3, 32, 32)
    labels = torch.arange(16) % 2
    loader = DataLoader(TensorDataset(clips, labels), batch_size=4, shuffle=True)
    network = model_config("tsm_resnet18").replace(dropout=0.0)
    module = RecognizerModule(network, num_classes=2, num_segments=4, optimizer=OptimizerConfig(lr=0.05))
    initial = {k: v.clone() for k, v in module.model.state_dict().items()}

    class RecordShard(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            self.indices = list(iter(trainer.train_dataloader.sampler))

    shard = RecordShard()
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", max_epochs=2, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[shard],
    )
    trainer.fit(module, loader)
    # Lightning gives the test loader a DistributedSampler: 5 samples on 2 ranks, one repeated.
    sizes = {"num_segments": 4, "resize": 32, "input_size": 32}
    videos = VideoDataset(test_list, train=False, data_config=sizes)
    tester = RecognizerModule("tsm_resnet18", num_classes=4, num_segments=4, class_names=videos.class_names,
                              report_dir=f"{out}/report")  # fmt: skip
    trainer.test(tester, DataLoader(videos, batch_size=2, collate_fn=videos.collate), verbose=False)
    torch.save(
        {"state": module.model.state_dict(), "initial": initial,
         "parameters": [name for name, _ in module.model.named_parameters()], "indices": shard.indices,
         "world_size": trainer.world_size, "steps": trainer.global_step},
        f"{out}/rank{trainer.global_rank}.pt",
    )
    """
)


def test_two_cpu_processes_stay_in_sync(tmp_path) -> None:
    """Training agrees on both ranks; the test report has each sample once, in the list's order,
    though each rank saw its own shard (one sample twice) and one video is missing."""
    data = generate_synthetic_dataset(tmp_path / "data", train=1, val=1, test=4, size=32, frames=8, seed=2)
    lines = data.lists["test"].read_text().splitlines()
    test_list = data.root / "test_with_a_missing_video.txt"
    test_list.write_text("\n".join([*lines[:1], "missing.mp4 1", *lines[1:]]) + "\n")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    src = str(Path(__file__).parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(script), str(tmp_path), str(test_list),
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert [r["steps"] for r in ranks] == [4, 4]  # 16 clips / 2 ranks / batch 4 x 2 epochs
    assert set(ranks[0]["indices"]).isdisjoint(ranks[1]["indices"])  # each rank its own shard
    assert sorted(ranks[0]["indices"] + ranks[1]["indices"]) == list(range(16))
    # Parameters agree exactly. (BatchNorm running statistics are each rank's own, as in any DDP
    # run without trainer.sync_batchnorm; rank 0's are the ones saved.)
    for key in ranks[0]["parameters"]:
        assert torch.equal(ranks[0]["state"][key], ranks[1]["state"][key]), key
    changed = [
        key for key, value in ranks[0]["state"].items() if not torch.equal(value, ranks[0]["initial"][key])
    ]
    assert "new_fc.weight" in changed and "base_model.layer1.0.conv1.net.weight" in changed
    rows = json.loads((tmp_path / "report" / "predictions.json").read_text())
    assert [row["sample"] for row in rows] == [str(data.root / line.split()[0]) for line in lines]
    assert [row["label"] for row in rows] == [data.class_names[int(line.split()[1])] for line in lines]
