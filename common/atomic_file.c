// Atomic files and directories (see atomic_file.h).
#include "atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hy_error.h"

static char *with_suffix(const char *path, const char *what) {
    size_t n = strlen(path) + 64;
    char *s = hy_malloc(n);
    snprintf(s, n, "%s.%s-%ld", path, what, (long)getpid());
    return s;
}

static int fsync_path(const char *path, int directory) {
    int fd = open(path, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return hy_fail("%s: cannot open to sync: %s", path, strerror(errno));
    int rc = fsync(fd) && errno != EINVAL ? hy_fail("%s: fsync failed: %s", path, strerror(errno)) : 0;
    close(fd);
    return rc;
}

// Syncs the directory holding path, so a rename inside it survives a crash.
static int fsync_parent(const char *path) {
    char *copy = hy_strdup(path);
    int rc = fsync_path(dirname(copy), 1);
    free(copy);
    return rc;
}

int hy_atomic_file_open(hy_atomic_file *a, const char *path) {
    memset(a, 0, sizeof *a);
    a->path = hy_strdup(path);
    a->tmp = with_suffix(path, "tmp");
    a->f = fopen(a->tmp, "wb");
    if (!a->f) {
        int rc = hy_fail("%s: cannot create: %s", a->tmp, strerror(errno));
        free(a->path);
        free(a->tmp);
        memset(a, 0, sizeof *a);
        return rc;
    }
    return 0;
}

void hy_atomic_file_write(hy_atomic_file *a, const void *data, size_t n) {
    if (!a->failed && n && fwrite(data, 1, n, a->f) != n) a->failed = errno ? errno : EIO;
}

static void atomic_file_release(hy_atomic_file *a) {
    free(a->path);
    free(a->tmp);
    memset(a, 0, sizeof *a);
}

int hy_atomic_file_commit(hy_atomic_file *a) {
    int rc = 0;
    if (fflush(a->f) && !a->failed) a->failed = errno ? errno : EIO;
    if (!a->failed && fsync(fileno(a->f))) a->failed = errno;
    if (fclose(a->f) && !a->failed) a->failed = errno ? errno : EIO;
    if (a->failed)
        rc = hy_fail("%s: write failed: %s", a->tmp, strerror(a->failed));
    else if (rename(a->tmp, a->path))
        rc = hy_fail("%s: cannot rename into place: %s", a->path, strerror(errno));
    if (rc)
        unlink(a->tmp);
    else
        rc = fsync_parent(a->path);
    atomic_file_release(a);
    return rc;
}

void hy_atomic_file_abort(hy_atomic_file *a) {
    if (a->f) fclose(a->f);
    unlink(a->tmp);
    atomic_file_release(a);
}

int hy_atomic_write(const char *path, const void *data, size_t n) {
    hy_atomic_file a;
    if (hy_atomic_file_open(&a, path)) return -1;
    hy_atomic_file_write(&a, data, n);
    return hy_atomic_file_commit(&a);
}

int hy_mkdir_p(const char *dir) {
    char *d = hy_strdup(dir);
    int rc = 0;
    for (char *p = d + 1;; p++) {
        if (*p && *p != '/') continue;
        const char c = *p;
        *p = '\0';
        struct stat st;
        if (mkdir(d, 0755) && errno != EEXIST)
            rc = hy_fail("%s: cannot create directory %s: %s", dir, d, strerror(errno));
        else if (stat(d, &st) == 0 && !S_ISDIR(st.st_mode))
            rc = hy_fail("%s: %s exists and is not a directory", dir, d);
        *p = c;
        if (rc || !c) break;
    }
    free(d);
    return rc;
}

int hy_mkdir_parent(const char *path) {
    char *d = hy_strdup(path);
    char *slash = strrchr(d, '/');
    int rc = 0;
    if (slash && slash != d) {
        *slash = '\0';
        rc = hy_mkdir_p(d);
    }
    free(d);
    return rc;
}

int hy_atomic_dir_begin(const char *dir, char *tmp, size_t tmp_size) {
    if (hy_mkdir_parent(dir)) return -1;
    char *t = with_suffix(dir, "tmp");
    snprintf(tmp, tmp_size, "%s", t);
    free(t);
    hy_atomic_dir_abort(tmp);  // a leftover of a crashed run with a recycled pid
    if (mkdir(tmp, 0755)) return hy_fail("%s: cannot create directory: %s", tmp, strerror(errno));
    return 0;
}

static int is_replaceable(const char *name, const char *const *replaceable) {
    for (; replaceable && *replaceable; replaceable++)
        if (!fnmatch(*replaceable, name, 0)) return 1;
    return 0;
}

// Calls fn(path of entry) for each entry of dir but . and ..; stops at the first nonzero return.
static int for_each_entry(const char *dir, int (*fn)(const char *path, const char *name, void *ctx), void *ctx) {
    DIR *d = opendir(dir);
    if (!d) return hy_fail("%s: cannot read directory: %s", dir, strerror(errno));
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        rc = fn(path, e->d_name, ctx);
    }
    closedir(d);
    return rc;
}

