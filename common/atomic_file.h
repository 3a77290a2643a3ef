// Crash-safe writing of files and directories: a reader sees either the old version or the
// complete new one, never a half-written file.
//
// A file is written to "<path>.tmp-<pid>" in the same directory, flushed with fsync, then
// rename()d over the path (atomic on POSIX file systems), and the directory entry is synced. A
// directory (a checkpoint) is filled under "<dir>.tmp-<pid>" and renamed into place last; an
// existing directory at that name is first moved aside and deleted only after the new one is in
// place, and only when it holds nothing but files the caller declares replaceable, so a mistyped
// path never costs a user's files. 0 / −1 returns with hy_fail messages naming the path.
#ifndef HY_ATOMIC_FILE_H
#define HY_ATOMIC_FILE_H

#include <stdio.h>
#include <stddef.h>

typedef struct {
    FILE *f;
    char *path, *tmp;
    int failed;  // a write failed: commit refuses and removes the temporary file
} hy_atomic_file;

int hy_atomic_file_open(hy_atomic_file *a, const char *path);
// Appends n bytes; a failure is remembered and reported by commit (so callers can stream freely).
void hy_atomic_file_write(hy_atomic_file *a, const void *data, size_t n);
// fsync, close and rename into place; on any failure the temporary file is removed. Frees a.
int hy_atomic_file_commit(hy_atomic_file *a);
void hy_atomic_file_abort(hy_atomic_file *a);
// The whole content in one call.
int hy_atomic_write(const char *path, const void *data, size_t n);

// Creates the empty temporary directory "<dir>.tmp-<pid>" (its path into tmp).
int hy_atomic_dir_begin(const char *dir, char *tmp, size_t tmp_size);
// 0 when dir is absent, or is a directory holding only regular files named in replaceable
// (NULL-terminated; an entry may be a shell pattern, e.g. "shard-*.bin"); otherwise −1 saying what is in the way. Call before long work so it fails early.
int hy_atomic_dir_check_replaceable(const char *dir, const char *const *replaceable);
// fsyncs every file in tmp and tmp itself, then puts tmp in place of dir (see the design comment).
int hy_atomic_dir_commit(const char *tmp, const char *dir, const char *const *replaceable);
// Removes the temporary directory and the regular files in it.
void hy_atomic_dir_abort(const char *tmp);
// Copies a regular file (a plain, non-atomic copy: used inside a temporary directory).
int hy_file_copy(const char *from, const char *to);
// mkdir -p: creates dir and every missing folder above it (existing ones are fine). 0 / −1.
int hy_mkdir_p(const char *dir);
// The same for the folder that will hold `path` (its directory part; nothing when it has none).
int hy_mkdir_parent(const char *path);

#endif
