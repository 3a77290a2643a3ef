// Writes the seed corpus for the protocol fuzz targets: every sample message of
// tests/fuzz/proto_samples.h as one file, into OUT/<decoder>/ for its type and into OUT/msg/ for
// the any-type decoder, plus key files into OUT/keys/. Seeds are valid inputs, so the fuzzers
// start deep inside the decoders instead of at the magic check.
//
// Usage: proto_seeds OUT_DIR   (the subdirectories must exist)
#include <stdio.h>
#include <string.h>

#include "common/hy_error.h"
#include "proto/keys.h"
#include "proto/messages.h"
#include "tests/fuzz/proto_samples.h"

static int write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: proto_seeds OUT_DIR\n");
        return 2;
    }
    msgpack_sbuffer b;
    msgpack_sbuffer_init(&b);
    char path[1024];
    for (int i = 0; i < N_SAMPLES; i++) {
        const proto_msg m = sample_msg(i);
        if (proto_msg_encode(&m, &b) != 0) {
            fprintf(stderr, "sample %d: %s\n", i, hy_last_error());
            return 1;
        }
        snprintf(path, sizeof path, "%s/%s/sample-%02d", argv[1], proto_type_name(m.type), i);
        if (write_file(path, b.data, b.size)) return 1;
        snprintf(path, sizeof path, "%s/msg/sample-%02d", argv[1], i);
        if (write_file(path, b.data, b.size)) return 1;
    }
    msgpack_sbuffer_destroy(&b);
    proto_keypair a, c;
    if (proto_keypair_generate(&a) || proto_keypair_generate(&c)) {
        fprintf(stderr, "%s\n", hy_last_error());
        return 1;
    }
    char text[512];
    snprintf(text, sizeof text, "%s %d\n# pair\npublic-key %s\nsecret-key %s\n", PROTO_KEYS_MAGIC, PROTO_KEYS_VERSION,
             a.public_key, a.secret_key);
    snprintf(path, sizeof path, "%s/keys/pair", argv[1]);
    if (write_file(path, text, strlen(text))) return 1;
    snprintf(text, sizeof text, "%s %d\r\npublic-key %s\n\npublic-key\t%s  \n", PROTO_KEYS_MAGIC, PROTO_KEYS_VERSION,
             a.public_key, c.public_key);
    snprintf(path, sizeof path, "%s/keys/authorized", argv[1]);
    return write_file(path, text, strlen(text)) ? 1 : 0;
}
