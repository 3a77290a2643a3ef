// Backend selection for the CLI (see device.c).
#ifndef HY_CLI_DEVICE_H
#define HY_CLI_DEVICE_H

#include "../model/model.h"

// name: "cpu", "cuda" or "auto" (NULL = auto). Returns 0 / −1 (message set).
int cli_device_open(const char *name, hy_backend **out);
// Whether the backend's kernels take this model's shapes (CUDA: head dims multiples of 16, ≤ 256).
int cli_device_check(const hy_backend *be, const hy_config *cfg);
// Destroys a backend cli_device_open made (the shared CPU backend is left alone).
void cli_device_close(hy_backend *be);
// What benchmark reports call the backend: its name, or "cuda (GPU model)" on CUDA.
void cli_device_name(const hy_backend *be, char *buf, size_t n);

#endif
