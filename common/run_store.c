// The run store on SQLite (see run_store.h; schema and queries in docs/run-store.md).
//
// Concurrency. Each process has its own connection. The store runs in WAL mode, so readers never
// block the writer and the writer never blocks readers; writers take turns on SQLite's write lock
// and a busy timeout makes them wait for it. Every write is one BEGIN IMMEDIATE transaction: the
// write lock is taken up front, because a transaction that reads first and upgrades later can fail
// at once with SQLITE_BUSY_SNAPSHOT in WAL mode, without the busy handler ever being asked.
// synchronous=NORMAL: in WAL mode a power cut may lose the last transactions but never corrupts
// the file — the right trade for metrics written every step.
//
// Schema. store_meta holds 'format' (identifies our stores among SQLite files) and
// 'schema_version'. migrations[i] takes a store from version i to i+1 inside one transaction;
// opening re-reads the version after taking the write lock, so processes racing to create a
// fresh store create it once. Tables (columns in docs/run-store.md): runs, metrics (one row per
// run, name, step; clustered on that key so a series is one range scan), trajectories, checkpoints,
// evaluations. Rows that repeat a key replace the old row (a resumed run rewrites its steps).
//
// Statements are prepared once per connection (write paths run every step) and always reset after
// use, so no statement holds a read transaction open between calls.
#include "run_store.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "atomic_file.h"
#include "hy_error.h"

#define STORE_FORMAT "hybrid-run-store"
#define STORE_APPLICATION_ID 0x48594252  // "HYBR": lets file(1) and friends recognise the store
enum { DEFAULT_BUSY_MS = 30000 };

// migrations[v] brings a store from schema version v to v + 1.
static const char *const migrations[RUN_STORE_SCHEMA_VERSION] = {
    "PRAGMA application_id = 1213809234;\n"  // STORE_APPLICATION_ID (a pragma takes no expression)
    "CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value ANY NOT NULL);\n"
    "CREATE TABLE runs (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  name TEXT NOT NULL,\n"
    "  kind TEXT NOT NULL CHECK (kind IN ('sft', 'dpo', 'rl')),\n"
    "  status TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed', 'stopped')),\n"
    "  created REAL NOT NULL,\n"
    "  updated REAL NOT NULL,\n"
    "  ended REAL,\n"
    "  last_step INTEGER NOT NULL DEFAULT -1,\n"
    "  recipe TEXT,\n"
    "  model TEXT,\n"
    "  git_commit TEXT);\n"
    "CREATE INDEX runs_by_name ON runs (name);\n"
    "CREATE TABLE metrics (\n"
    "  run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,\n"
    "  name TEXT NOT NULL,\n"
    "  step INTEGER NOT NULL,\n"
    "  value REAL,\n"
    "  time REAL NOT NULL,\n"
    "  PRIMARY KEY (run, name, step)) WITHOUT ROWID;\n"
    "CREATE TABLE trajectories (\n"
    "  run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,\n"
    "  id INTEGER NOT NULL,\n"
    "  step INTEGER NOT NULL,\n"
    "  group_id INTEGER NOT NULL,\n"
    "  weight_version INTEGER NOT NULL,\n"
    "  prompt_tokens BLOB NOT NULL,\n"
    "  completion_tokens BLOB NOT NULL,\n"
    "  generated_mask BLOB,\n"
    "  logprobs BLOB,\n"
    "  token_versions BLOB,\n"
    "  reward REAL,\n"
    "  finish_reason TEXT,\n"
    "  text TEXT,\n"
    "  time REAL NOT NULL,\n"
    "  PRIMARY KEY (run, id));\n"
    "CREATE INDEX trajectories_by_step ON trajectories (run, step);\n"
    "CREATE TABLE checkpoints (\n"
    "  run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,\n"
    "  step INTEGER NOT NULL,\n"
    "  path TEXT NOT NULL,\n"
    "  created REAL NOT NULL,\n"
    "  PRIMARY KEY (run, step));\n"
    "CREATE TABLE evaluations (\n"
    "  run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,\n"
    "  step INTEGER NOT NULL,\n"
    "  task TEXT NOT NULL,\n"
    "  metric TEXT NOT NULL,\n"
    "  value REAL,\n"
    "  n INTEGER NOT NULL,\n"
    "  created REAL NOT NULL,\n"
    "  PRIMARY KEY (run, task, metric, step));\n"
    "INSERT OR REPLACE INTO store_meta VALUES ('format', '" STORE_FORMAT "');\n",
};
_Static_assert(STORE_APPLICATION_ID == 1213809234, "the pragma in migrations[0] spells this id");

typedef enum {
    ST_RUN_INSERT,
    ST_RUN_END,
    ST_RUN_TOUCH,
    ST_RUN_GET,
    ST_RUN_LIST,
    ST_RUN_LATEST,
    ST_RUN_BY_NAME,
    ST_METRIC_INSERT,
    ST_METRIC_NAMES,
    ST_METRIC_SERIES,
    ST_METRIC_LAST,
    ST_TRAJ_INSERT,
    ST_TRAJ_GET,
    ST_TRAJ_RECENT,
    ST_TRAJ_COUNT,
    ST_CKPT_INSERT,
    ST_CKPT_LIST,
    ST_EVAL_INSERT,
    ST_EVAL_LIST,
    ST_COUNT
} stmt_id;

