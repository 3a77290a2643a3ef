#!/usr/bin/env bash
# Everything the GPU box runs, in one call (device time is scarce): build with CUDA for sm_90a,
# run the GPU tests and compute-sanitizer on each, the CPU tests, then remake the HF parity
# fixtures with transformers there and hold the C implementation to them, and check that
# transformers loads a checkpoint hybrid wrote. Logs and the remade fixtures are packed into
# $OUT/gpu-run.tgz (the device tool returns few files); the summary is printed last.
#   usage (repo root, on the box): source .devdeps/devenv.sh && bash tests/gpu/run.sh
set -u
dest=${OUT:-gpu-out}
out=$dest/gpu-run
mkdir -p "$out"
summary=()
step() {  # step NAME CMD...: runs CMD, logs to $out/NAME.log, records ok/FAIL
  local name=$1; shift
  local t0=$(date +%s)
  if "$@" >"$out/$name.log" 2>&1; then summary+=("ok    $name ($(( $(date +%s) - t0 )) s)")
  else summary+=("FAIL  $name ($(( $(date +%s) - t0 )) s): see $name.log"); fi
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$out/gpu.txt" 2>&1
step configure cmake -S . -B build-gpu -DCMAKE_CUDA_ARCHITECTURES=90a
step build cmake --build build-gpu -j16
step gpu-tests ctest --test-dir build-gpu -L gpu --output-on-failure
for t in build-gpu/test_*_gpu; do
  [ -x "$t" ] && step "memcheck-$(basename "$t")" compute-sanitizer --tool memcheck --error-exitcode 1 "$t" .
done
step cpu-tests ctest --test-dir build-gpu -LE gpu --output-on-failure
step fixtures python3 tests/fixtures/make_fixtures.py --out "$out/parity"
step parity-vs-box-fixtures build-gpu/test_parity . "$out/parity"
m=$(mktemp -d)
step hf-loads-ours bash -c "build-gpu/hybrid init --preset tiny --out $m/m --seed 5 &&
  printf '{\"tokens\":[1,2,3,4,5,6,7,8,9,10,11,12]}\n{\"tokens\":[9,8,7,6,5,4,3]}\n' >$m/d.jsonl &&
  build-gpu/hybrid sft --device cpu --model $m/m --data $m/d.jsonl --out $m/m2 --steps 5 --lr 3e-2 &&
  build-gpu/hybrid score --device cpu --model $m/m2 --input $m/d.jsonl --output $m/s.jsonl &&
  python3 tests/fixtures/check_hf_load.py $m/m2 $m/s.jsonl"
step cli-cuda bash -c "build-gpu/hybrid init --preset tiny-dolma2 --tokenizer model/tokenizers/dolma2-tokenizer.json --out $m/d --seed 2 &&
  printf '{\"text\":\"The quick brown fox jumps over the lazy dog.\"}\n{\"tokens\":[5,6,7,8,9,10,11,12]}\n' >$m/t.jsonl &&
  build-gpu/hybrid sft --device cuda --model $m/d --data $m/t.jsonl --out $m/d2 --steps 3 --lr 1e-2 &&
  build-gpu/hybrid sft --device cpu --model $m/d --data $m/t.jsonl --out $m/d3 --steps 3 --lr 1e-2 &&
  build-gpu/hybrid score --device cuda --model $m/d2 --input $m/t.jsonl --output $m/s_gpu.jsonl &&
  build-gpu/hybrid score --device cpu --model $m/d2 --input $m/t.jsonl --output $m/s_cpu.jsonl &&
  head -c 300 $m/s_gpu.jsonl && echo && head -c 300 $m/s_cpu.jsonl && echo &&
  build-gpu/hybrid generate --device cuda --model $m/d2 --prompt 'Hello' --max-new-tokens 16 --seed 3 --json"
if [ -d .whl ]; then  # fla peers, carried as wheels (performance.md)
  pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl >"$out/pip.log" 2>&1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
step bench build-gpu/hybrid bench kernels --peers evals/bench/kernel_peers.py
cp "$out/bench.log" "$dest/bench.txt" 2>/dev/null
printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"
tar -C "$dest" -czf "$dest/gpu-run.tgz" gpu-run && rm -rf "$out"
