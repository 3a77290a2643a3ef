#!/usr/bin/env bash
# What the two-GPU box (nvidia-h200-x2) runs, in one call: build, the GPU test suite, the
# data-parallel test on CUDA (two ranks over NCCL against one rank: losses and weights), NCCL weight
# sync under compute-sanitizer, then the 7B-shape DPO step on both GPUs (zero weights from the
# preset: the step's work does not depend on the values) with activation checkpointing — tokens/s
# and the memory each GPU holds. Logs go to $OUT/dp-run; the summary is printed last.
#   usage (repo root, on the box): source .devdeps/devenv.sh && bash tests/gpu/run_dp.sh [dp|checks|all]
#   (dp: build, the data-parallel test and the 7B step; checks: build, GPU tests, compute-sanitizer)
set -u
what=${1:-all}
dest=${OUT:-gpu-out}
out=$dest/dp-run
mkdir -p "$out"
export NCCL_NVLS_ENABLE=0  # NVLink multicast stays off on the lent boxes
summary=()
step() {  # step NAME CMD...: runs CMD, logs to $out/NAME.log, records ok/FAIL
  local name=$1; shift
  local t0=$(date +%s)
  if "$@" >"$out/$name.log" 2>&1; then summary+=("ok    $name ($(( $(date +%s) - t0 )) s)")
  else summary+=("FAIL  $name ($(( $(date +%s) - t0 )) s): see $name.log"); fi
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$out/gpu.txt" 2>&1
step configure cmake -S . -B build-dp -DCMAKE_CUDA_ARCHITECTURES=90a -DCMAKE_BUILD_TYPE=Release
step build cmake --build build-dp -j32
if [ "$what" != dp ]; then
  step gpu-tests ctest --test-dir build-dp -L gpu --output-on-failure
  step memcheck-model compute-sanitizer --tool memcheck --error-exitcode 1 build-dp/test_model_gpu .
  step memcheck-nccl-sync compute-sanitizer --tool memcheck --report-api-errors no --error-exitcode 1 --target-processes all \
    build-dp/hybrid bench sync --preset tiny --workers 1 --worker-gpus 1 --transport nccl --rounds 2 --device cuda
fi
if [ "$what" = checks ]; then printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"; exit 0; fi
step dp-cuda bash -c "cd build-dp && HY_DP_TEST_DEVICE=cuda ./test_data_parallel"
# The 7B DPO step: 16 pairs of 512 prompt + 512 response tokens (random ids), 8 pairs a step, one
# 8,192-token micro-batch per rank; the reference pass runs first on rank 0.
w=$(mktemp -d)
python3 - "$w/pairs.jsonl" <<'EOF'
import json, random, sys
random.seed(7)
with open(sys.argv[1], "w") as f:
    for _ in range(16):
        ids = lambda n: [random.randrange(100, 100000) for _ in range(n)]
        f.write(json.dumps({"prompt_tokens": ids(512), "chosen_tokens": ids(512), "rejected_tokens": ids(512)}) + "\n")
EOF
step dpo-7b-2gpu build-dp/hybrid learn --nproc 2 -- dpo --model preset:olmo-hybrid-7b --data "$w/pairs.jsonl" \
  --device cuda --steps 4 --batch-size 8 --micro-batch-tokens 8192 --lr 1e-6 --activation-checkpointing 1 \
  --save-final 0 --out "$w/o7" --peak-tflops 989
grep -E '^\{"step"|^step |ranks joined|reference' "$out/dpo-7b-2gpu.log" | tail -12 >"$out/dpo-7b-summary.txt"
printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"
cat "$out/dpo-7b-summary.txt"
tail -5 "$out/dp-cuda.log"
