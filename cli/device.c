// `--device cpu|cuda|auto` for every command that runs the model: picks the backend and moves the
// model onto it. auto means CUDA when this build has it and a GPU is present, else the CPU.
#include "device.h"

#include <string.h>

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
