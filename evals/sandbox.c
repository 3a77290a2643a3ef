// Sandboxed python3 runs (see sandbox.h for what is and is not enforced).
//
// Shape of a run:
//   parent ──fork──► leader: own process group; stdio from memfds; namespaces; drop to nobody
//                      │  (with a pid namespace) ──fork──► init (pid 1) ──fork──► python3 ──► ...
//                      └─ (without)             ──exec──► python3 ──► its children
// The leader reports over a close-on-exec pipe what isolation it got or a setup failure; exec
// failures and (from init, when python3 runs under it) python3's wait status and CPU time come
// over the same pipe. Everything the child
// side does between fork and exec is a plain system call on data prepared by the parent, which is
// what makes forking from a multi-threaded process safe. stdio are memfds the parent created, so
// the program cannot swap them for symlinks or FIFOs by renaming files in its directory.
#include "evals/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/hy_error.h"
#include "evals/strbuf.h"

enum { NOBODY = 65534, ERR_KEEP = 4096 };

static const char GUARD_NAME[] = "_hy_netguard.py";

// Used only where no network namespace could be made (see sandbox.h for what it does not stop).
static const char GUARD_SOURCE[] =
    "# Network guard of the hybrid code verifier: used only when no network namespace was available.\n"
    "import runpy as _runpy, socket as _socket, sys as _sys\n"
    "def _refuse(*args, **kwargs):\n"
    "    raise OSError(1, 'network access is disabled in the verifier sandbox')\n"
    "class _GuardedSocket(_socket.socket):\n"
    "    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):\n"
    "        if fileno is None and family != _socket.AF_UNIX:\n"
    "            _refuse()\n"
    "        super().__init__(family, type, proto, fileno)\n"
    "_socket.socket = _GuardedSocket\n"
    "_socket.create_connection = _refuse\n"
    "_socket.getaddrinfo = _refuse\n"
    "_sys.argv = _sys.argv[1:]\n"
    "_runpy.run_path(_sys.argv[0], run_name='__main__')\n";

hy_sandbox_limits hy_sandbox_limits_default(void) {
    return (hy_sandbox_limits){
        .cpu_s = 5,
        .wall_s = 10.0,
        .mem_bytes = (size_t)1 << 30,
        .max_procs = 32,
        .file_bytes = (size_t)16 << 20,
        .keep_stdout_bytes = (size_t)1 << 20,
        .allow_network = 0,
        .python = NULL,
    };
}

static uid_t sandbox_uid(void) { return geteuid() == 0 ? NOBODY : geteuid(); }
static gid_t sandbox_gid(void) { return geteuid() == 0 ? NOBODY : getegid(); }

// ---- scratch directory --------------------------------------------------------------------------

int hy_sandbox_dir_new(char **dir) {
    *dir = NULL;
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    hy_strbuf b;
    hy_strbuf_init(&b);
    hy_strbuf_addf(&b, "%s/hy_verify_XXXXXX", base);
    if (!mkdtemp(b.s)) {
        const int e = errno;
        hy_strbuf_free(&b);
        return hy_fail("code sandbox: cannot create a directory under %s: %s", base, strerror(e));
    }
    // a root parent runs programs as nobody, who must be able to work in its directory
    if (geteuid() == 0 && chown(b.s, NOBODY, NOBODY)) {
        const int e = errno;
        rmdir(b.s);
        hy_strbuf_free(&b);
        return hy_fail("code sandbox: chown of the scratch directory to %d: %s", NOBODY, strerror(e));
    }
    *dir = hy_strbuf_take(&b);
    return 0;
}

int hy_sandbox_write(const char *dir, const char *name, const char *text, size_t len) {
    hy_strbuf path;
    hy_strbuf_init(&path);
    hy_strbuf_addf(&path, "%s/%s", dir, name);
    // O_NOFOLLOW | O_NONBLOCK: an earlier program may have left a symlink or FIFO by that name
    int fd = open(path.s, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
    struct stat st;
    int rc = 0;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        rc = hy_fail("code sandbox: cannot write %s: %s", path.s, fd < 0 ? strerror(errno) : "not a regular file");
    } else {
        for (size_t off = 0; off < len;) {
            const ssize_t w = write(fd, text + off, len - off);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                rc = hy_fail("code sandbox: writing %s: %s", path.s, strerror(errno));
                break;
            }
            off += (size_t)w;
        }
    }
    if (fd >= 0) close(fd);
    hy_strbuf_free(&path);
    return rc;
}

