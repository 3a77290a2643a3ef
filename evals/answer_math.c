// Final-answer extraction, normalisation and comparison (see answer_math.h for the rules).
//
// Everything works on byte strings: the only non-ASCII input given meaning is U+2212 (minus sign)
// and U+00B0 (degree sign); other UTF-8 passes through untouched, so string answers in any script
// compare byte for byte after whitespace removal.
#include "evals/answer_math.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/hy_error.h"
#include "evals/strbuf.h"

static const char MINUS_SIGN[] = "\xE2\x88\x92";  // U+2212
static const char DEGREE_SIGN[] = "\xC2\xB0";     // U+00B0

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

// Copy of s[0..n) with surrounding whitespace removed.
static char *dup_trimmed(const char *s, size_t n) {
    while (n && is_space(*s)) s++, n--;
    while (n && is_space(s[n - 1])) n--;
    char *d = hy_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!is_space(s[i])) return 0;
    return 1;
}

// Index of the brace closing the one at s[open], or -1; \{ and \} are literal braces.
static long match_brace(const char *s, size_t open) {
    int depth = 0;
    for (size_t i = open; s[i]; i++) {
        if (s[i] == '\\' && s[i + 1]) {
            i++;
            continue;
        }
        if (s[i] == '{') depth++;
        if (s[i] == '}' && --depth == 0) return (long)i;
    }
    return -1;
}

// ---- extraction ---------------------------------------------------------------------------------

// A candidate answer: where its marker is (orders candidates; NULL = none) and its text.
typedef struct {
    const char *at;
    const char *start;
    size_t len;
} span;

static void keep_later(span *best, const char *at, const char *start, size_t len) {
    if (blank(start, len)) return;
    if (!best->at || at > best->at) *best = (span){at, start, len};
}

static span find_boxed(const char *text) {
    static const char *const cmds[] = {"\\boxed", "\\fbox"};
    span best = {0};
    for (int c = 0; c < 2; c++) {
        const size_t cl = strlen(cmds[c]);
        for (const char *p = strstr(text, cmds[c]); p; p = strstr(p + 1, cmds[c])) {
            const char *q = p + cl;
            if (isalpha((unsigned char)*q)) continue;  // \boxedfoo is another command
            while (*q == ' ') q++;
            if (*q == '{') {
                const long close = match_brace(text, (size_t)(q - text));
                if (close >= 0) keep_later(&best, p, q + 1, (size_t)(text + close - (q + 1)));
            } else {  // "\boxed 5": the argument is the next word
                size_t len = 0;
                while (q[len] && !is_space(q[len]) && q[len] != '$') len++;
                keep_later(&best, p, q, len);
            }
        }
    }
    return best;
}

static span find_tag(const char *text) {
    span best = {0};
    for (const char *p = strstr(text, "<answer>"); p; p = strstr(p + 1, "<answer>")) {
        const char *e = strstr(p + 8, "</answer>");
        if (e) keep_later(&best, p, p + 8, (size_t)(e - (p + 8)));
    }
    return best;
}

static span find_hashes(const char *text) {
    span best = {0};
    for (const char *p = strstr(text, "####"); p;) {
        const char *s = p;
        while (*s == '#') s++;  // "#####" is one marker, not two
        keep_later(&best, p, s, strcspn(s, "\n"));
        p = strstr(s, "####");
    }
    return best;
}

// "answer is x" / "answer: x", to the end of the sentence (a period followed by a space or the
// end, so "3.5" keeps its point) or of the line.
static span find_phrase(const char *text) {
    static const char *const phrases[] = {"answer is", "answer:"};
    span best = {0};
    for (int k = 0; k < 2; k++) {
        const size_t pl = strlen(phrases[k]);
        for (const char *p = text; *p; p++) {
            if (strncasecmp(p, phrases[k], pl)) continue;
            const char *s = p + pl;
            while (*s == ' ' || *s == '\t' || *s == ':') s++;
            size_t len = 0;
            while (s[len] && s[len] != '\n' && !(s[len] == '.' && (!s[len + 1] || is_space(s[len + 1])))) len++;
            keep_later(&best, p, s, len);
        }
    }
    return best;
}

