// Recipes: flat YAML mappings of option name → scalar value, read with libcyaml.
//
// The caller declares the keys (its option table); the loader builds a libcyaml schema from them at
// run time (every value read as a string, every key optional), so the file is checked against the
// same table that drives --help and validation: an unknown key, a non-scalar value, a repeated key
// or a YAML syntax error is refused with a message naming the file, the key and the problem (and
// the line where libcyaml reports one). Typing and ranges are the table's job, not the loader's.
// Writing goes the other way: hy_yaml_quote makes any string a YAML double-quoted scalar, so a
// resolved configuration written as "key: value" lines loads back unchanged.
#ifndef HY_YAML_RECIPE_H
#define HY_YAML_RECIPE_H

// values (n) receives, for each names[i], the value's text (hy_strdup'd) or NULL when absent.
// An empty file is an empty recipe. Returns 0 / −1 (values all NULL on failure).
int hy_yaml_recipe_load(const char *path, const char *const *names, int n, char **values);
void hy_yaml_recipe_free(char **values, int n);
// Line (1-based) where "key:" starts a line of the file (after indentation), 0 when not found: to
// point a message about a key's value at its line.
int hy_yaml_key_line(const char *path, const char *key);
// "text" as a YAML double-quoted scalar (escaping ", \ and control characters); caller frees.
char *hy_yaml_quote(const char *text);

#endif
