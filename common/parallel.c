// The host thread pool behind hy_parallel_for (see parallel.h).
//
// One job at a time: the caller publishes (fn, ctx, n) under the lock and bumps a generation
// number; the workers wake, take items from an atomic counter until it passes n, and the last one
// to finish signals the caller. Workers sleep on a condition variable between jobs.
#include "parallel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

enum { MAX_THREADS = 64 };

static struct {
    pthread_once_t once;
    pthread_mutex_t lock, call_lock;
    pthread_cond_t wake, done;
    int n_threads;  // workers + the caller
    unsigned long generation;
    void (*fn)(void *ctx, int i);
    void *ctx;
    int n;
    atomic_int next, busy;
} pool = {.once = PTHREAD_ONCE_INIT,
          .lock = PTHREAD_MUTEX_INITIALIZER,
          .call_lock = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

static void run_items(void) {
    for (int i; (i = atomic_fetch_add(&pool.next, 1)) < pool.n;) pool.fn(pool.ctx, i);
}

static void *worker(void *arg) {
    (void)arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (pool.generation == seen) pthread_cond_wait(&pool.wake, &pool.lock);
        seen = pool.generation;
        pthread_mutex_unlock(&pool.lock);
        run_items();
        pthread_mutex_lock(&pool.lock);
        if (atomic_fetch_sub(&pool.busy, 1) == 1) pthread_cond_signal(&pool.done);
    }
    return NULL;
}

static void start(void) {
    const char *env = getenv("HY_THREADS");
    long n = env && *env ? strtol(env, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > MAX_THREADS) n = MAX_THREADS;
    pool.n_threads = 1;
    for (long i = 1; i < n; i++) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, worker, NULL) == 0) pool.n_threads++;
        pthread_attr_destroy(&attr);
    }
}

int hy_parallel_threads(void) {
    pthread_once(&pool.once, start);
    return pool.n_threads;
}

void hy_parallel_for(int n, void (*fn)(void *ctx, int i), void *ctx) {
    if (n <= 0) return;
    if (n == 1 || hy_parallel_threads() == 1) {
        for (int i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&pool.call_lock);
    pthread_mutex_lock(&pool.lock);
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    atomic_store(&pool.next, 0);
    atomic_store(&pool.busy, pool.n_threads - 1);
    pool.generation++;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    run_items();
    pthread_mutex_lock(&pool.lock);
    while (atomic_load(&pool.busy) > 0) pthread_cond_wait(&pool.done, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_unlock(&pool.call_lock);
}