#define RUN_COLUMNS "id, name, kind, status, created, updated, ended, last_step, recipe, model, git_commit"
#define TRAJ_COLUMNS                                                                                   \
    "step, id, group_id, weight_version, prompt_tokens, completion_tokens, generated_mask, logprobs, " \
    "token_versions, reward, finish_reason, text"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_RUN_INSERT] =
        "INSERT INTO runs (name, kind, status, created, updated, recipe, model, git_commit) "
        "VALUES (?1, ?2, 'running', ?3, ?3, ?4, ?5, ?6)",
    [ST_RUN_END] = "UPDATE runs SET status = ?2, ended = ?3, updated = ?3 WHERE id = ?1",
    [ST_RUN_TOUCH] = "UPDATE runs SET last_step = max(last_step, ?2), updated = ?3 WHERE id = ?1",
    [ST_RUN_GET] = "SELECT " RUN_COLUMNS " FROM runs WHERE id = ?1",
    [ST_RUN_LIST] = "SELECT " RUN_COLUMNS " FROM runs ORDER BY id",
    [ST_RUN_LATEST] = "SELECT max(id) FROM runs",
    [ST_RUN_BY_NAME] = "SELECT id FROM runs WHERE name = ?1 ORDER BY id DESC LIMIT 1",
    [ST_METRIC_INSERT] = "INSERT OR REPLACE INTO metrics (run, name, step, value, time) VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_METRIC_NAMES] = "SELECT DISTINCT name FROM metrics WHERE run = ?1 ORDER BY name",
    [ST_METRIC_SERIES] = "SELECT step, value FROM metrics WHERE run = ?1 AND name = ?2 ORDER BY step",
    [ST_METRIC_LAST] = "SELECT step, value FROM metrics WHERE run = ?1 AND name = ?2 ORDER BY step DESC LIMIT 1",
    [ST_TRAJ_INSERT] = "INSERT OR REPLACE INTO trajectories (run, " TRAJ_COLUMNS
                       ", time) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    [ST_TRAJ_GET] = "SELECT " TRAJ_COLUMNS " FROM trajectories WHERE run = ?1 AND id = ?2",
    [ST_TRAJ_RECENT] = "SELECT " TRAJ_COLUMNS
                       " FROM trajectories WHERE run = ?1 "
                       "ORDER BY step DESC, id DESC LIMIT ?2",
    [ST_TRAJ_COUNT] = "SELECT count(*) FROM trajectories WHERE run = ?1",
    [ST_CKPT_INSERT] = "INSERT OR REPLACE INTO checkpoints (run, step, path, created) VALUES (?1, ?2, ?3, ?4)",
    [ST_CKPT_LIST] = "SELECT step, path, created FROM checkpoints WHERE run = ?1 ORDER BY step",
    [ST_EVAL_INSERT] =
        "INSERT OR REPLACE INTO evaluations (run, step, task, metric, value, n, created) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_EVAL_LIST] =
        "SELECT step, task, metric, value, n, created FROM evaluations WHERE run = ?1 "
        "ORDER BY task, metric, step",
};

