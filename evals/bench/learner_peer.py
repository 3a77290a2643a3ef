"""PyTorch peer for `hybrid bench learner`: the same training step in HF transformers, same GPU, same run.

Builds transformers' OlmoHybridForCausalLM from the config.json the bench wrote (random init, all
parameters and activations bf16), then times the step the bench times: forward over one packed
batch of T tokens in `docs` documents, mean next-token cross-entropy within each document,
backward, global grad-norm clipping at 1.0, torch.optim.AdamW (fused on CUDA). Warm-up steps, then
timed steps with CUDA events; the median is reported. Prints ONE JSON object on stdout:
  {"ms_per_step", "tokens_per_s", "peak_mem_gb", "reserved_gb", "kernel_path", "packed", "params",
   "torch", "transformers", "fla", "triton", "device_name", "loss"}
Diagnostics go to stderr. The bench runs this after freeing its own GPU memory.

Kernel selection (transformers 5.x, integrations/hub_kernels.py): `torch_chunk_gated_delta_rule`
and `causal_conv1d_fn` are decorated with use_kernel_func_from_hub_with_fallback, which at import
of the modeling module tries `fla.ops.gated_delta_rule.chunk_gated_delta_rule` (and
`causal_conv1d.causal_conv1d_fn`) and keeps whatever it found in the wrapper's closure variable
`implementation`, else the readable PyTorch reference. We read that variable back and print it,
so a run that silently fell back to the reference shows it in `kernel_path`.

Packed documents: the GDN layers take `cu_seq_lens_q` (forwarded to fla as cu_seqlens, state reset
per document); attention detects the packing from position_ids that restart at 0 per document
and builds a block-diagonal causal mask (SDPA then cannot use its flash backend). The depthwise
conv gets no document ids from transformers (its wrapper passes only the parameters the chosen
function names), so its window does not reset at boundaries: 3 taps of leakage per document, the
same FLOPs. With docs = 1 the mask is plain causal. `packed` in the output says what applied.

fla's gated chunk backward refuses Hopper with Triton in [3.4, 3.7.1) (fla issue #640: wrong
gradients there). For TIMING ONLY the guard is switched off below, as kernel_peers.py does; the
bench prints that beside the numbers.
Usage: python3 learner_peer.py --config DIR/config.json --tokens 8192 --docs 1 --steps 10 --warmup 3
       [--device cuda|cpu]    (fla on PYTHONPATH; --device cpu: a smoke test with a tiny config)
"""
import argparse
import json
import statistics
import sys
import time


def log(msg):
    print(f"learner_peer: {msg}", file=sys.stderr, flush=True)


def chosen_implementation(fn):
    """Module.qualname of the function a transformers fallback wrapper dispatches to, or None."""
    seen, stack = set(), [fn]
    while stack:
        f = stack.pop()
        if id(f) in seen:
            continue
        seen.add(id(f))
        code, cells = getattr(f, "__code__", None), getattr(f, "__closure__", None)
        if code is not None and cells:
            for name, cell in zip(code.co_freevars, cells):
                try:
                    v = cell.cell_contents
                except ValueError:
                    continue
                if name == "implementation":
                    return f"{getattr(v, '__module__', '?')}.{getattr(v, '__qualname__', '?')}"
                if callable(v):
                    stack.append(v)
        if getattr(f, "__wrapped__", None) is not None:
            stack.append(f.__wrapped__)
    return None


