// Fills an hy_backend table from functions named as in each backend file (private to model/).
//
// Both backends define one static function per entry under the same name (act_alloc,
// linear_fwd, recurrent_fwd, ...); this one list binds them, so a new entry is added in one place
// and a backend that lacks it fails to compile instead of leaving a NULL pointer. LAUNCH(f) binds
// an entry that does nothing but queue device work: the CUDA backend wraps it so that it is
// skipped while a replayed step's host code re-runs (backend.h, replay_begin); the CPU backend
// binds it as it is. Entries that upload, allocate or reach the host are bound plainly and handle
// replays themselves.
#ifndef HY_BACKEND_TABLE_H
#define HY_BACKEND_TABLE_H

#define HY_BACKEND_BIND_ENTRIES(b, LAUNCH) \
    do {                           \
        (b)->act_alloc = act_alloc; \
        (b)->f32_alloc = f32_alloc; \
        (b)->i32_upload = i32_upload; \
        (b)->mark = mark; \
        (b)->release = release; \
        (b)->act_zero = LAUNCH(act_zero); \
        (b)->f32_zero = LAUNCH(f32_zero); \
        (b)->act_copy = LAUNCH(act_copy); \
        (b)->f32_copy = LAUNCH(f32_copy); \
        (b)->f32_copy_rows = f32_copy_rows; \
        (b)->f32_to_host = f32_to_host; \
        (b)->f32_from_host = f32_from_host; \
        (b)->alloc_persistent = alloc_persistent; \
        (b)->free_persistent = free_persistent; \
        (b)->bytes_to_host = bytes_to_host; \
        (b)->bytes_from_host = bytes_from_host; \
        (b)->memory_info = memory_info; \
        (b)->synchronize = synchronize; \
        (b)->destroy = destroy; \
        (b)->replay_begin = replay_begin; \
        (b)->replay_end = replay_end; \
        (b)->replay_reset = replay_reset; \
        (b)->add = LAUNCH(add); \
        (b)->accumulate = LAUNCH(accumulate); \
        (b)->copy_columns = LAUNCH(copy_columns); \
        (b)->accumulate_columns = LAUNCH(accumulate_columns); \
        (b)->embedding_forward = LAUNCH(embedding_fwd); \
        (b)->embedding_backward = LAUNCH(embedding_bwd); \
        (b)->linear_forward = LAUNCH(linear_fwd); \
        (b)->linear_forward_f32 = LAUNCH(linear_fwd_f32); \
        (b)->linear_backward = LAUNCH(linear_bwd); \
        (b)->rmsnorm_forward = LAUNCH(rmsnorm_fwd); \
        (b)->rmsnorm_backward = LAUNCH(rmsnorm_bwd); \
        (b)->gated_rmsnorm_forward = LAUNCH(gated_fwd); \
        (b)->gated_rmsnorm_backward = LAUNCH(gated_bwd); \
        (b)->l2norm_forward = LAUNCH(l2_fwd); \
        (b)->l2norm_backward = LAUNCH(l2_bwd); \
        (b)->conv1d_silu_forward = LAUNCH(conv_fwd); \
        (b)->conv1d_silu_forward_pool = conv_fwd_pool; \
        (b)->conv1d_silu_backward = LAUNCH(conv_bwd); \
        (b)->gdn_gates_forward = LAUNCH(gates_fwd); \
        (b)->gdn_gates_backward = LAUNCH(gates_bwd); \
        (b)->gdn_chunked_forward = chunked_fwd; \
        (b)->gdn_recurrent_forward = recurrent_fwd; \
        (b)->gdn_decode_pool = decode_pool; \
        (b)->sample_rows = sample_rows; \
        (b)->gdn_chunked_backward = LAUNCH(chunked_bwd); \
        (b)->rope_forward = LAUNCH(rope_fwd); \
        (b)->rope_backward = LAUNCH(rope_bwd); \
        (b)->attention_forward = LAUNCH(attn_fwd); \
        (b)->attention_backward = LAUNCH(attn_bwd); \
        (b)->kv_write_paged = kv_write_paged; \
        (b)->attention_paged = attn_paged; \
        (b)->swiglu_forward = LAUNCH(swiglu_fwd); \
        (b)->swiglu_backward = LAUNCH(swiglu_bwd); \
        (b)->logprobs_forward = LAUNCH(logp_fwd); \
        (b)->logprobs_backward = LAUNCH(logp_bwd); \
        (b)->adamw_step = LAUNCH(adamw); \
        (b)->grad_sumsq = sumsq; \
        (b)->grad_scale = LAUNCH(scale); \
        (b)->params_to_matmul_view = LAUNCH(to_mm); \
    } while (0)

#endif
