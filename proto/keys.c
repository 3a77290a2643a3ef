// CURVE key files (see keys.h; format in docs/proto.md, "Key files").
//
// Parsing is line by line over a bounded buffer, so a truncated or binary file is an error with a
// line number rather than a crash; it is also a fuzz target (tests/fuzz/fuzz_proto_keys.c). Key
// text is validated by decoding it with zmq_z85_decode, the same decoder ZeroMQ applies when the
// key is set on a socket, so a key we accept is a key ZeroMQ accepts.
#include "proto/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "common/hy_error.h"

#define KEY_CAP (PROTO_KEY_Z85_LEN + 1)

void proto_key_list_free(proto_key_list *l) {
    free(l->keys);
    l->keys = NULL;
    l->n = 0;
}

// 0 when s[0..n) is 40 Z85 characters that decode to 32 bytes.
static int z85_key_valid(const char *s, size_t n) {
    if (n != PROTO_KEY_Z85_LEN) return -1;
    char z[KEY_CAP];
    memcpy(z, s, n);
    z[n] = '\0';
    uint8_t bin[32];
    return zmq_z85_decode(bin, z) ? 0 : -1;
}

static int starts_with(const char *line, size_t n, const char *word, size_t *rest) {
    const size_t w = strlen(word);
    if (n <= w || memcmp(line, word, w) != 0 || (line[w] != ' ' && line[w] != '\t')) return 0;
    size_t i = w;
    while (i < n && (line[i] == ' ' || line[i] == '\t')) i++;
    *rest = i;
    return 1;
}

int proto_keys_parse(const char *text, size_t len, const char *name, proto_key_list *publics,
                     char secret_key[KEY_CAP]) {
    publics->keys = NULL;
    publics->n = 0;
    secret_key[0] = '\0';
    if (len > PROTO_KEYS_MAX_FILE_BYTES)
        return hy_fail("%s: %zu bytes is too large for a key file (limit %d)", name, len, PROTO_KEYS_MAX_FILE_BYTES);
    if (memchr(text, '\0', len)) return hy_fail("%s: contains a NUL byte (not a key file)", name);
    int cap = 0, line_no = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl != NULL);
        line_no++;
        while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t')) n--;
        size_t rest;
        if (line_no == 1) {
            if (starts_with(line, n, PROTO_KEYS_MAGIC, &rest)) {
                const size_t vn = n - rest;
                if (vn == 1 && line[rest] == '0' + PROTO_KEYS_VERSION) continue;
                proto_key_list_free(publics);
                return hy_fail("%s: key file version \"%.*s\" is not supported (this build reads %d)", name,
                               (int)(vn > 16 ? 16 : vn), line + rest, PROTO_KEYS_VERSION);
            }
            return hy_fail("%s: not a hybrid key file (the first line must be \"%s %d\")", name, PROTO_KEYS_MAGIC,
                           PROTO_KEYS_VERSION);
        }
        if (n == 0 || line[0] == '#') continue;
        const int is_public = starts_with(line, n, "public-key", &rest);
        const int is_secret = !is_public && starts_with(line, n, "secret-key", &rest);
        if (!is_public && !is_secret) {
            proto_key_list_free(publics);
            return hy_fail("%s:%d: expected \"public-key KEY\" or \"secret-key KEY\"", name, line_no);
        }
        if (z85_key_valid(line + rest, n - rest) != 0) {
            proto_key_list_free(publics);
            return hy_fail("%s:%d: the key is not 40 Z85 characters", name, line_no);
        }
        if (is_secret) {
            if (secret_key[0]) {
                proto_key_list_free(publics);
                secret_key[0] = '\0';
                return hy_fail("%s:%d: a second secret-key line", name, line_no);
            }
            memcpy(secret_key, line + rest, PROTO_KEY_Z85_LEN);
            secret_key[PROTO_KEY_Z85_LEN] = '\0';
            continue;
        }
        if (publics->n == cap) {
            cap = cap ? 2 * cap : 4;
            publics->keys = hy_realloc(publics->keys, (size_t)cap * sizeof *publics->keys);
        }
        memcpy(publics->keys[publics->n], line + rest, PROTO_KEY_Z85_LEN);
        publics->keys[publics->n][PROTO_KEY_Z85_LEN] = '\0';
        publics->n++;
    }
    if (line_no == 0)
        return hy_fail("%s: empty (the first line must be \"%s %d\")", name, PROTO_KEYS_MAGIC, PROTO_KEYS_VERSION);
    return 0;
}

// Reads a whole key file; *mode receives its permission bits.
static int read_file(const char *path, char **text, size_t *len, unsigned *mode) {
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return hy_fail("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return hy_fail("%s: not a regular file", path);
    }
    *mode = (unsigned)(st.st_mode & 0777);
    if (st.st_size > PROTO_KEYS_MAX_FILE_BYTES) {
        close(fd);
        return hy_fail("%s: %lld bytes is too large for a key file", path, (long long)st.st_size);
    }
    char *buf = hy_malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        const ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    *text = buf;
    *len = got;
    return 0;
}