def version_of(module_name):
    try:
        from importlib.metadata import version
        return version({"fla": "fla-core"}.get(module_name, module_name))
    except Exception:
        try:
            return __import__(module_name).__version__
        except Exception:
            return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="config.json written by the bench")
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--docs", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.tokens < 2 * a.docs or a.docs < 1 or a.steps < 1 or a.warmup < 0:
        ap.error("need docs >= 1, tokens >= 2 * docs, steps >= 1, warmup >= 0")

    import torch
    import transformers

    guard_off = False
    try:  # timing only: see the module docstring
        import fla.ops.common.chunk_o as chunk_o
        if hasattr(chunk_o, "TRITON_ABOVE_3_7_1"):
            chunk_o.TRITON_ABOVE_3_7_1 = True
            guard_off = True
    except Exception as e:
        log(f"fla not importable ({type(e).__name__}: {e}); GDN runs on the PyTorch reference")

    from transformers.models.olmo_hybrid import modeling_olmo_hybrid as mod
    from transformers.models.olmo_hybrid.configuration_olmo_hybrid import OlmoHybridConfig

    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("learner_peer: --device cuda but torch sees no GPU")
    torch.manual_seed(a.seed)
    config = OlmoHybridConfig.from_json_file(a.config)
    with dev:
        model = mod.OlmoHybridForCausalLM(config)
    model.to(dtype=torch.bfloat16)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    attn = getattr(model.config, "_attn_implementation", None)

    gdn_impl = chosen_implementation(mod.torch_chunk_gated_delta_rule) or "unknown"
    conv_impl = chosen_implementation(mod.causal_conv1d_fn) or "unknown"
    gdn_fast = gdn_impl.startswith("fla.")
    kernel_path = (f"gdn={gdn_impl}{'' if gdn_fast else ' (PyTorch reference)'}; conv={conv_impl}; "
                   f"attention={attn}" + ("; fla Hopper bwd guard off (timing only)" if guard_off else ""))
    log(f"{n_params / 1e9:.3f} B parameters, bf16, on {dev}; {kernel_path}")

    # One packed row: docs documents of T/docs tokens (the last takes the remainder), like the bench.
    T, D = a.tokens, a.docs
    cu = [T * d // D for d in range(D + 1)]
    g = torch.Generator().manual_seed(a.seed + 1)
    ids = torch.randint(0, config.vocab_size, (1, T), generator=g)
    pos = torch.cat([torch.arange(cu[d + 1] - cu[d]) for d in range(D)]).unsqueeze(0)
    labels = ids.clone()
    for d in range(1, D):  # the loss shifts labels by one: no target across a document boundary
        labels[0, cu[d]] = -100
    ids, pos, labels = ids.to(dev), pos.to(dev), labels.to(dev)
    packed_kwargs = {}
    if D > 1:
        cu_t = torch.tensor(cu, dtype=torch.long, device=dev)  # fla takes int64 offsets (as kernel_peers.py)
        longest = max(cu[d + 1] - cu[d] for d in range(D))
        packed_kwargs = dict(cu_seq_lens_q=cu_t, cu_seq_lens_k=cu_t, max_length_q=longest, max_length_k=longest)
    packed = ("one document: causal mask" if D == 1 else
              f"{D} documents: GDN state {'reset per document (cu_seqlens)' if gdn_fast else 'NOT reset (the reference ignores cu_seqlens)'}, "
              "block-diagonal attention mask, conv window not reset (no document ids reach it)")

    fused = dev.type == "cuda"
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1,
                            fused=fused)

    def step():
        out = model(input_ids=ids, position_ids=pos, labels=labels, **packed_kwargs)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return out.loss

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    t0 = time.perf_counter()
    for _ in range(a.warmup):
        step()
    sync()
    log(f"{a.warmup} warm-up step(s) in {time.perf_counter() - t0:.1f} s")
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, loss = [], None
    for _ in range(a.steps):
        if dev.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            loss = step()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            loss = step()
            times.append((time.perf_counter() - t) * 1e3)
    ms = statistics.median(times)
    result = {
        "ms_per_step": ms,
        "tokens_per_s": T / (ms * 1e-3),
        "peak_mem_gb": torch.cuda.max_memory_allocated() / 1e9 if dev.type == "cuda" else None,
        "reserved_gb": torch.cuda.max_memory_reserved() / 1e9 if dev.type == "cuda" else None,
        "kernel_path": kernel_path,
        "gdn_fast": gdn_fast,
        "packed": packed,
        "params": n_params,
        "optimizer": f"torch.optim.AdamW(fused={fused}), bf16 parameters and states, clip 1.0",
        "loss": float(loss.detach()),
        "device_name": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "fla": version_of("fla"),
        "triton": version_of("triton"),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