static int check_entry(const char *path, const char *name, void *ctx) {
    struct stat st;
    if (lstat(path, &st) || !S_ISREG(st.st_mode) || !is_replaceable(name, ctx))
        return hy_fail("%s: exists and holds '%s', which a checkpoint does not write; refusing to replace it (choose "
                       "another directory or remove it)",
                       path, name);
    return 0;
}

int hy_atomic_dir_check_replaceable(const char *dir, const char *const *replaceable) {
    struct stat st;
    if (lstat(dir, &st)) return errno == ENOENT ? 0 : hy_fail("%s: cannot stat: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return hy_fail("%s: exists and is not a directory", dir);
    return for_each_entry(dir, check_entry, (void *)replaceable);
}

static int sync_entry(const char *path, const char *name, void *ctx) { return fsync_path(path, 0); }

static int unlink_entry(const char *path, const char *name, void *ctx) {
    unlink(path);
    return 0;
}

static void remove_flat_dir(const char *dir) {
    struct stat st;
    if (lstat(dir, &st) || !S_ISDIR(st.st_mode)) return;
    for_each_entry(dir, unlink_entry, NULL);
    rmdir(dir);
}

int hy_atomic_dir_commit(const char *tmp, const char *dir, const char *const *replaceable) {
    if (for_each_entry(tmp, sync_entry, NULL) || fsync_path(tmp, 1)) return -1;
    if (hy_atomic_dir_check_replaceable(dir, replaceable))
        return hy_fail_prefix("the new version is kept in %s", tmp);
    struct stat st;
    char *old = NULL;
    if (lstat(dir, &st) == 0) {
        old = with_suffix(dir, "old");
        remove_flat_dir(old);
        if (rename(dir, old)) {
            int rc = hy_fail("%s: cannot move aside (the new version is kept in %s): %s", dir, tmp, strerror(errno));
            free(old);
            return rc;
        }
    }
    int rc = 0;
    if (rename(tmp, dir)) {
        rc = hy_fail("%s: cannot rename %s into place: %s", dir, tmp, strerror(errno));
        if (old) rename(old, dir);
    } else {
        rc = fsync_parent(dir);
        if (old) remove_flat_dir(old);
    }
    free(old);
    return rc;
}

void hy_atomic_dir_abort(const char *tmp) { remove_flat_dir(tmp); }

int hy_file_copy(const char *from, const char *to) {
    FILE *in = fopen(from, "rb");
    if (!in) return hy_fail("%s: cannot open: %s", from, strerror(errno));
    FILE *out = fopen(to, "wb");
    if (!out) {
        fclose(in);
        return hy_fail("%s: cannot create: %s", to, strerror(errno));
    }
    char buf[1 << 16];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) rc = hy_fail("%s: write failed: %s", to, strerror(errno));
    if (!rc && ferror(in)) rc = hy_fail("%s: read failed", from);
    fclose(in);
    if (fclose(out) && !rc) rc = hy_fail("%s: write failed: %s", to, strerror(errno));
    return rc;
}