// Length of an unsigned decimal at p: digits (with valid thousands commas: 1-3 digits, then
// groups of exactly 3) and an optional fractional part; 0 when p holds none.
static size_t scan_decimal(const char *p) {
    size_t i = 0;
    while (is_digit(p[i])) i++;
    const size_t lead = i;
    if (lead >= 1 && lead <= 3)
        while (p[i] == ',' && is_digit(p[i + 1]) && is_digit(p[i + 2]) && is_digit(p[i + 3]) && !is_digit(p[i + 4]))
            i += 4;
    if (p[i] == '.' && is_digit(p[i + 1])) {
        i++;
        while (is_digit(p[i])) i++;
    }
    return i;
}

// A minus sign at s[-k..0) makes the number negative when nothing word-like precedes it, so
// "5-3" yields 3 rather than −3.
static size_t sign_before(const char *text, const char *p) {
    size_t k = 0;
    if (p > text && p[-1] == '-') k = 1;
    else if (p - text >= 3 && !memcmp(p - 3, MINUS_SIGN, 3)) k = 3;
    if (!k) return 0;
    const char *q = p - k;
    if (q > text && (isalnum((unsigned char)q[-1]) || q[-1] == ')' || q[-1] == '}')) return 0;
    return k;
}

static span find_last_number(const char *text) {
    span best = {0};
    for (const char *p = text; *p;) {
        const int starts = is_digit(*p) || (*p == '.' && is_digit(p[1]));
        if (!starts || (p > text && (is_digit(p[-1]) || isalpha((unsigned char)p[-1])))) {
            p++;
            continue;
        }
        size_t n = scan_decimal(p);
        if (p[n] == '/' && is_digit(p[n + 1]) && !memchr(p, '.', n)) {  // a fraction a/b
            n++;
            while (is_digit(p[n])) n++;
        }
        const size_t k = sign_before(text, p);
        keep_later(&best, p, p - k, n + k);
        p += n;
    }
    return best;
}

static int strip_char(char c) { return strchr("\"'`*()[]{}.,;:!?", c) != NULL; }

static span find_last_word(const char *text) {
    span best = {0};
    const char *p = text + strlen(text);
    while (p > text) {
        while (p > text && is_space(p[-1])) p--;
        const char *e = p;
        while (p > text && !is_space(p[-1])) p--;
        const char *s = p;
        while (s < e && strip_char(*s)) s++;
        while (e > s && strip_char(e[-1])) e--;
        if (e > s) return (span){s, s, (size_t)(e - s)};
    }
    return best;
}

static span find_last_line(const char *text) {
    span best = {0};
    for (const char *p = text; *p;) {
        const size_t n = strcspn(p, "\n");
        keep_later(&best, p, p, n);
        p += n;
        if (*p) p++;
    }
    return best;
}

char *hy_answer_extract(const char *text, hy_answer_fallback fallback, hy_answer_source *src) {
    span s = find_boxed(text);
    hy_answer_source from = HY_ANSWER_BOXED;
    if (!s.at) s = find_tag(text), from = HY_ANSWER_TAG;
    if (!s.at) s = find_hashes(text), from = HY_ANSWER_HASHES;
    if (!s.at) s = find_phrase(text), from = HY_ANSWER_PHRASE;
    if (!s.at && fallback == HY_FALLBACK_NUMBER) s = find_last_number(text), from = HY_ANSWER_LAST_NUMBER;
    if (!s.at && fallback == HY_FALLBACK_WORD) s = find_last_word(text), from = HY_ANSWER_LAST_WORD;
    if (!s.at && fallback == HY_FALLBACK_LINE) s = find_last_line(text), from = HY_ANSWER_LAST_LINE;
    if (src) *src = s.at ? from : HY_ANSWER_NONE;
    return s.at ? dup_trimmed(s.start, s.len) : NULL;
}

int hy_answer_has_marker(const char *text) {
    return find_boxed(text).at || find_tag(text).at || find_hashes(text).at || find_phrase(text).at;
}

