// Comma-separated lists (see text_list.h).
#include "text_list.h"

#include <stdio.h>
#include <string.h>

int hy_list_count(const char *list) {
    if (!list || !*list) return 0;
    int count = 1;
    for (const char *q = list; *q; q++) count += *q == ',';
    return count;
}

void hy_list_entry(const char *list, int k, char *out, size_t n) {
    const int count = hy_list_count(list);
    if (!count || !n) {
        if (n) *out = 0;
        return;
    }
    const char *p = list;
    for (k %= count; k > 0; k--) p = strchr(p, ',') + 1;
    const size_t len = strcspn(p, ",");
    snprintf(out, n, "%.*s", (int)(len < n ? len : n - 1), p);
}
