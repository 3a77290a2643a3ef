// Weight images: a model's fp32 parameters as one byte string, for the ZeroMQ weight transfer
// (CPU mode and any worker without NCCL; docs/proto.md, "Weight transfer").
//
// Layout (little-endian):
//   "HYWB" · u32 format (1) · u64 version · u64 checksum · u32 n_tensors · u64 total_floats
//   n_tensors × { u16 name_len · name bytes · u8 dtype (0 = f32) · u8 ndim · ndim × i64 shape ·
//                 u64 offset (floats, into the data) · u64 numel }
//   total_floats × f32 data  (the learner's arena order, alignment gaps included and zero)
// The receiver checks every entry against its own parameter table — same names in the same order,
// same shapes, offsets and dtype — so weights of another model (or another config) are refused by
// name instead of being copied into the wrong place, and then checks the data's checksum, so a
// corrupted or truncated transfer is refused before a single weight changes.
//
// Transfer: the learner binds a ROUTER for weights; a worker that got a weight notice (zmq,
// location = that endpoint) sends the raw 12-byte request "HYWQ" · u64 version and receives the
// image of the newest version in one message (a version the learner no longer holds gets the newest).
#ifndef HY_PROTO_WEIGHTS_H
#define HY_PROTO_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

#define HY_WEIGHTS_MAGIC "HYWB"
#define HY_WEIGHTS_REQUEST_MAGIC "HYWQ"
#define HY_WEIGHTS_REQUEST_BYTES 12

// The checksum of n floats (FNV-1a over the bytes, 64-bit): what the notice and the image carry.
uint64_t hy_weights_checksum(const float *data, size_t n);

// A hash of m's parameter table — every tensor's name, shape, offset and dtype, in order — so two
// processes can tell before an NCCL broadcast (which carries bare floats) that they lay out the
// same model the same way.
uint64_t hy_weights_table_hash(const hy_model *m);

// The image of host parameters arena (m->table.total floats, e.g. m->arena after
// hy_model_sync_to_host) at version. *out malloc'ed, *size its bytes.
void hy_weights_image(const hy_model *m, const float *arena, uint64_t version, uint8_t **out, size_t *size);

// Checks image (size bytes) against m's table and its checksum; on success *data points at its
// floats (inside image, m->table.total of them; may be unaligned: copy with memcpy) and *version,
// *checksum are set. −1 with a message naming the entry or the field otherwise.
int hy_weights_check(const hy_model *m, const uint8_t *image, size_t size, const uint8_t **data, uint64_t *version,
                     uint64_t *checksum);

// Checks image and copies it into m's parameters on its backend (fp32 master and matmul view).
// Nothing changes on failure. 0 / −1.
int hy_weights_load(hy_model *m, const uint8_t *image, size_t size, uint64_t *version, uint64_t *checksum);

#endif