const char *hy_answer_source_name(hy_answer_source src) {
    switch (src) {
    case HY_ANSWER_BOXED: return "\\boxed";
    case HY_ANSWER_TAG: return "<answer>";
    case HY_ANSWER_HASHES: return "####";
    case HY_ANSWER_PHRASE: return "'answer is'";
    case HY_ANSWER_LAST_NUMBER: return "last number";
    case HY_ANSWER_LAST_WORD: return "last word";
    case HY_ANSWER_LAST_LINE: return "last line";
    case HY_ANSWER_NONE: break;
    }
    return "none";
}

// ---- normalisation ------------------------------------------------------------------------------

// *s with every occurrence of from replaced by to (*s is replaced).
static void replace_all(char **s, const char *from, const char *to) {
    if (!strstr(*s, from)) return;
    hy_strbuf b;
    hy_strbuf_init(&b);
    const size_t fl = strlen(from);
    const char *p = *s;
    for (const char *q; (q = strstr(p, from)); p = q + fl) {
        hy_strbuf_addn(&b, p, (size_t)(q - p));
        hy_strbuf_add(&b, to);
    }
    hy_strbuf_add(&b, p);
    free(*s);
    *s = hy_strbuf_take(&b);
}

// \cmd{X} → X for every occurrence; a longer command sharing the prefix (\textit for \text) and
// an unbalanced one are left alone.
static void unwrap_command(char **s, const char *cmd) {
    const size_t cl = strlen(cmd);
    size_t from = 0;
    for (char *p; (p = strstr(*s + from, cmd));) {
        const size_t at = (size_t)(p - *s), open = at + cl;
        const long close = (*s)[open] == '{' ? match_brace(*s, open) : -1;
        if (close < 0) {
            from = at + 1;
            continue;
        }
        // remove the closing brace first so the offsets before it stay valid
        memmove(*s + close, *s + close + 1, strlen(*s + close + 1) + 1);
        memmove(p, *s + open + 1, strlen(*s + open + 1) + 1);
        from = at;
    }
}

static void strip_wrapping(char **s) {
    static const char *const pairs[][2] = {{"$$", "$$"}, {"$", "$"}, {"\\(", "\\)"}, {"\\[", "\\]"}};
    for (int again = 1; again;) {
        again = 0;
        char *t = dup_trimmed(*s, strlen(*s));
        free(*s);
        *s = t;
        const size_t n = strlen(t);
        for (int k = 0; k < 4; k++) {
            const size_t a = strlen(pairs[k][0]), b = strlen(pairs[k][1]);
            if (n >= a + b && !strncmp(t, pairs[k][0], a) && !strcmp(t + n - b, pairs[k][1])) {
                memmove(t, t + a, n - a - b);
                t[n - a - b] = '\0';
                again = 1;
                break;
            }
        }
    }
}

// "x = 5" → "5": a plain variable name, one '=', and something after it.
static void strip_assignment(char **s) {
    const char *p = *s;
    while (is_space(*p)) p++;
    if (!isalpha((unsigned char)*p)) return;
    while (isalnum((unsigned char)*p) || *p == '_') p++;
    while (is_space(*p)) p++;
    if (*p != '=' || strchr(p + 1, '=')) return;
    p++;
    if (blank(p, strlen(p))) return;
    char *t = dup_trimmed(p, strlen(p));
    free(*s);
    *s = t;
}

static char *digits_stripped(const char *d, size_t n) {
    while (n > 1 && *d == '0') d++, n--;
    char *r = hy_malloc(n + 1);
    memcpy(r, d, n);
    r[n] = '\0';
    return r;
}