struct run_store {
    sqlite3 *db;
    char *path;
    int busy_ms;
    sqlite3_stmt *stmt[ST_COUNT];
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// "<file>: <what>: <SQLite's reason>"; what names the step (the statement and its key values).
static int fail_sql(const run_store *s, const char *what) {
    const int code = sqlite3_errcode(s->db);
    if (code == SQLITE_NOTADB || (code & 0xff) == SQLITE_CORRUPT)
        return hy_fail("%s: %s: not a SQLite database, or a damaged one (%s)", s->path, what, sqlite3_errmsg(s->db));
    return hy_fail("%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

static sqlite3_stmt *stmt_get(run_store *s, stmt_id id, const char *what) {
    if (!s->stmt[id] &&
        sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[id], NULL) != SQLITE_OK) {
        fail_sql(s, what);
        return NULL;
    }
    return s->stmt[id];
}

static void stmt_done(sqlite3_stmt *st) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

// Runs a statement that returns no rows to completion.
static int step_done(run_store *s, sqlite3_stmt *st, const char *what) {
    const int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) fail_sql(s, what);
    stmt_done(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int exec(run_store *s, const char *sql, const char *what) {
    return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : fail_sql(s, what);
}

static int tx_begin(run_store *s, const char *what) {
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK) return 0;
    char step[256];
    snprintf(step, sizeof step, "%s: BEGIN IMMEDIATE (waiting for the write lock)", what);
    return fail_sql(s, step);
}

static int tx_commit(run_store *s, const char *what) {
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) return 0;
    char step[256];
    snprintf(step, sizeof step, "%s: COMMIT", what);
    fail_sql(s, step);
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

// Ends a failed transaction; the message already recorded is kept.
static int tx_abort(run_store *s) {
    if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

static char *column_strdup(sqlite3_stmt *st, int col) {
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? hy_strdup((const char *)t) : NULL;
}

static double column_real(sqlite3_stmt *st, int col) {
    return sqlite3_column_type(st, col) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col);
}

static int bind_text_or_null(sqlite3_stmt *st, int i, const char *text) {
    return text ? sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

// ---------------------------------------------------------------- opening


// Reads the schema version: 0 for an empty database; refuses SQLite files that are not ours.
static int read_version(run_store *s, int *version) {
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT (SELECT count(*) FROM sqlite_master), "
                           "(SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'store_meta')",
                           -1, &st, NULL) != SQLITE_OK)
        return fail_sql(s, "reading the schema");
    if (sqlite3_step(st) != SQLITE_ROW) {
        fail_sql(s, "reading the schema");
        sqlite3_finalize(st);
        return -1;
    }
    const int64_t n_objects = sqlite3_column_int64(st, 0), has_meta = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    if (n_objects == 0) {
        *version = 0;
        return 0;
    }
    if (!has_meta)
        return hy_fail("%s: a SQLite database, but not a hybrid run store (it has no store_meta table)", s->path);
    if (sqlite3_prepare_v2(s->db,
                           "SELECT (SELECT value FROM store_meta WHERE key = 'format'), "
                           "(SELECT value FROM store_meta WHERE key = 'schema_version')",
                           -1, &st, NULL) != SQLITE_OK)
        return fail_sql(s, "reading store_meta");
    if (sqlite3_step(st) != SQLITE_ROW) {
        fail_sql(s, "reading store_meta");
    } else {
        const unsigned char *format = sqlite3_column_text(st, 0);
        if (!format || strcmp((const char *)format, STORE_FORMAT))
            hy_fail("%s: a SQLite database, but not a hybrid run store (store_meta format is '%s', expected '%s')",
                    s->path, format ? (const char *)format : "(missing)", STORE_FORMAT);
        else if (sqlite3_column_type(st, 1) != SQLITE_INTEGER)
            hy_fail("%s: run store without an integer schema_version in store_meta (damaged?)", s->path);
        else if ((*version = (int)sqlite3_column_int64(st, 1)) < 1)
            hy_fail("%s: run store with schema_version %d (damaged?)", s->path, *version);
        else
            rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

static int migrate(run_store *s) {
    if (tx_begin(s, "creating the schema")) return -1;
    int version;
    if (read_version(s, &version)) return tx_abort(s);  // another process may have got here first
    for (; version < RUN_STORE_SCHEMA_VERSION; version++) {
        char what[96], sql[160];
        snprintf(what, sizeof what, "schema migration %d -> %d", version, version + 1);
        snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO store_meta VALUES ('schema_version', %d)", version + 1);
        if (exec(s, migrations[version], what) || exec(s, sql, what)) return tx_abort(s);
    }
    return tx_commit(s, "creating the schema");
}

// Switching a fresh file to WAL needs it to itself for a moment, and SQLite reports a conflict
// at once instead of asking the busy handler: processes opening a fresh store together retry here
// (until the busy timeout). Once the file is in WAL mode (which persists) this is a no-op.
static int journal_wal(run_store *s) {
    const double give_up = now_s() + s->busy_ms * 1e-3;
    for (long attempt = 0;; attempt++) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
        if (rc == SQLITE_OK) rc = sqlite3_step(st);
        // A file system without shared memory (some network mounts) keeps the rollback journal
        // (the row says which): still correct with several writers, only slower, so not an error.
        if (rc == SQLITE_ROW) {
            sqlite3_finalize(st);
            return 0;
        }
        const int busy = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
        const int stop = !busy || now_s() > give_up;
        if (stop) fail_sql(s, "PRAGMA journal_mode = WAL");
        sqlite3_finalize(st);
        if (stop) return -1;
        const struct timespec pause = {0, (attempt < 10 ? 1 : 10) * 1000000L};
        nanosleep(&pause, NULL);
    }
}

int run_store_open(const char *path, run_store_mode mode, run_store **out) {
    *out = NULL;
    if (!path) path = RUN_STORE_DEFAULT_PATH;
    struct stat sb;
    if (stat(path, &sb)) {
        if (errno != ENOENT || mode == RUN_STORE_EXISTING)
            return hy_fail("%s: cannot open the run store: %s", path, strerror(errno));
        if (hy_mkdir_parent(path)) return -1;
    } else if (S_ISDIR(sb.st_mode)) {
        return hy_fail("%s: is a folder, not a run store file", path);
    }
    run_store *s = hy_calloc(1, sizeof *s);
    s->path = hy_strdup(path);
    const int flags = SQLITE_OPEN_READWRITE | (mode == RUN_STORE_CREATE ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        if (s->db)
            fail_sql(s, "open");
        else
            hy_fail("%s: open: out of memory", path);
        run_store_close(s);
        return -1;
    }
    sqlite3_extended_result_codes(s->db, 1);
    run_store_set_busy_timeout(s, DEFAULT_BUSY_MS);
    int version = 0;
    int rc = read_version(s, &version);
    if (!rc && version > RUN_STORE_SCHEMA_VERSION)
        rc = hy_fail(
            "%s: run store schema version %d is newer than this build of hybrid understands (%d); "
            "use a newer hybrid (the store was left untouched)",
            path, version, RUN_STORE_SCHEMA_VERSION);
    if (!rc && version == 0 && mode == RUN_STORE_EXISTING)
        rc = hy_fail("%s: an empty file or database, not a hybrid run store", path);
    if (!rc) rc = journal_wal(s);
    if (!rc) rc = exec(s, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys, synchronous");
    if (!rc && version < RUN_STORE_SCHEMA_VERSION) rc = migrate(s);
    if (rc) {
        run_store_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void run_store_close(run_store *s) {
    if (!s) return;
    for (int i = 0; i < ST_COUNT; i++) sqlite3_finalize(s->stmt[i]);
    sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
}

const char *run_store_path(const run_store *s) { return s->path; }

void run_store_set_busy_timeout(run_store *s, int ms) {
    s->busy_ms = ms;
    sqlite3_busy_timeout(s->db, ms);
}

// ---------------------------------------------------------------- runs

static int is_one_of(const char *v, const char *const *set) {
    for (; v && *set; set++)
        if (!strcmp(v, *set)) return 1;
    return 0;
}

int run_store_run_begin(run_store *s, const run_store_run_info *info, int64_t *run_id) {
    static const char *const kinds[] = {"sft", "dpo", "rl", NULL};
    if (!info->name || !info->name[0]) return hy_fail("%s: run_begin: a run needs a name", s->path);
    if (!is_one_of(info->kind, kinds))
        return hy_fail("%s: run_begin: kind '%s' is not one of sft, dpo, rl", s->path,
                       info->kind ? info->kind : "(null)");
    sqlite3_stmt *st = stmt_get(s, ST_RUN_INSERT, "prepare INSERT INTO runs");
    if (!st) return -1;
    sqlite3_bind_text(st, 1, info->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, info->kind, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 3, now_s());
    bind_text_or_null(st, 4, info->recipe);
    bind_text_or_null(st, 5, info->model);
    bind_text_or_null(st, 6, info->git_commit);
    // one statement in autocommit mode is its own transaction, and last_insert_rowid is per connection
    if (step_done(s, st, "INSERT INTO runs")) return -1;
    *run_id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

int run_store_run_end(run_store *s, int64_t run_id, const char *status) {
    static const char *const ends[] = {"done", "failed", "stopped", NULL};
    if (!is_one_of(status, ends))
        return hy_fail("%s: run_end: status '%s' is not one of done, failed, stopped", s->path,
                       status ? status : "(null)");
    sqlite3_stmt *st = stmt_get(s, ST_RUN_END, "prepare UPDATE runs (end)");
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 3, now_s());
    if (step_done(s, st, "UPDATE runs (end)")) return -1;
    if (sqlite3_changes(s->db) != 1) return hy_fail("%s: run_end: no run with id %lld", s->path, (long long)run_id);
    return 0;
}

static void run_from_row(sqlite3_stmt *st, run_store_run *r) {
    r->id = sqlite3_column_int64(st, 0);
    r->name = column_strdup(st, 1);
    r->kind = column_strdup(st, 2);
    r->status = column_strdup(st, 3);
    r->created = sqlite3_column_double(st, 4);
    r->updated = sqlite3_column_double(st, 5);
    r->ended = sqlite3_column_double(st, 6);  // NULL reads as 0: still running
    r->last_step = sqlite3_column_int64(st, 7);
    r->recipe = column_strdup(st, 8);
    r->model = column_strdup(st, 9);
    r->git_commit = column_strdup(st, 10);
    if (!r->name) r->name = hy_strdup("");
    if (!r->kind) r->kind = hy_strdup("");
    if (!r->status) r->status = hy_strdup("");
}

int run_store_run_get(run_store *s, int64_t run_id, run_store_run *out) {
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = stmt_get(s, ST_RUN_GET, "prepare SELECT FROM runs");
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, run_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        run_from_row(st, out);
    else if (rc == SQLITE_DONE)
        hy_fail("%s: no run with id %lld", s->path, (long long)run_id);
    else
        fail_sql(s, "SELECT FROM runs");
    stmt_done(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

// One int64 from a statement whose parameters are bound; *found = 0 when no row or NULL.
static int query_int64(run_store *s, sqlite3_stmt *st, const char *what, int *found, int64_t *v) {
    const int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
    if (*found) *v = sqlite3_column_int64(st, 0);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) fail_sql(s, what);
    stmt_done(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int run_store_run_find(run_store *s, const char *ref, int64_t *run_id) {
    int found = 0;
    sqlite3_stmt *st;
    if (!ref || !ref[0]) return hy_fail("%s: empty run reference (give an id, a name or 'latest')", s->path);
    if (!strcmp(ref, "latest")) {
        if (!(st = stmt_get(s, ST_RUN_LATEST, "prepare SELECT max(id) FROM runs"))) return -1;
        if (query_int64(s, st, "SELECT max(id) FROM runs", &found, run_id)) return -1;
        return found ? 0 : hy_fail("%s: the store has no runs yet", s->path);
    }
    char *end;
    errno = 0;
    const long long id = strtoll(ref, &end, 10);
    if (!errno && *end == '\0' && end != ref) {
        if (!(st = stmt_get(s, ST_RUN_GET, "prepare SELECT FROM runs"))) return -1;
        sqlite3_bind_int64(st, 1, id);
        if (query_int64(s, st, "SELECT FROM runs", &found, run_id)) return -1;
        if (found) return 0;
    }
    if (!(st = stmt_get(s, ST_RUN_BY_NAME, "prepare SELECT id FROM runs WHERE name"))) return -1;
    sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
    if (query_int64(s, st, "SELECT id FROM runs WHERE name", &found, run_id)) return -1;
    return found
               ? 0
               : hy_fail("%s: no run with id or name '%s' (hybrid runs --store %s lists them)", s->path, ref, s->path);
}

int run_store_runs_list(run_store *s, run_store_run **runs, int *n) {
    *runs = NULL;
    *n = 0;
    sqlite3_stmt *st = stmt_get(s, ST_RUN_LIST, "prepare SELECT FROM runs");
    if (!st) return -1;
    int rc, cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) *runs = hy_realloc(*runs, sizeof **runs * (size_t)(cap = cap ? 2 * cap : 16));
        run_from_row(st, &(*runs)[(*n)++]);
    }
    if (rc != SQLITE_DONE) fail_sql(s, "SELECT FROM runs");
    stmt_done(st);
    if (rc == SQLITE_DONE) return 0;
    run_store_runs_free(*runs, *n);
    *runs = NULL;
    *n = 0;
    return -1;
}

void run_store_run_free(run_store_run *r) {
    free(r->name);
    free(r->kind);
    free(r->status);
    free(r->recipe);
    free(r->model);
    free(r->git_commit);
    memset(r, 0, sizeof *r);
}

void run_store_runs_free(run_store_run *runs, int n) {
    for (int i = 0; i < n; i++) run_store_run_free(&runs[i]);
    free(runs);
}

// Marks the run written at step (and fails clearly when it does not exist); inside a transaction.
static int run_touch(run_store *s, int64_t run_id, int64_t step, double t, const char *what) {
    sqlite3_stmt *st = stmt_get(s, ST_RUN_TOUCH, "prepare UPDATE runs (touch)");
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, step);
    sqlite3_bind_double(st, 3, t);
    if (step_done(s, st, "UPDATE runs (touch)")) return -1;
    if (sqlite3_changes(s->db) != 1) return hy_fail("%s: %s: no run with id %lld", s->path, what, (long long)run_id);
    return 0;
}

// ---------------------------------------------------------------- metrics

int run_store_metrics_log(run_store *s, int64_t run_id, int64_t step, int n, const char *const *names,
                          const double *values) {
    if (n < 0 || (n > 0 && (!names || !values))) return hy_fail("%s: metrics_log: bad arguments (n = %d)", s->path, n);
    if (step < 0) return hy_fail("%s: metrics_log: step %lld is negative", s->path, (long long)step);
    for (int i = 0; i < n; i++)
        if (!names[i] || !names[i][0])
            return hy_fail("%s: metrics_log: metric %d of step %lld has no name", s->path, i, (long long)step);
    if (n == 0) return 0;
    char what[160];
    snprintf(what, sizeof what, "metrics_log (run %lld, step %lld)", (long long)run_id, (long long)step);
    sqlite3_stmt *st = stmt_get(s, ST_METRIC_INSERT, "prepare INSERT INTO metrics");
    if (!st || tx_begin(s, what)) return -1;
    const double t = now_s();
    if (run_touch(s, run_id, step, t, what)) return tx_abort(s);
    for (int i = 0; i < n; i++) {
        sqlite3_bind_int64(st, 1, run_id);
        sqlite3_bind_text(st, 2, names[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, step);
        sqlite3_bind_double(st, 4, values[i]);  // SQLite stores NaN as NULL
        sqlite3_bind_double(st, 5, t);
        if (sqlite3_step(st) != SQLITE_DONE) {
            char step_what[320];
            snprintf(step_what, sizeof step_what, "INSERT INTO metrics (run %lld, step %lld, '%s')", (long long)run_id,
                     (long long)step, names[i]);
            fail_sql(s, step_what);
            stmt_done(st);
            return tx_abort(s);
        }
        stmt_done(st);
    }
    return tx_commit(s, what);
}

int run_store_metric_names(run_store *s, int64_t run_id, char ***names, int *n) {
    *names = NULL;
    *n = 0;
    sqlite3_stmt *st = stmt_get(s, ST_METRIC_NAMES, "prepare SELECT DISTINCT name FROM metrics");
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, run_id);
    int rc, cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) *names = hy_realloc(*names, sizeof **names * (size_t)(cap = cap ? 2 * cap : 16));
        char *name = column_strdup(st, 0);
        (*names)[(*n)++] = name ? name : hy_strdup("");
    }
    if (rc != SQLITE_DONE) fail_sql(s, "SELECT DISTINCT name FROM metrics");
    stmt_done(st);
    if (rc == SQLITE_DONE) return 0;
    run_store_names_free(*names, *n);
    *names = NULL;
    *n = 0;
    return -1;
}

void run_store_names_free(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

int run_store_metric_series(run_store *s, int64_t run_id, const char *name, int64_t **steps, double **values, int *n) {
    *steps = NULL;
    *values = NULL;
    *n = 0;
    sqlite3_stmt *st = stmt_get(s, ST_METRIC_SERIES, "prepare SELECT FROM metrics");
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int rc, cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 256;
            *steps = hy_realloc(*steps, sizeof **steps * (size_t)cap);
            *values = hy_realloc(*values, sizeof **values * (size_t)cap);
        }
        (*steps)[*n] = sqlite3_column_int64(st, 0);
        (*values)[(*n)++] = column_real(st, 1);
    }
    if (rc != SQLITE_DONE) {
        char what[300];
        snprintf(what, sizeof what, "SELECT FROM metrics (run %lld, '%s')", (long long)run_id, name);
        fail_sql(s, what);
    }
    stmt_done(st);
    if (rc == SQLITE_DONE) return 0;
    free(*steps);
    free(*values);
    *steps = NULL;
    *values = NULL;
    *n = 0;
    return -1;
}

int run_store_metric_last(run_store *s, int64_t run_id, const char *name, int *found, int64_t *step, double *value) {
    *found = 0;
    sqlite3_stmt *st = stmt_get(s, ST_METRIC_LAST, "prepare SELECT FROM metrics (last)");
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    const int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *found = 1;
        *step = sqlite3_column_int64(st, 0);
        *value = column_real(st, 1);
    } else if (rc != SQLITE_DONE) {
        fail_sql(s, "SELECT FROM metrics (last)");
    }
    stmt_done(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

// ---------------------------------------------------------------- trajectories

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

// 4-byte values (int32 or float32, given as raw bits) as a little-endian blob at dst.
static void encode4(uint8_t *dst, const void *src, int n) {
    for (int i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, (const uint8_t *)src + 4 * (size_t)i, 4);
        put_u32(dst + 4 * (size_t)i, v);
    }
}

static void decode4(void *dst, const uint8_t *src, int n) {
    for (int i = 0; i < n; i++) {
        const uint32_t v = get_u32(src + 4 * (size_t)i);
        memcpy((uint8_t *)dst + 4 * (size_t)i, &v, 4);
    }
}

static int check_trajectory(const run_store *s, const run_store_trajectory *t) {
    if (t->n_prompt < 0 || t->n_completion < 0 || (t->n_prompt > 0 && !t->prompt_tokens) ||
        (t->n_completion > 0 && !t->completion_tokens))
        return hy_fail("%s: trajectory %lld: token arrays do not match their counts (%d prompt, %d completion)",
                       s->path, (long long)t->id, t->n_prompt, t->n_completion);
    if (t->step < 0)
        return hy_fail("%s: trajectory %lld: step %lld is negative", s->path, (long long)t->id, (long long)t->step);
    return 0;
}

// Binds a blob of n 4-byte values encoded into buf (NULL src = SQL NULL; n = 0 = an empty blob).
static void bind_blob4(sqlite3_stmt *st, int i, uint8_t *buf, const void *src, int n) {
    if (!src) {
        sqlite3_bind_null(st, i);
        return;
    }
    encode4(buf, src, n);
    sqlite3_bind_blob(st, i, buf, 4 * n, SQLITE_STATIC);
}

int run_store_trajectory_add(run_store *s, int64_t run_id, const run_store_trajectory *t, int n) {
    if (n < 0 || (n > 0 && !t)) return hy_fail("%s: trajectory_add: bad arguments (n = %d)", s->path, n);
    int64_t max_step = -1;
    size_t max_bytes = 0;
    for (int i = 0; i < n; i++) {
        if (check_trajectory(s, &t[i])) return -1;
        if (t[i].step > max_step) max_step = t[i].step;
        const size_t bytes = 4 * (size_t)t[i].n_prompt + 12 * (size_t)t[i].n_completion;  // the mask is bound as is
        if (bytes > max_bytes) max_bytes = bytes;
    }
    if (n == 0) return 0;
    char what[160];
    snprintf(what, sizeof what, "trajectory_add (run %lld, %d trajectories)", (long long)run_id, n);
    sqlite3_stmt *st = stmt_get(s, ST_TRAJ_INSERT, "prepare INSERT INTO trajectories");
    if (!st || tx_begin(s, what)) return -1;
    // empty arrays still need a non-NULL pointer for sqlite3_bind_blob to bind an empty blob
    uint8_t *buf = hy_malloc(max_bytes + 4);
    const int32_t empty = 0;
    int rc = run_touch(s, run_id, -1, now_s(), what);  // step −1 leaves last_step (a metrics notion) alone
    for (int i = 0; !rc && i < n; i++) {
        const run_store_trajectory *r = &t[i];
        const int nc = r->n_completion;
        uint8_t *prompt = buf, *completion = prompt + 4 * (size_t)r->n_prompt, *lp = completion + 4 * (size_t)nc,
                *versions = lp + 4 * (size_t)nc;
        sqlite3_bind_int64(st, 1, run_id);
        sqlite3_bind_int64(st, 2, r->step);
        sqlite3_bind_int64(st, 3, r->id);
        sqlite3_bind_int64(st, 4, r->group_id);
        sqlite3_bind_int64(st, 5, r->weight_version);
        bind_blob4(st, 6, prompt, r->n_prompt ? (const void *)r->prompt_tokens : &empty, r->n_prompt);
        bind_blob4(st, 7, completion, nc ? (const void *)r->completion_tokens : &empty, nc);
        if (r->generated_mask)
            sqlite3_bind_blob(st, 8, nc ? (const void *)r->generated_mask : &empty, nc, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 8);
        bind_blob4(st, 9, lp, r->logprobs, nc);
        bind_blob4(st, 10, versions, r->token_versions, nc);
        sqlite3_bind_double(st, 11, r->reward);
        bind_text_or_null(st, 12, r->finish_reason);
        bind_text_or_null(st, 13, r->text);
        sqlite3_bind_double(st, 14, now_s());
        if (sqlite3_step(st) != SQLITE_DONE) {
            char step_what[200];
            snprintf(step_what, sizeof step_what, "INSERT INTO trajectories (run %lld, id %lld)", (long long)run_id,
                     (long long)r->id);
            rc = fail_sql(s, step_what);
        }
        stmt_done(st);
    }
    free(buf);
    return rc ? tx_abort(s) : tx_commit(s, what);
}

// Length of a blob column in elem-sized entries; −1 when the size is not a whole number of them.
static int blob_count(sqlite3_stmt *st, int col, int elem) {
    const int bytes = sqlite3_column_bytes(st, col);
    return bytes % elem ? -1 : bytes / elem;
}

// Decodes one row of TRAJ_COLUMNS into t (one allocation, t->owned), checking every blob's size.
static int trajectory_from_row(run_store *s, int64_t run_id, sqlite3_stmt *st, run_store_trajectory *t) {
    memset(t, 0, sizeof *t);
    t->step = sqlite3_column_int64(st, 0);
    t->id = sqlite3_column_int64(st, 1);
    t->group_id = sqlite3_column_int64(st, 2);
    t->weight_version = sqlite3_column_int64(st, 3);
    const int np = blob_count(st, 4, 4), nc = blob_count(st, 5, 4);
    const int has_mask = sqlite3_column_type(st, 6) != SQLITE_NULL, has_lp = sqlite3_column_type(st, 7) != SQLITE_NULL,
              has_ver = sqlite3_column_type(st, 8) != SQLITE_NULL;
    const char *bad = NULL;
    if (np < 0)
        bad = "prompt_tokens";
    else if (nc < 0)
        bad = "completion_tokens";
    else if (has_mask && blob_count(st, 6, 1) != nc)
        bad = "generated_mask";
    else if (has_lp && blob_count(st, 7, 4) != nc)
        bad = "logprobs";
    else if (has_ver && blob_count(st, 8, 4) != nc)
        bad = "token_versions";
    if (bad)
        return hy_fail(
            "%s: trajectory (run %lld, id %lld): the %s blob's size does not fit %d completion tokens "
            "(damaged store?)",
            s->path, (long long)run_id, (long long)t->id, bad, nc);
    const unsigned char *finish = sqlite3_column_text(st, 10), *text = sqlite3_column_text(st, 11);
    const size_t finish_len = finish ? strlen((const char *)finish) + 1 : 0,
                 text_len = text ? strlen((const char *)text) + 1 : 0;
    // 4-byte arrays first so each stays aligned in the one allocation
    const size_t bytes = 4 * (size_t)np + 12 * (size_t)nc + (size_t)nc + finish_len + text_len;
    uint8_t *p = hy_malloc(bytes);
    t->owned = p;
    t->n_prompt = np;
    t->n_completion = nc;
    t->prompt_tokens = (int32_t *)p;
    decode4(p, sqlite3_column_blob(st, 4), np);
    p += 4 * (size_t)np;
    t->completion_tokens = (int32_t *)p;
    decode4(p, sqlite3_column_blob(st, 5), nc);
    p += 4 * (size_t)nc;
    if (has_lp) {
        t->logprobs = (float *)p;
        decode4(p, sqlite3_column_blob(st, 7), nc);
    }
    p += 4 * (size_t)nc;
    if (has_ver) {
        t->token_versions = (int32_t *)p;
        decode4(p, sqlite3_column_blob(st, 8), nc);
    }
    p += 4 * (size_t)nc;
    if (has_mask) {
        t->generated_mask = p;
        if (nc) memcpy(p, sqlite3_column_blob(st, 6), (size_t)nc);
    }
    p += nc;
    t->reward = column_real(st, 9);
    if (finish) t->finish_reason = memcpy(p, finish, finish_len);
    p += finish_len;
    if (text) t->text = memcpy(p, text, text_len);
    return 0;
}

int run_store_trajectory_get(run_store *s, int64_t run_id, int64_t id, run_store_trajectory *out) {
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = stmt_get(s, ST_TRAJ_GET, "prepare SELECT FROM trajectories");
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = trajectory_from_row(s, run_id, st, out) ? -1 : 0;
    else if (rc == SQLITE_DONE)
        rc = hy_fail("%s: run %lld has no trajectory %lld", s->path, (long long)run_id, (long long)id);
    else
        rc = fail_sql(s, "SELECT FROM trajectories");
    stmt_done(st);
    return rc;
}

int run_store_trajectories_recent(run_store *s, int64_t run_id, int limit, run_store_trajectory **out, int *n) {
    *out = NULL;
    *n = 0;
    if (limit <= 0) return 0;
    sqlite3_stmt *st = stmt_get(s, ST_TRAJ_RECENT, "prepare SELECT FROM trajectories (recent)");
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int(st, 2, limit);
    *out = hy_calloc((size_t)limit, sizeof **out);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (trajectory_from_row(s, run_id, st, &(*out)[*n])) break;
        ++*n;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) fail_sql(s, "SELECT FROM trajectories (recent)");
    stmt_done(st);
    if (rc == SQLITE_DONE) return 0;
    run_store_trajectories_free(*out, *n);
    *out = NULL;
    *n = 0;
    return -1;
}

int run_store_trajectory_count(run_store *s, int64_t run_id, int64_t *n) {
    int found;
    sqlite3_stmt *st = stmt_get(s, ST_TRAJ_COUNT, "prepare SELECT count(*) FROM trajectories");
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, run_id);
    *n = 0;
    return query_int64(s, st, "SELECT count(*) FROM trajectories", &found, n);
}

