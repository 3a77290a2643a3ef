// Running an untrusted python3 program in a child process with limits: the code verifier's engine.
//
// A run forks a leader that isolates itself, then execs python3 (or forks it, see below) in a
// scratch directory with stdin from a file or /dev/null and stdout/stderr into files there. What
// is enforced, in the order the leader sets it up:
//   process group  the leader makes its own group; on the wall-clock timeout, and after every run,
//                  the parent SIGKILLs the whole group, so children that stay in it never outlive
//                  the run.
//   network        a new network namespace (only a loopback that is down): no socket reaches the
//                  host or beyond. Needs root, CAP_SYS_ADMIN or unprivileged user namespaces. When
//                  none is available the program runs under a Python-level guard instead (socket
//                  creation for anything but AF_UNIX raises OSError): that stops ordinary library
//                  code, not a program that goes around the socket module (ctypes, _socket,
//                  subprocess + curl). hy_sandbox_result says which one applied.
//   user           a parent running as root drops to uid/gid 65534 (nobody) with no supplementary
//                  groups, so RLIMIT_NPROC binds and the program cannot write root's files (where
//                  65534 is not mapped, e.g. inside `unshare -r`, the run fails rather than run as
//                  root). Not as
//                  root, the program runs as the calling user and can read and write whatever that
//                  user can: the filesystem is NOT isolated.
//   user namespace when permitted, a fresh one mapping only that uid, so RLIMIT_NPROC counts just
//                  the sandbox's processes; otherwise the limit is set to the uid's current task
//                  count plus the budget (racy when several sandboxes share a uid).
//   pid namespace  when permitted, python3 runs under a small init of ours (pid 1 of a new pid
//                  namespace; python3 itself stays an ordinary process with ordinary signals): when
//                  python3 exits or is killed, init exits and the kernel kills every process left
//                  in the namespace, including ones that left the process group with setsid().
//   rlimits        RLIMIT_CPU (soft = hard = cpu_s: SIGKILL at the limit), RLIMIT_AS (mem_bytes;
//                  Python raises MemoryError), RLIMIT_NPROC (max_procs processes and threads),
//                  RLIMIT_FSIZE (file_bytes per file, output files included), RLIMIT_CORE 0.
//   wall clock     the parent polls and SIGKILLs the group (and so the pid namespace) at wall_s.
//   environment    a fixed minimal environment (PATH=/usr/local/bin:/usr/bin:/bin, HOME and TMPDIR
//                  the scratch directory, C.UTF-8), python3 -I -B (no user site, no PYTHON* vars),
//                  signal dispositions reset, inherited file descriptors above 2 closed.
// Not enforced: filesystem reads and writes outside the scratch directory (only file permissions
// stand in the way), disk use across many files, kernel attack surface. For untrusted model code
// at scale, run the verifier inside a container or VM as well; this layer makes honest mistakes
// (infinite loops, memory hogs, fork bombs, accidental network use) harmless and reproducible.
//
// The interpreter: limits.python when set (a path, or a name searched in PATH), else $HY_PYTHON,
// else the first python3 in /usr/local/bin, /usr/bin, /bin, else in $PATH. The system one comes
// first because a root parent's venv or pyenv under /root is unreadable to uid 65534.
//
// Thread safety: runs may proceed from several threads at once. Between fork and exec the child
// makes only async-signal-safe system calls. The parent must not set SIGCHLD to SIG_IGN (the run
// reaps its own child with wait4).
#ifndef HY_EVALS_SANDBOX_H
#define HY_EVALS_SANDBOX_H

#include <stddef.h>

typedef struct {
    int cpu_s;                // CPU seconds per process, ≥ 1 (RLIMIT_CPU)
    double wall_s;            // wall-clock seconds for the whole run
    size_t mem_bytes;         // address space per process (RLIMIT_AS)
    int max_procs;            // processes + threads the program may have (RLIMIT_NPROC)
    size_t file_bytes;        // largest file it may write (RLIMIT_FSIZE), its stdout included
    size_t keep_stdout_bytes; // how much stdout the result keeps
    int allow_network;        // 1 = skip the network namespace and the guard
    int no_namespaces;        // 1 = make no namespaces: the fallback path (tests, odd kernels)
    const char *python;       // NULL = resolved as described above
} hy_sandbox_limits;

// cpu 5 s, wall 10 s, 1 GiB, 32 processes, 16 MiB files, keep 1 MiB of stdout, no network,
// namespaces where permitted.
hy_sandbox_limits hy_sandbox_limits_default(void);

typedef struct {
    int exited;        // 1: exit_code holds the status; 0: killed by term_signal (or timed out)
    int exit_code;
    int term_signal;
    int wall_timeout;  // 1 when the parent killed it at wall_s
    double wall_s, cpu_s;  // elapsed, and CPU used by the main process (user + system)
    int net_namespace, net_guard;  // network isolation: kernel namespace, or the Python guard
    int pid_namespace, user_namespace;
    int uid;           // uid the program ran as
    char *out;         // stdout, its first keep_stdout_bytes (NUL-terminated)
    size_t out_len;
    char *err;         // stderr, its last 4 KiB (NUL-terminated)
    size_t err_len;
} hy_sandbox_result;

// A new empty scratch directory under $TMPDIR (or /tmp), owned by the uid programs will run as.
// *dir: caller frees (after hy_sandbox_dir_remove).
int hy_sandbox_dir_new(char **dir);
// Writes dir/name (a plain file name) with text[0..len).
int hy_sandbox_write(const char *dir, const char *name, const char *text, size_t len);
// Removes dir and everything the program left in it (best effort for what it made unremovable).
void hy_sandbox_dir_remove(const char *dir);

// Runs python3 on dir/script with cwd dir and stdin_data[0..stdin_len) on stdin (NULL: /dev/null).
// 0 with *res filled whenever the program ran, however it ended; −1 when it could not be started
// (interpreter missing or not executable as the sandbox uid, fork or setup failure), message set.
int hy_sandbox_run_python(const hy_sandbox_limits *lim, const char *dir, const char *script, const char *stdin_data,
                          size_t stdin_len, hy_sandbox_result *res);
void hy_sandbox_result_free(hy_sandbox_result *res);

// The interpreter a run would use (new string), or NULL with a message when there is none.
char *hy_sandbox_find_python(const hy_sandbox_limits *lim);

#endif
