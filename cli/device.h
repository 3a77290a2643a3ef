// Backend selection for the CLI (see device.c).
#ifndef HY_CLI_DEVICE_H
#define HY_CLI_DEVICE_H

#include "../model/model.h"

// name: "cpu", "cuda" or "auto" (NULL = auto). Returns 0 / −1 (message set).
int cli_device_open(const char *name, hy_backend **out);
// Destroys a backend cli_device_open made (the shared CPU backend is left alone).
void cli_device_close(hy_backend *be);

#endif