static int make_removable(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    if (flag == FTW_D || flag == FTW_DNR) chmod(path, 0700);
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    remove(path);
    return 0;
}

void hy_sandbox_dir_remove(const char *dir) {
    if (!dir) return;
    nftw(dir, make_removable, 16, FTW_PHYS);  // a program may have chmod'ed its dirs to 000
    nftw(dir, remove_entry, 16, FTW_PHYS | FTW_DEPTH);
}

// ---- interpreter --------------------------------------------------------------------------------

static char *search_path(const char *name, const char *path) {
    hy_strbuf b;
    hy_strbuf_init(&b);
    for (const char *p = path; p && *p;) {
        const size_t n = strcspn(p, ":");
        if (n) {
            b.len = 0;
            hy_strbuf_addf(&b, "%.*s/%s", (int)n, p, name);
            if (access(b.s, X_OK) == 0) return hy_strbuf_take(&b);
        }
        p += n;
        if (*p) p++;
    }
    hy_strbuf_free(&b);
    return NULL;
}

char *hy_sandbox_find_python(const hy_sandbox_limits *lim) {
    const char *want = lim && lim->python && *lim->python ? lim->python : getenv("HY_PYTHON");
    if (want && *want) {
        if (strchr(want, '/')) {
            if (access(want, X_OK) == 0) return hy_strdup(want);
            hy_fail("code sandbox: interpreter %s is not executable: %s", want, strerror(errno));
            return NULL;
        }
        char *p = search_path(want, getenv("PATH"));
        if (!p) hy_fail("code sandbox: interpreter '%s' not found in PATH", want);
        return p;
    }
    char *p = search_path("python3", "/usr/local/bin:/usr/bin:/bin");
    if (!p) p = search_path("python3", getenv("PATH"));
    if (!p) hy_fail("code sandbox: python3 not found in /usr/local/bin, /usr/bin, /bin or PATH (set HY_PYTHON)");
    return p;
}

// ---- the child side: system calls only ----------------------------------------------------------

enum { MSG_ISOLATION = 1, MSG_SETUP_FAILED, MSG_EXEC_FAILED, MSG_STATUS };
enum { STEP_DROP = 1, STEP_MAPS, STEP_FORK };

typedef struct {
    int kind;
    int a, b, c, d, e;  // ISOLATION: net, guard, pidns, userns, uid; SETUP_FAILED: step, errno;
                        // EXEC_FAILED: errno; STATUS: wait status
    long long cpu_us;   // STATUS: user + system CPU of python3
} msg;

// Everything the child needs, prepared before fork.
typedef struct {
    const hy_sandbox_limits *lim;
    const char *python;
    char *const *argv_plain;  // python3 -I -B script
    char *const *argv_guard;  // python3 -I -B guard script
    char *const *envp;
    const char *dir;
    int in_fd, out_fd, err_fd, msg_fd;
    int max_fd;             // for closing inherited descriptors where close_range is missing
    uid_t uid;
    gid_t gid;
    char uid_map[64], gid_map[64];
    long long nproc_shared;  // RLIMIT_NPROC when no user namespace: tasks the uid has + budget
} child_ctx;

static void send_msg(int fd, int kind, int a, int b, int c, int d, int e, long long cpu_us) {
    const msg m = {kind, a, b, c, d, e, cpu_us};
    ssize_t w;
    do w = write(fd, &m, sizeof m);
    while (w < 0 && errno == EINTR);
}

static int write_file(const char *path, const char *text) {
    const int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    const ssize_t n = (ssize_t)strlen(text);
    const ssize_t w = write(fd, text, (size_t)n);
    close(fd);
    return w == n ? 0 : -1;
}

static void close_inherited(const child_ctx *c) {
    // only 0-2 and the report pipe survive: other threads' descriptors must not reach the program
    const int keep = c->msg_fd;
#ifdef SYS_close_range
    if ((keep == 3 || syscall(SYS_close_range, 3u, (unsigned)keep - 1, 0u) == 0) &&
        syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0u) == 0)
        return;
#endif
    for (int fd = 3; fd < c->max_fd; fd++)
        if (fd != keep) close(fd);
}

static void set_limit(int resource, rlim_t v) {
    const struct rlimit r = {v, v};
    setrlimit(resource, &r);
}

