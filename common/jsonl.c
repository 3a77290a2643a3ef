// JSONL line reader (see jsonl.h). Uses getline so lines of any length work.
#include "jsonl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hy_error.h"

int hy_jsonl_open(hy_jsonl_reader *r, const char *path) {
    memset(r, 0, sizeof *r);
    r->f = fopen(path, "rb");
    if (!r->f) return hy_fail("%s: cannot open: %s", path, strerror(errno));
    r->path = hy_strdup(path);
    return 0;
}

static int is_blank(const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n') return 0;
    return 1;
}

int hy_jsonl_next(hy_jsonl_reader *r, json_t **obj) {
    *obj = NULL;
    for (;;) {
        ssize_t n = getline(&r->buf, &r->cap, r->f);
        if (n < 0) {
            if (ferror(r->f)) return hy_fail("%s: read error after line %ld", r->path, r->line_no);
            return 0;
        }
        r->line_no++;
        if (is_blank(r->buf)) continue;
        if (strlen(r->buf) != (size_t)n)
            return hy_fail("%s:%ld: line contains a NUL byte; JSONL lines must be UTF-8 JSON text", r->path,
                           r->line_no);
        json_error_t err;
        json_t *v = json_loadb(r->buf, (size_t)n, JSON_DECODE_ANY, &err);
        if (!v) return hy_fail("%s:%ld: invalid JSON at column %d: %s", r->path, r->line_no, err.column, err.text);
        if (!json_is_object(v)) {
            json_decref(v);
            return hy_fail("%s:%ld: expected a JSON object", r->path, r->line_no);
        }
        *obj = v;
        return 1;
    }
}

void hy_jsonl_close(hy_jsonl_reader *r) {
    if (r->f) fclose(r->f);
    free(r->path);
    free(r->buf);
    memset(r, 0, sizeof *r);
}

int hy_jsonl_each(const char *path, int (*fn)(json_t *obj, const char *where, void *ctx), void *ctx,
                  long *n_lines) {
    *n_lines = 0;
    hy_jsonl_reader r;
    if (hy_jsonl_open(&r, path)) return -1;
    int rc = 0;
    for (;;) {
        json_t *obj;
        const int got = hy_jsonl_next(&r, &obj);
        if (got <= 0) {
            rc = got;
            break;
        }
        char where[4200];
        snprintf(where, sizeof where, "%s:%ld", path, r.line_no);
        rc = fn(obj, where, ctx) ? -1 : 0;
        json_decref(obj);
        if (rc) break;
        ++*n_lines;
    }
    hy_jsonl_close(&r);
    return rc;
}