void run_store_trajectory_free(run_store_trajectory *t) {
    free(t->owned);
    memset(t, 0, sizeof *t);
}

void run_store_trajectories_free(run_store_trajectory *t, int n) {
    for (int i = 0; i < n; i++) run_store_trajectory_free(&t[i]);
    free(t);
}

// ---------------------------------------------------------------- checkpoints and evaluations

int run_store_checkpoint_add(run_store *s, int64_t run_id, int64_t step, const char *path) {
    if (!path || !path[0]) return hy_fail("%s: checkpoint_add: empty checkpoint path", s->path);
    char what[160];
    snprintf(what, sizeof what, "checkpoint_add (run %lld, step %lld)", (long long)run_id, (long long)step);
    sqlite3_stmt *st = stmt_get(s, ST_CKPT_INSERT, "prepare INSERT INTO checkpoints");
    if (!st || tx_begin(s, what)) return -1;
    const double t = now_s();
    if (run_touch(s, run_id, -1, t, what)) return tx_abort(s);
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, step);
    sqlite3_bind_text(st, 3, path, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 4, t);
    if (step_done(s, st, "INSERT INTO checkpoints")) return tx_abort(s);
    return tx_commit(s, what);
}

int run_store_checkpoints_list(run_store *s, int64_t run_id, run_store_checkpoint **out, int *n) {
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = stmt_get(s, ST_CKPT_LIST, "prepare SELECT FROM checkpoints");
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, run_id);
    int rc, cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) *out = hy_realloc(*out, sizeof **out * (size_t)(cap = cap ? 2 * cap : 16));
        run_store_checkpoint *c = &(*out)[(*n)++];
        c->step = sqlite3_column_int64(st, 0);
        c->path = column_strdup(st, 1);
        if (!c->path) c->path = hy_strdup("");
        c->created = sqlite3_column_double(st, 2);
    }
    if (rc != SQLITE_DONE) fail_sql(s, "SELECT FROM checkpoints");
    stmt_done(st);
    if (rc == SQLITE_DONE) return 0;
    run_store_checkpoints_free(*out, *n);
    *out = NULL;
    *n = 0;
    return -1;
}