static void exec_python(const child_ctx *c, int guard, long long nproc) {
    set_limit(RLIMIT_CPU, (rlim_t)c->lim->cpu_s);
    set_limit(RLIMIT_AS, (rlim_t)c->lim->mem_bytes);
    set_limit(RLIMIT_NPROC, (rlim_t)nproc);
    set_limit(RLIMIT_FSIZE, (rlim_t)c->lim->file_bytes);
    set_limit(RLIMIT_CORE, 0);
    if (chdir(c->dir)) {
        send_msg(c->msg_fd, MSG_EXEC_FAILED, errno, 0, 0, 0, 0, 0);
        _exit(127);
    }
    execve(c->python, guard ? c->argv_guard : c->argv_plain, c->envp);
    send_msg(c->msg_fd, MSG_EXEC_FAILED, errno, 0, 0, 0, 0, 0);
    _exit(127);
}

// pid 1 of the sandbox's pid namespace: runs python3 as its child (so python3 keeps the signal
// semantics of an ordinary process, which pid 1 does not have), reaps orphans until python3 ends,
// reports its status, and exits, at which the kernel kills whatever is left in the namespace.
static _Noreturn void init_main(const child_ctx *c, int guard, long long nproc) {
    const pid_t pid = fork();
    if (pid < 0) {
        send_msg(c->msg_fd, MSG_SETUP_FAILED, STEP_FORK, errno, 0, 0, 0, 0);
        _exit(126);
    }
    if (pid == 0) exec_python(c, guard, nproc);
    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    for (;;) {
        const pid_t w = wait4(-1, &st, 0, &ru);
        if (w == pid || (w < 0 && errno != EINTR)) break;
    }
    const long long cpu = (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
                          ru.ru_stime.tv_usec;
    send_msg(c->msg_fd, MSG_STATUS, st, 0, 0, 0, 0, cpu);
    _exit(0);
}

static _Noreturn void leader_main(const child_ctx *c) {
    setpgid(0, 0);
    dup2(c->in_fd, 0);
    dup2(c->out_fd, 1);
    dup2(c->err_fd, 2);
    close_inherited(c);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++) sigaction(s, &dfl, NULL);  // exec keeps SIG_IGN; we do not want it
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    const int want_net = !c->lim->allow_network, ns = !c->lim->no_namespaces;
    int net = 0, pidns = 0, userns = 0;
    if (geteuid() == 0) {  // as root: namespaces first (root may), then give root up
        if (ns && want_net && unshare(CLONE_NEWNET) == 0) net = 1;
        if (ns && unshare(CLONE_NEWPID) == 0) pidns = 1;
        if (setgroups(0, NULL) || setresgid(c->gid, c->gid, c->gid) || setresuid(c->uid, c->uid, c->uid)) {
            send_msg(c->msg_fd, MSG_SETUP_FAILED, STEP_DROP, errno, 0, 0, 0, 0);
            _exit(126);
        }
        // changing uid made us non-dumpable, which leaves /proc/self/*_map owned by root
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    }
    const int flags = CLONE_NEWUSER | (want_net && !net ? CLONE_NEWNET : 0) | (!pidns ? CLONE_NEWPID : 0);
    if (ns && unshare(flags) == 0) {
        userns = 1;
        net |= (flags & CLONE_NEWNET) != 0;
        pidns |= (flags & CLONE_NEWPID) != 0;
        // map our own ids, or files created in the namespace would fail with EOVERFLOW
        if (write_file("/proc/self/setgroups", "deny") || write_file("/proc/self/uid_map", c->uid_map) ||
            write_file("/proc/self/gid_map", c->gid_map)) {
            send_msg(c->msg_fd, MSG_SETUP_FAILED, STEP_MAPS, errno, 0, 0, 0, 0);
            _exit(126);
        }
    } else if (ns && want_net && !net && unshare(CLONE_NEWNET) == 0) {  // CAP_SYS_ADMIN without root
        net = 1;
    }
    const int guard = want_net && !net;
    // with a pid namespace the leader and its init stay behind and count against the limit too
    const long long nproc = (userns ? c->lim->max_procs : c->nproc_shared) + (pidns ? 2 : 0);
    send_msg(c->msg_fd, MSG_ISOLATION, net, guard, pidns, userns, (int)getuid(), 0);
    if (!pidns) exec_python(c, guard, nproc);

    const pid_t init = fork();  // pid 1 of the new pid namespace
    if (init < 0) {
        send_msg(c->msg_fd, MSG_SETUP_FAILED, STEP_FORK, errno, 0, 0, 0, 0);
        _exit(126);
    }
    if (init == 0) init_main(c, guard, nproc);
    int st;
    while (waitpid(init, &st, 0) < 0 && errno == EINTR) {
    }
    _exit(0);
}

