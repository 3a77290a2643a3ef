// CURVE key files: generation (what `hybrid keygen` will call), reading and writing.
//
// ZeroMQ CURVE keys are 32-byte Curve25519 keys, carried as 40-character Z85 text. One small text
// format serves key pairs, public keys and authorized-client lists (docs/proto.md, "Key files"):
//
//     hybrid-curve-keys 1
//     # comments and blank lines are ignored
//     public-key <40 Z85 chars>
//     secret-key <40 Z85 chars>
//
// The first line is the magic and format version. A key pair file has one public-key and one
// secret-key line (matching: the public key is recomputed from the secret); a public key file has
// one public-key line; an authorized-keys file has one or more public-key lines, so public key
// files concatenate into one. Files with a secret are written 0600 and refused when group or
// others may read them, as ssh does; a public or authorized file that holds a secret is refused
// too, because handing it out would leak the secret. Writers never overwrite an existing file.
#ifndef HY_PROTO_KEYS_H
#define HY_PROTO_KEYS_H

#include <stddef.h>

#define PROTO_KEY_Z85_LEN 40
#define PROTO_KEYS_MAGIC "hybrid-curve-keys"
#define PROTO_KEYS_VERSION 1
#define PROTO_KEYS_MAX_FILE_BYTES (1 << 20)

typedef struct {
    char public_key[PROTO_KEY_Z85_LEN + 1];
    char secret_key[PROTO_KEY_Z85_LEN + 1];  // "" when the file held no secret
} proto_keypair;

typedef struct {
    char (*keys)[PROTO_KEY_Z85_LEN + 1];  // (n) Z85 public keys, file order
    int n;
} proto_key_list;

// Parses key-file text (len bytes, need not be NUL-terminated); `name` is used in messages. Every
// public key goes to *publics (proto_key_list_free it), the secret (at most one) to secret_key
// ("" when none). 0, or -1 naming the file, line and problem.
int proto_keys_parse(const char *text, size_t len, const char *name, proto_key_list *publics,
                     char secret_key[PROTO_KEY_Z85_LEN + 1]);
void proto_key_list_free(proto_key_list *l);

// A fresh key pair from zmq_curve_keypair.
int proto_keypair_generate(proto_keypair *kp);
// Writes kp to a new file (with_secret: both keys, mode 0600; else the public key, mode 0644).
int proto_keypair_write(const char *path, const proto_keypair *kp, int with_secret);
// Reads a key pair file: exactly one public and one matching secret key, file mode without group
// or other access.
int proto_keypair_read(const char *path, proto_keypair *kp);
// Reads a public key file: exactly one public key and no secret.
int proto_public_key_read(const char *path, char public_key[PROTO_KEY_Z85_LEN + 1]);
// Reads an authorized-keys file: one or more public keys and no secret.
int proto_authorized_keys_read(const char *path, proto_key_list *out);

// `hybrid keygen PREFIX`: writes PREFIX.key (pair, 0600) and PREFIX.pub (public key); neither may
// exist. public_key (may be NULL) receives the new public key for printing.
int proto_keygen(const char *prefix, char public_key[PROTO_KEY_Z85_LEN + 1]);

#endif
