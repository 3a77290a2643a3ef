// The binary format of our checkpoint state files (optimizer.bin, trainer_state.bin): a magic, a
// version, named records, and a checksum.
//
//   magic (8 bytes) | version (u32) | 0 (u32)
//   record*:  name length (u16) | name | type (u8: 1 = u64 values, 2 = f32 values, 3 = bytes)
//             | count (u64) | payload (count·8, count·4 or count bytes)
//   trailer:  "END\0" | checksum (u64) of every byte before the trailer
// Numbers are in host byte order, which is little-endian on every platform this builds for.
//
// Records carry their names so a reader can say which field is missing, out of order, mistyped or
// cut short, and the reader walks records in the order the writer wrote them, comparing names:
// a file from another version or tool fails at the first field that differs, with that field
// named. The checksum (64-bit, 8 bytes at a time, so multi-GB optimizer states hash quickly)
// catches bit rot that leaves the structure intact. Writing goes through atomic_file (temp file +
// rename). Payloads may be written and read in pieces of any size (optimizer state moves to and
// from the GPU in chunks); the checksum does not depend on how a payload is cut.
#ifndef HY_STATE_FILE_H
#define HY_STATE_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/atomic_file.h"

enum { HY_REC_U64 = 1, HY_REC_F32 = 2, HY_REC_BYTES = 3 };

typedef struct {
    uint64_t state;
    unsigned char tail[8];
    int n_tail;
} hy_checksum;

typedef struct {
    hy_atomic_file f;
    hy_checksum sum;
} hy_state_writer;

typedef struct {
    FILE *f;
    const char *path;
    uint64_t size, offset;
    hy_checksum sum;
    char field[128];  // the record being read, for messages
    uint64_t count;   // its element count
    uint32_t version; // the file's format version
} hy_state_reader;

int hy_state_write_open(hy_state_writer *w, const char *path, const char magic[8], uint32_t version);
// A record header; then exactly count elements through hy_state_write_payload.
void hy_state_write_record(hy_state_writer *w, const char *name, int type, uint64_t count);
void hy_state_write_payload(hy_state_writer *w, const void *data, size_t bytes);
// Convenience: a whole u64 record, a whole byte-string record.
void hy_state_write_u64(hy_state_writer *w, const char *name, const uint64_t *values, uint64_t count);
void hy_state_write_bytes(hy_state_writer *w, const char *name, const void *data, uint64_t n);
// Trailer, fsync, rename into place.
int hy_state_write_close(hy_state_writer *w);

// Opens path and checks magic and version: versions 1 .. version are accepted (r->version says
// which), a newer one is refused, naming both.
int hy_state_read_open(hy_state_reader *r, const char *path, const char magic[8], uint32_t version);
// The next record must be called name, of this type; *count gets its element count. Errors name
// the file and the field (missing, other name, other type, truncated).
int hy_state_read_record(hy_state_reader *r, const char *name, int type, uint64_t *count);
int hy_state_read_payload(hy_state_reader *r, void *data, size_t bytes);
// A whole u64 record of exactly count values.
int hy_state_read_u64(hy_state_reader *r, const char *name, uint64_t *values, uint64_t count);
// A byte-string record of any length: *data (caller frees, NUL-terminated), *n.
int hy_state_read_bytes(hy_state_reader *r, const char *name, char **data, uint64_t *n);
// Checks the trailer and checksum and that nothing follows; closes. hy_state_read_abort only closes.
int hy_state_read_close(hy_state_reader *r);
void hy_state_read_abort(hy_state_reader *r);

#endif