static uint64_t gcd_u64(uint64_t a, uint64_t b) {
    while (b) {
        const uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

// A number in canonical text with its value.
typedef struct {
    char *text;
    double value;
    int is_integer;
} number;

static void number_set(number *out, int neg, const char *body, int is_integer) {
    const int zero = strspn(body, "0./") == strlen(body) && !strchr(body, '/');
    hy_strbuf b;
    hy_strbuf_init(&b);
    hy_strbuf_addf(&b, "%s%s", neg && !zero ? "-" : "", body);
    out->text = hy_strbuf_take(&b);
    out->is_integer = is_integer;
    if (strchr(body, '/')) {
        const char *slash = strchr(body, '/');
        out->value = strtod(body, NULL) / strtod(slash + 1, NULL);
        if (neg) out->value = -out->value;
    } else {
        out->value = strtod(out->text, NULL);
    }
}

// num/den (digit strings) reduced; 0 when den is zero.
static int make_fraction(number *out, int neg, const char *num, size_t nn, const char *den, size_t dn) {
    char *a = digits_stripped(num, nn), *b = digits_stripped(den, dn);
    int ok = strcmp(b, "0") != 0;
    if (ok) {
        hy_strbuf body;
        hy_strbuf_init(&body);
        if (strlen(a) <= 18 && strlen(b) <= 18) {  // fits u64: reduce exactly
            uint64_t x = strtoull(a, NULL, 10), y = strtoull(b, NULL, 10);
            const uint64_t g = x ? gcd_u64(x, y) : y;
            x /= g;
            y /= g;
            if (y == 1) hy_strbuf_addf(&body, "%llu", (unsigned long long)x);
            else hy_strbuf_addf(&body, "%llu/%llu", (unsigned long long)x, (unsigned long long)y);
        } else {
            hy_strbuf_addf(&body, "%s/%s", a, b);
        }
        number_set(out, neg, body.s, !strchr(body.s, '/'));
        hy_strbuf_free(&body);
    }
    free(a);
    free(b);
    return ok;
}

// Integer text after an optional sign at *p (advanced); length of the digits or 0.
static size_t scan_int(const char **p, int *neg) {
    while (is_space(**p)) (*p)++;
    if (**p == '-' || **p == '+') {
        *neg ^= **p == '-';
        (*p)++;
    }
    size_t n = 0;
    while (is_digit((*p)[n])) n++;
    return n;
}

// \frac{A}{B} or \frac AB at p (after the command); 1 with *out when it is all of the string.
static int parse_frac(const char *p, int neg, number *out) {
    const char *arg[2];
    size_t len[2];
    char buf[2][64];
    for (int k = 0; k < 2; k++) {
        while (is_space(*p)) p++;
        if (*p == '{') {
            const char *e = strchr(p, '}');
            if (!e || (size_t)(e - p - 1) >= sizeof buf[k]) return 0;
            memcpy(buf[k], p + 1, (size_t)(e - p - 1));
            buf[k][e - p - 1] = '\0';
            p = e + 1;
        } else if (is_digit(*p)) {
            buf[k][0] = *p++;
            buf[k][1] = '\0';
        } else {
            return 0;
        }
        const char *q = buf[k];
        len[k] = scan_int(&q, &neg);
        arg[k] = q;
        const char *rest = q + len[k];
        if (!len[k] || !blank(rest, strlen(rest))) return 0;
    }
    while (is_space(*p)) p++;
    return !*p && make_fraction(out, neg, arg[0], len[0], arg[1], len[1]);
}

// The whole string as a number (decimal, a/b or \frac); with allow_units, a number followed by
// words ("18 apples") counts too.
static int parse_number(const char *s, int allow_units, number *out) {
    int neg = 0;
    const char *p = s;
    while (is_space(*p)) p++;
    if (*p == '-' || *p == '+') {
        neg = *p == '-';
        p++;
        while (is_space(*p)) p++;
    }
    if (!strncmp(p, "\\frac", 5)) return parse_frac(p + 5, neg, out);
    const size_t n = scan_decimal(p);
    if (!n) return 0;
    const char *e = p + n;
    const char *q = e;
    while (is_space(*q)) q++;
    if (*q == '/' && !memchr(p, '.', n) && !memchr(p, ',', n)) {
        const char *d = q + 1;
        int dneg = 0;
        const size_t dn = scan_int(&d, &dneg);
        const char *rest = d + dn;
        if (!dn || dneg || !blank(rest, strlen(rest))) return 0;
        return make_fraction(out, neg, p, n, d, dn);
    }
    if (*q) {
        if (!allow_units || q == e) return 0;  // the words must be separated from the number
        for (const char *r = q; *r; r++)
            if (!isalpha((unsigned char)*r) && !is_space(*r) && *r != '.') return 0;
    }
    // integer part without commas and leading zeros, fraction without trailing zeros
    hy_strbuf ip, body;
    hy_strbuf_init(&ip);
    hy_strbuf_init(&body);
    const char *dot = memchr(p, '.', n);
    const char *iend = dot ? dot : e;
    for (const char *r = p; r < iend; r++)
        if (*r != ',') hy_strbuf_addn(&ip, r, 1);
    char *idig = digits_stripped(ip.len ? ip.s : "0", ip.len ? ip.len : 1);
    size_t fl = dot ? (size_t)(e - dot - 1) : 0;
    while (fl && dot[fl] == '0') fl--;
    hy_strbuf_add(&body, idig);
    if (fl) {
        hy_strbuf_add(&body, ".");
        hy_strbuf_addn(&body, dot + 1, fl);
    }
    number_set(out, neg, body.s, fl == 0);
    free(idig);
    hy_strbuf_free(&ip);
    hy_strbuf_free(&body);
    return 1;
}

// Normalised text plus, when it is a number, its value.
typedef struct {
    char *text;
    int is_number, is_integer;
    double value;
} normal;

static void normalize(const char *answer, normal *out) {
    memset(out, 0, sizeof *out);
    char *s = hy_strdup(answer);
    strip_wrapping(&s);
    static const char *const drops[] = {"\\left", "\\right", "\\!", "\\,", "\\;", "\\:", "\\displaystyle",
                                        "^{\\circ}", "^\\circ", DEGREE_SIGN, "\\%", "%", "\\$", "$"};
    for (size_t k = 0; k < sizeof drops / sizeof *drops; k++) replace_all(&s, drops[k], "");
    replace_all(&s, MINUS_SIGN, "-");
    replace_all(&s, "\\dfrac", "\\frac");
    replace_all(&s, "\\tfrac", "\\frac");
    static const char *const wrappers[] = {"\\textbf", "\\textrm", "\\text", "\\mathrm", "\\mathbf", "\\mbox"};
    for (size_t k = 0; k < sizeof wrappers / sizeof *wrappers; k++) unwrap_command(&s, wrappers[k]);
    strip_assignment(&s);
    char *t = dup_trimmed(s, strlen(s));
    free(s);
    s = t;
    const size_t n = strlen(s);
    if (n > 1 && s[n - 1] == '.' && s[n - 2] != '.') s[n - 1] = '\0';  // sentence-final period

    number num;
    if (parse_number(s, 1, &num)) {
        free(s);
        out->text = num.text;
        out->is_number = 1;
        out->is_integer = num.is_integer;
        out->value = num.value;
        return;
    }
    size_t w = 0;  // not a number: LaTeX ignores whitespace, so does the comparison
    for (size_t r = 0; s[r]; r++)
        if (!is_space(s[r])) s[w++] = s[r];
    s[w] = '\0';
    out->text = s;
}

char *hy_answer_normalize(const char *answer) {
    normal n;
    normalize(answer, &n);
    return n.text;
}

int hy_answer_number(const char *normalized, double *value, int *is_integer) {
    number num;
    if (!parse_number(normalized, 0, &num)) return 0;
    *value = num.value;
    *is_integer = num.is_integer;
    free(num.text);
    return 1;
}

int hy_answer_equal(const char *a, const char *b, double rel_tol) {
    normal x, y;
    normalize(a, &x);
    normalize(b, &y);
    int eq;
    if (!strcmp(x.text, y.text)) eq = 1;
    else if (!x.is_number || !y.is_number) eq = 0;
    else if (x.is_integer && y.is_integer) eq = 0;  // exact: digit strings already differ
    else if (!isfinite(x.value) || !isfinite(y.value)) eq = 0;
    else eq = fabs(x.value - y.value) <= rel_tol * fmax(fabs(x.value), fabs(y.value));
    free(x.text);
    free(y.text);
    return eq;
}
