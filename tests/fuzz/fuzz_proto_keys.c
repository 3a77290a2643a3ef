// libFuzzer target for proto_keys_parse, the CURVE key-file reader (proto/keys.h). Key files are
// local, but an authorized-keys file may be assembled from keys others sent, so it gets the same
// treatment as a decoder: a refusal carries a message, an accepted file yields only 40-character
// keys, and no input crashes or leaks.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hy_error.h"
#include "proto/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    proto_key_list keys;
    char secret[PROTO_KEY_Z85_LEN + 1];
    hy_error_clear();
    if (proto_keys_parse((const char *)data, size, "fuzz", &keys, secret) != 0) {
        if (strncmp(hy_last_error(), "fuzz", 4) != 0) abort();
        return 0;
    }
    for (int i = 0; i < keys.n; i++)
        if (strlen(keys.keys[i]) != PROTO_KEY_Z85_LEN) abort();
    if (secret[0] && strlen(secret) != PROTO_KEY_Z85_LEN) abort();
    proto_key_list_free(&keys);
    return 0;
}