int proto_keypair_read(const char *path, proto_keypair *kp) {
    memset(kp, 0, sizeof *kp);
    char *text;
    size_t len;
    unsigned mode;
    if (read_file(path, &text, &len, &mode)) return -1;
    proto_key_list pub;
    int rc = proto_keys_parse(text, len, path, &pub, kp->secret_key);
    memset(text, 0, len);
    free(text);
    if (rc) return -1;
    if (kp->secret_key[0] && (mode & 077)) {
        rc = hy_fail("%s: holds a secret key but group or others may access it (mode %03o; chmod 600 it)", path, mode);
    } else if (pub.n != 1 || !kp->secret_key[0]) {
        rc = hy_fail("%s: a key pair file needs one public-key and one secret-key line (has %d and %d)", path, pub.n,
                     kp->secret_key[0] != 0);
    } else {
        memcpy(kp->public_key, pub.keys[0], KEY_CAP);
        char derived[KEY_CAP];
        if (zmq_curve_public(derived, kp->secret_key) != 0 || strcmp(derived, kp->public_key) != 0)
            rc = hy_fail("%s: the public key does not belong to the secret key", path);
    }
    proto_key_list_free(&pub);
    if (rc) memset(kp, 0, sizeof *kp);
    return rc;
}

// Reads a file that must hold public keys only (at least one; exactly one when `one`).
static int read_publics(const char *path, int one, proto_key_list *out) {
    char *text;
    size_t len;
    unsigned mode;
    if (read_file(path, &text, &len, &mode)) return -1;
    char secret[KEY_CAP];
    int rc = proto_keys_parse(text, len, path, out, secret);
    free(text);
    if (rc) return -1;
    if (secret[0]) rc = hy_fail("%s: holds a secret key; give the public key file (.pub) instead", path);
    else if (out->n == 0) rc = hy_fail("%s: no public-key line", path);
    else if (one && out->n != 1) rc = hy_fail("%s: %d public keys where one was expected", path, out->n);
    memset(secret, 0, sizeof secret);
    if (rc) proto_key_list_free(out);
    return rc;
}

int proto_public_key_read(const char *path, char public_key[KEY_CAP]) {
    proto_key_list l;
    if (read_publics(path, 1, &l)) return -1;
    memcpy(public_key, l.keys[0], KEY_CAP);
    proto_key_list_free(&l);
    return 0;
}

int proto_authorized_keys_read(const char *path, proto_key_list *out) { return read_publics(path, 0, out); }

int proto_keypair_generate(proto_keypair *kp) {
    memset(kp, 0, sizeof *kp);
    if (zmq_curve_keypair(kp->public_key, kp->secret_key) != 0)
        return hy_fail("zmq_curve_keypair: %s (libzmq built without CURVE?)", zmq_strerror(zmq_errno()));
    return 0;
}

int proto_keypair_write(const char *path, const proto_keypair *kp, int with_secret) {
    if (z85_key_valid(kp->public_key, strlen(kp->public_key)) ||
        (with_secret && z85_key_valid(kp->secret_key, strlen(kp->secret_key))))
        return hy_fail("%s: refusing to write an invalid key", path);
    const int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, with_secret ? 0600 : 0644);
    if (fd < 0)
        return hy_fail("%s: cannot create: %s%s", path, strerror(errno),
                       errno == EEXIST ? " (refusing to overwrite a key file)" : "");
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(path);
        return hy_fail("%s: fdopen: %s", path, strerror(errno));
    }
    fprintf(f, "%s %d\n", PROTO_KEYS_MAGIC, PROTO_KEYS_VERSION);
    fprintf(f, "# ZeroMQ CURVE %s (docs/proto.md)\n", with_secret ? "key pair: keep secret" : "public key");
    fprintf(f, "public-key %s\n", kp->public_key);
    if (with_secret) fprintf(f, "secret-key %s\n", kp->secret_key);
    const int bad = ferror(f) | (fflush(f) != 0) | (fsync(fileno(f)) != 0);
    if ((fclose(f) != 0) | bad) {
        unlink(path);
        return hy_fail("%s: write failed: %s", path, strerror(errno));
    }
    return 0;
}

int proto_keygen(const char *prefix, char public_key[KEY_CAP]) {
    proto_keypair kp;
    if (proto_keypair_generate(&kp)) return -1;
    const size_t n = strlen(prefix) + 5;
    char *key_path = hy_malloc(n), *pub_path = hy_malloc(n);
    snprintf(key_path, n, "%s.key", prefix);
    snprintf(pub_path, n, "%s.pub", prefix);
    int rc = proto_keypair_write(key_path, &kp, 1);
    if (rc == 0 && (rc = proto_keypair_write(pub_path, &kp, 0)) != 0) unlink(key_path);
    if (rc == 0 && public_key) memcpy(public_key, kp.public_key, KEY_CAP);
    memset(&kp, 0, sizeof kp);
    free(key_path);
    free(pub_path);
    return rc;
}
