"""Peer timings for `hybrid bench kernels`, run in the same invocation on the same GPU.

Times fla's chunk_gated_delta_rule (forward, forward+backward) and fused_recurrent_gated_delta_rule
(decode, fp32 state), and PyTorch SDPA's flash backend (causal forward, backward), at the shapes
the bench passes, with CUDA events (warm-up, median of repeats). Prints one JSON object per line:
{"op": ..., "shape": ..., "ms": ...} (or "error": ... when a peer cannot run a shape).

fla's gated chunk backward refuses Hopper with Triton < 3.7.1 because its gradients can be wrong
there (fla issue #640). For TIMING ONLY the guard is switched off below; its gradients are never
used as a reference, and the bench prints that beside the numbers.
Usage: python3 kernel_peers.py '<json list of shapes>'   (fla on PYTHONPATH)
"""
import json
import sys

import torch
import torch.nn.functional as F


def timed(fn, repeats=20, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def emit(op, shape, fn):
    try:
        print(json.dumps({"op": op, "shape": shape, "ms": timed(fn)}), flush=True)
    except Exception as e:  # a peer failing one shape must not hide the others
        print(json.dumps({"op": op, "shape": shape, "error": f"{type(e).__name__}: {e}"[:300]}), flush=True)


def gdn(shape):
    from fla.ops.gated_delta_rule import chunk_gated_delta_rule
    import fla.ops.common.chunk_o as chunk_o
    chunk_o.TRITON_ABOVE_3_7_1 = True  # timing only: see the module docstring
    T, docs, H, K, V = shape["T"], shape["docs"], shape["H"], shape["Dk"], shape["Dv"]
    dev = "cuda"
    q = F.normalize(torch.randn(1, T, H, K, device=dev), dim=-1).bfloat16().requires_grad_()
    k = F.normalize(torch.randn(1, T, H, K, device=dev), dim=-1).bfloat16().requires_grad_()
    v = torch.randn(1, T, H, V, device=dev, dtype=torch.bfloat16, requires_grad=True)
    g = (-torch.rand(1, T, H, device=dev) * 2).requires_grad_()
    beta = (torch.rand(1, T, H, device=dev) * 2).requires_grad_()
    cu = torch.linspace(0, T, docs + 1, device=dev).long() if docs > 1 else None
    name = f"T={T} docs={docs} H={H} Dk={K} Dv={V}"

    def fwd():
        with torch.no_grad():
            chunk_gated_delta_rule(q, k, v, g, beta, cu_seqlens=cu)

    def fwd_bwd():
        o, _ = chunk_gated_delta_rule(q, k, v, g, beta, cu_seqlens=cu)
        o.backward(torch.ones_like(o))

    emit("gdn_chunked_fwd", name, fwd)
    emit("gdn_chunked_fwd_bwd", name, fwd_bwd)


def gdn_decode(shape):
    from fla.ops.gated_delta_rule import fused_recurrent_gated_delta_rule
    B, H, K, V = shape["B"], shape["H"], shape["Dk"], shape["Dv"]
    dev = "cuda"
    q = F.normalize(torch.randn(B, 1, H, K, device=dev), dim=-1).bfloat16()
    k = F.normalize(torch.randn(B, 1, H, K, device=dev), dim=-1).bfloat16()
    v = torch.randn(B, 1, H, V, device=dev, dtype=torch.bfloat16)
    g = -torch.rand(B, 1, H, device=dev)
    beta = torch.rand(B, 1, H, device=dev) * 2
    state = torch.randn(B, H, K, V, device=dev)

    def step():
        fused_recurrent_gated_delta_rule(q, k, v, g, beta=beta, initial_state=state, output_final_state=True)

    emit("gdn_decode", f"B={B} H={H} Dk={K} Dv={V}", step)


def attention(shape):
    T, H, D = shape["T"], shape["H"], shape["D"]
    dev = "cuda"
    q, k, v = (torch.randn(1, H, T, D, device=dev, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    name = f"T={T} H={H} D={D} causal"
    from torch.nn.attention import SDPBackend, sdpa_kernel

    def fwd():
        with torch.no_grad(), sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            F.scaled_dot_product_attention(q, k, v, is_causal=True)

    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    do = torch.randn_like(o)

    def bwd():
        torch.autograd.grad(o, (q, k, v), do, retain_graph=True)

    emit("attention_fwd", name, fwd)
    emit("attention_bwd", name, bwd)


def main():
    for shape in json.loads(sys.argv[1]):
        {"gdn": gdn, "gdn_decode": gdn_decode, "attention": attention}[shape["kind"]](shape)


if __name__ == "__main__":
    main()
