// Fills an hy_backend table from functions named as in each backend file (private to model/).
//
// Both backends define one static function per entry under the same name (act_alloc,
// linear_fwd, recurrent_fwd, ...); this one list binds them, so a new entry is added in one place
// and a backend that lacks it fails to compile instead of leaving a NULL pointer.
#ifndef HY_BACKEND_TABLE_H
#define HY_BACKEND_TABLE_H

#define HY_BACKEND_BIND_ENTRIES(b) \
    do {                           \
        (b)->act_alloc = act_alloc; \
        (b)->f32_alloc = f32_alloc; \
        (b)->i32_upload = i32_upload; \
        (b)->mark = mark; \
        (b)->release = release; \
        (b)->act_zero = act_zero; \
        (b)->f32_zero = f32_zero; \
        (b)->act_copy = act_copy; \
        (b)->f32_copy = f32_copy; \
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
        (b)->add = add; \
        (b)->accumulate = accumulate; \
        (b)->copy_columns = copy_columns; \
        (b)->accumulate_columns = accumulate_columns; \
        (b)->embedding_forward = embedding_fwd; \
        (b)->embedding_backward = embedding_bwd; \
        (b)->linear_forward = linear_fwd; \
        (b)->linear_forward_f32 = linear_fwd_f32; \
        (b)->linear_backward = linear_bwd; \
        (b)->rmsnorm_forward = rmsnorm_fwd; \
        (b)->rmsnorm_backward = rmsnorm_bwd; \
        (b)->gated_rmsnorm_forward = gated_fwd; \
        (b)->gated_rmsnorm_backward = gated_bwd; \
        (b)->l2norm_forward = l2_fwd; \
        (b)->l2norm_backward = l2_bwd; \
        (b)->conv1d_silu_forward = conv_fwd; \
        (b)->conv1d_silu_backward = conv_bwd; \
        (b)->gdn_gates_forward = gates_fwd; \
        (b)->gdn_gates_backward = gates_bwd; \
        (b)->gdn_chunked_forward = chunked_fwd; \
        (b)->gdn_recurrent_forward = recurrent_fwd; \
        (b)->gdn_decode_pool = decode_pool; \
        (b)->sample_rows = sample_rows; \
        (b)->gdn_chunked_backward = chunked_bwd; \
        (b)->rope_forward = rope_fwd; \
        (b)->rope_backward = rope_bwd; \
        (b)->attention_forward = attn_fwd; \
        (b)->attention_backward = attn_bwd; \
        (b)->kv_write_paged = kv_write_paged; \
        (b)->attention_paged = attn_paged; \
        (b)->swiglu_forward = swiglu_fwd; \
        (b)->swiglu_backward = swiglu_bwd; \
        (b)->logprobs_forward = logp_fwd; \
        (b)->logprobs_backward = logp_bwd; \
        (b)->adamw_step = adamw; \
        (b)->grad_sumsq = sumsq; \
        (b)->grad_scale = scale; \
        (b)->params_to_matmul_view = to_mm; \
    } while (0)

#endif
