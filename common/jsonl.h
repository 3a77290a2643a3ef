// Reading JSONL (one JSON object per line) with errors that name file and line.
//
// Blank lines are skipped. A line that is not valid JSON, or not an object, is an error naming
// "<file>:<line>"; what a caller does next (stop, or skip and go on) is its documented choice.
#ifndef HY_JSONL_H
#define HY_JSONL_H

#include <jansson.h>
#include <stdio.h>

typedef struct {
    FILE *f;
    char *path;
    long line_no;  // of the line last returned
    char *buf;
    size_t cap;
} hy_jsonl_reader;

int hy_jsonl_open(hy_jsonl_reader *r, const char *path);
// 1 with *obj (caller json_decref's it), 0 at end of file, −1 on a bad line (message set; the
// reader stays usable, so a caller may skip the line and go on).
int hy_jsonl_next(hy_jsonl_reader *r, json_t **obj);
void hy_jsonl_close(hy_jsonl_reader *r);

// Reads every line of path in order, calling fn(obj, where, ctx) with where = "<path>:<line>";
// stops at the first bad line or nonzero fn (−1; fn sets the message). 0 at the end, with
// *n_lines = the lines read (0: the file held no JSON lines, which the caller judges).
int hy_jsonl_each(const char *path, int (*fn)(json_t *obj, const char *where, void *ctx), void *ctx,
                  long *n_lines);

#endif
