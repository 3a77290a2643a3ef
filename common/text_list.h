// Comma-separated lists on command lines and in the environment ("0,1,3" GPU lists).
#ifndef HY_TEXT_LIST_H
#define HY_TEXT_LIST_H

#include <stddef.h>

// Entries in list (1 + the number of commas; 0 for NULL or "").
int hy_list_count(const char *list);
// Entry k mod count of list into out (n bytes, cut to fit); "" when the list is empty.
void hy_list_entry(const char *list, int k, char *out, size_t n);

#endif
