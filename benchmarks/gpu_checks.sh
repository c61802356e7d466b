#!/usr/bin/env bash
# What a session with a CUDA GPU runs: the GPU figures of bench_core (ResNet-50, 8 frames, 224^2;
# 1 clip for latency, 16 clips for throughput), then the whole test suite, whose CUDA tests run
# only where there is a GPU. Logs go to the folder given (default gpu-results/).
#   bash benchmarks/gpu_checks.sh [OUT_DIR]
set -u
out=${1:-gpu-results}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cudnn', torch.backends.cudnn.version())"
    nproc
} 2>&1 | tee "$out/machine.txt"
python3 benchmarks/bench_core.py --device cuda --clips 16 --rounds 11 --repeat 4 2>&1 | tee "$out/bench_16clips.txt"
python3 benchmarks/bench_core.py --device cuda --clips 1 --rounds 15 --repeat 10 2>&1 | tee "$out/bench_1clip.txt"
timeout 400 python3 -m pytest -q -n 12 --dist loadfile -p no:cacheprovider 2>&1 | tee "$out/tests.txt"
