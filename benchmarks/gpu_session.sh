#!/usr/bin/env bash
# The GPU checks in stages that each fit one 10-minute call on a lent GPU machine.  Run from
# the repository root where python3 holds a CUDA build of torch (numpy, psutil, onnx,
# onnxruntime, matplotlib and nvidia-ml-py beside it); inferometer runs from src/, nothing is
# installed.  What a stage keeps goes to OUTDIR as a few files (run directories as .tgz):
#   bash benchmarks/gpu_session.sh check OUTDIR  # CUDA tests; harness vs a bare CUDA-graph loop
#   bash benchmarks/gpu_session.sh study OUTDIR  # the GPU study's table, a training step,
#                                                # the precision table (digits)
#   bash benchmarks/gpu_session.sh sweep OUTDIR  # ResNet-50: eager, channels_last, cuda_graph
#                                                # x fp32, fp16, bf16 x batch 1, 8, 50, 128
#   bash benchmarks/gpu_session.sh compile OUTDIR  # the same for torch.compile (a minute or
#                                                  # more of compiling per cell)
set -euo pipefail
usage='usage: gpu_session.sh check|study|sweep|compile OUTDIR'
stage=${1:?$usage}
out=${2:?$usage}
py=${PYTHON:-python3}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export INFEROMETER_CACHE=${INFEROMETER_CACHE:-/tmp/inferometer-cache}
mkdir -p "$out"
exec > >(tee -a "$out/$stage.log") 2>&1
nvidia-smi -L
$py -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
torch.cuda.get_device_name())'

keep() {  # keep a run directory as one file (the machine hands back 8 files at most)
  tar czf "$out/$(basename "$1").tgz" -C "$(dirname "$1")" "$(basename "$1")"
}

work=$(mktemp -d)
case $stage in
  check)
    failed=0  # device time is scarce: a failing step does not stop the next
    $py -m pytest -q -p no:cacheprovider \
      tests/test_devices.py tests/test_train.py tests/test_tensorrt.py || failed=1
    $py -m pytest -q -p no:cacheprovider -k cuda tests/test_contract.py || failed=1
    $py benchmarks/cuda_graph_baseline.py --model resnet50 --batch 50 --rounds 3 || failed=1
    exit $failed
    ;;
  study)  # the study's protocol: 5 warm-up batches, then (at least) 500 timed ones
    $py -m inferometer run alexnet,vgg16,resnet50,inception_v3 --device cuda \
      --runtimes torch --batch 8,50 --precisions fp32,fp16 --warmup 5 --min-count 500 \
      --output "$work/gpu-study"
    $py -m inferometer report "$work/gpu-study"
    keep "$work/gpu-study"
    $py -m inferometer train resnet50 --device cuda --batch 32 --optimizer sgd \
      --output "$work/gpu-train"
    keep "$work/gpu-train"
    # the precision table on real labels (no ImageNet on the machine: the digits model)
    $py -m inferometer accuracy digits --device cuda --runtimes torch \
      --precisions fp32,fp16,bf16 --output "$work/gpu-accuracy"
    keep "$work/gpu-accuracy"
    ;;
  sweep|compile)
    variants=eager,channels_last,cuda_graph
    [ "$stage" = compile ] && variants=compile
    $py -m inferometer run resnet50 --device cuda --runtimes torch --variants "$variants" \
      --precisions fp32,fp16,bf16 --batch 1,8,50,128 --output "$work/gpu-resnet50-$stage"
    $py -m inferometer report "$work/gpu-resnet50-$stage"
    keep "$work/gpu-resnet50-$stage"
    ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
