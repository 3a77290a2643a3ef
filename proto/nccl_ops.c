// The registered NCCL implementation (see nccl_ops.h).
#include "proto/nccl_ops.h"

static const hy_nccl_ops *g_ops;

void hy_nccl_ops_set(const hy_nccl_ops *ops) { g_ops = ops; }
const hy_nccl_ops *hy_nccl_ops_get(void) { return g_ops; }