// ---- the parent side ----------------------------------------------------------------------------

// Tasks (processes and threads) owned by uid: what RLIMIT_NPROC counts outside a user namespace.
static long long count_tasks(uid_t uid) {
    DIR *d = opendir("/proc");
    if (!d) return 0;
    long long n = 0;
    char path[300], line[256];
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        struct stat st;
        snprintf(path, sizeof path, "/proc/%s", e->d_name);
        if (stat(path, &st) || st.st_uid != uid) continue;
        snprintf(path, sizeof path, "/proc/%s/status", e->d_name);
        FILE *f = fopen(path, "re");
        long long threads = 1;
        while (f && fgets(line, sizeof line, f))
            if (!strncmp(line, "Threads:", 8)) threads = atoll(line + 8);
        if (f) fclose(f);
        n += threads;
    }
    closedir(d);
    return n;
}

static int memfd(const char *name) { return memfd_create(name, MFD_CLOEXEC); }

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// fd's bytes [off, off + n) into a new NUL-terminated string.
static char *read_range(int fd, off_t off, size_t n, size_t *len) {
    char *s = hy_malloc(n + 1);
    size_t got = 0;
    while (got < n) {
        const ssize_t r = pread(fd, s + got, n - got, off + (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    s[got] = '\0';
    *len = got;
    return s;
}

static const char *step_name(int step) {
    switch (step) {
    case STEP_DROP: return "dropping to the sandbox uid";
    case STEP_MAPS: return "writing user namespace id maps";
    case STEP_FORK: return "forking the namespace's first process";
    }
    return "setup";
}

int hy_sandbox_run_python(const hy_sandbox_limits *lim, const char *dir, const char *script, const char *stdin_data,
                          size_t stdin_len, hy_sandbox_result *res) {
    memset(res, 0, sizeof *res);
    if (lim->cpu_s < 1 || lim->wall_s <= 0 || lim->max_procs < 1 || !lim->mem_bytes || !lim->file_bytes)
        return hy_fail("code sandbox: limits must be positive (cpu_s %d, wall_s %g, max_procs %d)", lim->cpu_s,
                       lim->wall_s, lim->max_procs);
    char *python = hy_sandbox_find_python(lim);
    if (!python) return -1;
    if (!lim->allow_network && hy_sandbox_write(dir, GUARD_NAME, GUARD_SOURCE, sizeof GUARD_SOURCE - 1)) {
        free(python);
        return -1;
    }
    hy_strbuf script_path, guard_path, home, tmp;
    hy_strbuf_init(&script_path);
    hy_strbuf_init(&guard_path);
    hy_strbuf_init(&home);
    hy_strbuf_init(&tmp);
    hy_strbuf_addf(&script_path, "%s/%s", dir, script);
    hy_strbuf_addf(&guard_path, "%s/%s", dir, GUARD_NAME);
    hy_strbuf_addf(&home, "HOME=%s", dir);
    hy_strbuf_addf(&tmp, "TMPDIR=%s", dir);
    char *argv_plain[] = {python, "-I", "-B", script_path.s, NULL};
    char *argv_guard[] = {python, "-I", "-B", guard_path.s, script_path.s, NULL};
    char *envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", home.s, tmp.s, "LANG=C.UTF-8", "LC_ALL=C.UTF-8", NULL};

    child_ctx c;
    memset(&c, 0, sizeof c);
    c.lim = lim;
    c.python = python;
    c.argv_plain = argv_plain;
    c.argv_guard = argv_guard;
    c.envp = envp;
    c.dir = dir;
    c.uid = sandbox_uid();
    c.gid = sandbox_gid();
    snprintf(c.uid_map, sizeof c.uid_map, "%u %u 1", (unsigned)c.uid, (unsigned)c.uid);
    snprintf(c.gid_map, sizeof c.gid_map, "%u %u 1", (unsigned)c.gid, (unsigned)c.gid);
    c.nproc_shared = count_tasks(c.uid) + lim->max_procs;
    struct rlimit nofile;
    c.max_fd = getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < 65536 ? (int)nofile.rlim_cur : 65536;

    int pipe_fds[2] = {-1, -1};
    c.in_fd = stdin_data ? memfd("hy_stdin") : open("/dev/null", O_RDONLY | O_CLOEXEC);
    c.out_fd = memfd("hy_stdout");
    c.err_fd = memfd("hy_stderr");
    int rc = 0;
    if (c.in_fd < 0 || c.out_fd < 0 || c.err_fd < 0 || pipe2(pipe_fds, O_CLOEXEC)) {
        rc = hy_fail("code sandbox: cannot create stdio files or the report pipe: %s", strerror(errno));
        goto done;
    }
    for (size_t off = 0; stdin_data && off < stdin_len;) {
        const ssize_t w = write(c.in_fd, stdin_data + off, stdin_len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            rc = hy_fail("code sandbox: writing stdin: %s", strerror(errno));
            goto done;
        }
        off += (size_t)w;
    }
    if (stdin_data) lseek(c.in_fd, 0, SEEK_SET);
    c.msg_fd = pipe_fds[1];

    const double t0 = now_s();
    const pid_t pid = fork();
    if (pid < 0) {
        rc = hy_fail("code sandbox: fork: %s", strerror(errno));
        goto done;
    }
    if (pid == 0) leader_main(&c);
    setpgid(pid, pid);  // also here, so a timeout right away still finds the group
    close(pipe_fds[1]);
    pipe_fds[1] = -1;

    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    for (long sleep_us = 1000;;) {
        const pid_t r = wait4(pid, &st, WNOHANG, &ru);
        if (r == pid || (r < 0 && errno != EINTR)) break;
        if (now_s() - t0 >= lim->wall_s) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR) {
            }
            res->wall_timeout = 1;
            break;
        }
        const struct timespec ts = {0, sleep_us * 1000};
        nanosleep(&ts, NULL);
        if (sleep_us < 10000) sleep_us += 1000;
    }
    res->wall_s = now_s() - t0;
    kill(-pid, SIGKILL);  // whatever is left in the group (background children) goes too
    res->cpu_s = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);

    int have_status = 0, setup_step = 0, setup_errno = 0, exec_errno = 0;
    fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);  // every writer has exited or exec'd, but never block
    for (msg m; read(pipe_fds[0], &m, sizeof m) == (ssize_t)sizeof m;) {
        if (m.kind == MSG_ISOLATION) {
            res->net_namespace = m.a;
            res->net_guard = m.b;
            res->pid_namespace = m.c;
            res->user_namespace = m.d;
            res->uid = m.e;
        } else if (m.kind == MSG_SETUP_FAILED) {
            setup_step = m.a;
            setup_errno = m.b;
        } else if (m.kind == MSG_EXEC_FAILED) {
            exec_errno = m.a;
        } else if (m.kind == MSG_STATUS) {
            st = m.a;
            res->cpu_s = 1e-6 * (double)m.cpu_us;
            have_status = 1;
        }
    }
    if (setup_step) {
        rc = hy_fail("code sandbox: %s: %s", step_name(setup_step), strerror(setup_errno));
        goto done;
    }
    if (exec_errno) {
        rc = hy_fail("code sandbox: cannot execute %s as uid %d: %s", python, res->uid, strerror(exec_errno));
        goto done;
    }
    if (res->pid_namespace && !have_status && !res->wall_timeout) {
        // init died without reporting: only an outside SIGKILL does that
        st = W_EXITCODE(0, SIGKILL);
    }
    if (!res->wall_timeout && WIFEXITED(st)) {
        res->exited = 1;
        res->exit_code = WEXITSTATUS(st);
    } else {
        res->term_signal = res->wall_timeout ? SIGKILL : WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    }
    struct stat so, se;
    fstat(c.out_fd, &so);
    fstat(c.err_fd, &se);
    const size_t out_n = (size_t)so.st_size < lim->keep_stdout_bytes ? (size_t)so.st_size : lim->keep_stdout_bytes;
    res->out = read_range(c.out_fd, 0, out_n, &res->out_len);
    const size_t err_n = se.st_size < ERR_KEEP ? (size_t)se.st_size : ERR_KEEP;
    res->err = read_range(c.err_fd, se.st_size - (off_t)err_n, err_n, &res->err_len);

done:
    if (rc) hy_sandbox_result_free(res);
    if (c.in_fd >= 0) close(c.in_fd);
    if (c.out_fd >= 0) close(c.out_fd);
    if (c.err_fd >= 0) close(c.err_fd);
    if (pipe_fds[0] >= 0) close(pipe_fds[0]);
    if (pipe_fds[1] >= 0) close(pipe_fds[1]);
    hy_strbuf_free(&script_path);
    hy_strbuf_free(&guard_path);
    hy_strbuf_free(&home);
    hy_strbuf_free(&tmp);
    free(python);
    return rc;
}

void hy_sandbox_result_free(hy_sandbox_result *res) {
    free(res->out);
    free(res->err);
    memset(res, 0, sizeof *res);
}