void run_store_checkpoints_free(run_store_checkpoint *c, int n) {
    for (int i = 0; i < n; i++) free(c[i].path);
    free(c);
}

int run_store_eval_add(run_store *s, int64_t run_id, int64_t step, const char *task, const char *metric, double value,
                       int64_t n) {
    if (!task || !task[0] || !metric || !metric[0])
        return hy_fail("%s: eval_add: an evaluation needs a task and a metric name", s->path);
    char what[300];
    snprintf(what, sizeof what, "eval_add (run %lld, step %lld, %s/%s)", (long long)run_id, (long long)step, task,
             metric);
    sqlite3_stmt *st = stmt_get(s, ST_EVAL_INSERT, "prepare INSERT INTO evaluations");
    if (!st || tx_begin(s, what)) return -1;
    const double t = now_s();
    if (run_touch(s, run_id, -1, t, what)) return tx_abort(s);
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, step);
    sqlite3_bind_text(st, 3, task, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, metric, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 5, value);
    sqlite3_bind_int64(st, 6, n);
    sqlite3_bind_double(st, 7, t);
    if (step_done(s, st, "INSERT INTO evaluations")) return tx_abort(s);
    return tx_commit(s, what);
}

int run_store_evals_list(run_store *s, int64_t run_id, run_store_eval **out, int *n) {
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = stmt_get(s, ST_EVAL_LIST, "prepare SELECT FROM evaluations");
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, run_id);
    int rc, cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) *out = hy_realloc(*out, sizeof **out * (size_t)(cap = cap ? 2 * cap : 16));
        run_store_eval *e = &(*out)[(*n)++];
        e->step = sqlite3_column_int64(st, 0);
        e->task = column_strdup(st, 1);
        e->metric = column_strdup(st, 2);
        if (!e->task) e->task = hy_strdup("");
        if (!e->metric) e->metric = hy_strdup("");
        e->value = column_real(st, 3);
        e->n = sqlite3_column_int64(st, 4);
        e->created = sqlite3_column_double(st, 5);
    }
    if (rc != SQLITE_DONE) fail_sql(s, "SELECT FROM evaluations");
    stmt_done(st);
    if (rc == SQLITE_DONE) return 0;
    run_store_evals_free(*out, *n);
    *out = NULL;
    *n = 0;
    return -1;
}

void run_store_evals_free(run_store_eval *e, int n) {
    for (int i = 0; i < n; i++) {
        free(e[i].task);
        free(e[i].metric);
    }
    free(e);
}
