// `--device cpu|cuda|auto` for every command that runs the model: picks the backend and moves the
// model onto it. auto means CUDA when this build has it and a GPU is present, else the CPU.
#include "device.h"

#include <stdio.h>
#include <string.h>
#ifdef HY_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

#include "../common/hy_error.h"

int cli_device_open(const char *name, hy_backend **out) {
    *out = NULL;
    if (!name || !strcmp(name, "auto")) {
#ifdef HY_HAVE_CUDA
        if (hy_backend_cuda_available()) return (*out = hy_backend_cuda_new()) ? 0 : -1;
#endif
        *out = hy_cpu_backend();
        return 0;
    }
    if (!strcmp(name, "cpu")) {
        *out = hy_cpu_backend();
        return 0;
    }
    if (!strcmp(name, "cuda")) {
#ifdef HY_HAVE_CUDA
        return (*out = hy_backend_cuda_new()) ? 0 : -1;
#else
        return hy_fail("--device cuda: this build of hybrid has no CUDA support (nvcc was not found at configure time)");
#endif
    }
    return hy_fail("--device must be cpu, cuda or auto, got '%s'", name);
}

void cli_device_close(hy_backend *be) {
    if (be && be != hy_cpu_backend()) be->destroy(be);
}

int cli_device_check(const hy_backend *be, const hy_config *c) {
    if (be->device != HY_DEVICE_CUDA) return 0;
    const int dims[3] = {c->head_dim, c->linear_key_head_dim, c->linear_value_head_dim};
    const char *names[3] = {"head_dim", "linear_key_head_dim", "linear_value_head_dim"};
    for (int i = 0; i < 3; i++)
        if (dims[i] % 16 || dims[i] > 256)
            return hy_fail("--device cuda: config %s = %d; the CUDA kernels take multiples of 16 up to 256 "
                           "(use --device cpu for this model)",
                           names[i], dims[i]);
    return 0;
}

void cli_device_name(const hy_backend *be, char *buf, size_t n) {
    snprintf(buf, n, "%s", be->name);
#ifdef HY_HAVE_CUDA
    struct cudaDeviceProp prop;
    int dev = 0;
    if (be->device == HY_DEVICE_CUDA && cudaGetDevice(&dev) == cudaSuccess &&
        cudaGetDeviceProperties(&prop, dev) == cudaSuccess)
        snprintf(buf, n, "cuda (%s)", prop.name);
#endif
}
