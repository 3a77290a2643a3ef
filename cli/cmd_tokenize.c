// `hybrid tokenize`: encode text or chat messages with a tokenizer.json, or decode ids.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/hy_error.h"
#include "../model/chat_template.h"
#include "args.h"
#include "cli_common.h"
#include "commands.h"

static const arg_spec specs[] = {
    {"tokenizer", ARG_STR, NULL, "tokenizer.json (required)", 0, 0},
    {"text", ARG_STR, NULL, "text to encode (special tokens in it are recognised)", 0, 0},
    {"messages", ARG_STR, NULL, "JSON array of {role, content} to render as ChatML and encode", 0, 0},
    {"generation-prompt", ARG_FLAG, NULL, "with --messages: end with the assistant generation prompt", 0, 0},
    {"decode", ARG_STR, NULL, "comma-separated ids to decode", 0, 0},
    {"skip-special", ARG_FLAG, NULL, "with --decode: leave special tokens out", 0, 0},
    {"json", ARG_FLAG, NULL, "print a JSON array of ids (or a JSON string when decoding)", 0, 0},
};
static const arg_command command = {
    "tokenize", "tokenize --tokenizer FILE (--text T | --messages JSON | --decode 1,2,3) [--json]",
    "Prints the ids as one line of space-separated integers (--json: a JSON array), or the decoded\n"
    "text (exactly the decoded bytes; a newline is added only when stdout is a terminal).",
    specs, sizeof specs / sizeof *specs};

static void print_ids(const int32_t *ids, int n, int as_json) {
    if (as_json) putchar('[');
    for (int i = 0; i < n; i++) printf(as_json ? "%s%d" : "%s%d", i ? (as_json ? "," : " ") : "", ids[i]);
    printf(as_json ? "]\n" : "\n");
}

int cmd_tokenize(int argc, char **argv) {
    arg_values a;
    int rc = args_parse(&command, argc, argv, &a);
    if (rc) return rc > 0 ? 0 : 2;
    const char *path = arg_str(&a, "tokenizer"), *text = arg_str(&a, "text"), *messages = arg_str(&a, "messages");
    const char *decode = arg_str(&a, "decode");
    if (!path || (!!text + !!messages + !!decode) != 1) {
        fprintf(stderr, "hybrid tokenize: give --tokenizer and exactly one of --text, --messages, --decode\n");
        return 2;
    }
    hy_tokenizer *tok;
    if (hy_tokenizer_load(&tok, path)) return cli_error("tokenize");
    int32_t *ids = NULL;
    int n = 0;
    rc = 0;
    if (decode) {
        char *out = NULL;
        size_t len = 0;
        rc = cli_parse_id_list(decode, &ids, &n) || hy_tokenizer_decode(tok, ids, n, arg_flag(&a, "skip-special"), &out, &len);
        if (!rc) {
            if (arg_flag(&a, "json")) {
                json_t *s = json_stringn(out, len);
                char *dump = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
                if (dump) printf("%s\n", dump);
                else rc = hy_fail("decoded text is not valid UTF-8 and cannot be printed as JSON");
                free(dump);
                json_decref(s);
            } else {
                fwrite(out, 1, len, stdout);
                if (isatty(STDOUT_FILENO)) putchar('\n');
            }
        }
        free(out);
    } else {
        char *rendered = NULL;
        size_t text_len = text ? strlen(text) : 0;
        if (messages) {
            json_error_t err;
            json_t *msgs = json_loads(messages, 0, &err);
            if (!msgs)
                rc = hy_fail("--messages: invalid JSON at column %d: %s", err.column, err.text);
            else
                rc = cli_render_messages(msgs, "--messages", arg_flag(&a, "generation-prompt"), &rendered, &text_len);
            json_decref(msgs);
            text = rendered;
        }
        if (!rc) rc = hy_tokenizer_encode(tok, text, text_len, &ids, &n);
        if (!rc) print_ids(ids, n, arg_flag(&a, "json"));
        free(rendered);
    }
    free(ids);
    hy_tokenizer_free(tok);
    return rc ? cli_error("tokenize") : 0;
}
