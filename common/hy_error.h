// Error reporting for host code that must survive bad input.
//
// Functions that can fail on user input (files, configs, JSONL, tokens) return 0 on success and -1 on
// failure, after recording one human-readable message with hy_fail(). The message names the file,
// the field and the problem; callers higher up may prefix context with hy_fail_prefix(). The CLI
// prints hy_last_error() and exits non-zero. The buffer is thread-local, so worker threads do not
// overwrite each other's messages.
#ifndef HY_ERROR_H
#define HY_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define HY_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define HY_PRINTF(a, b)
#endif

// Records a message (printf-style) and returns -1, so callers can write `return hy_fail(...)`.
int hy_fail(const char *fmt, ...) HY_PRINTF(1, 2);
// Prepends "<prefix>: " to the current message; returns -1.
int hy_fail_prefix(const char *fmt, ...) HY_PRINTF(1, 2);
// The last recorded message ("" when none).
const char *hy_last_error(void);
void hy_error_clear(void);

// Allocation that aborts on failure: running out of host memory is not a recoverable input error.
void *hy_malloc(size_t n);
void *hy_calloc(size_t count, size_t size);
void *hy_realloc(void *p, size_t n);
char *hy_strdup(const char *s);

#ifdef __cplusplus
}
#endif

#endif
