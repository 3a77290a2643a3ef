// The host thread pool (common/parallel.h): every item runs exactly once whatever the thread
// count, items of uneven cost balance, the pool is reused across many calls, and calls made from
// several threads at once are serialised without losing items.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../common/parallel.h"
#include "check.h"

typedef struct {
    int *hits;
    long spin;  // work per item grows with i: uneven items
} job;

static void touch(void *ctx, int i) {
    job *j = ctx;
    volatile long x = 0;
    for (long k = 0; k < j->spin * (i % 7); k++) x += k;
    __atomic_fetch_add(&j->hits[i], 1, __ATOMIC_RELAXED);
}

static int all_once(const int *hits, int n) {
    for (int i = 0; i < n; i++)
        if (hits[i] != 1) return 0;
    return 1;
}

static void *caller(void *arg) {
    int *ok = arg;
    for (int r = 0; r < 50; r++) {
        int hits[300] = {0};
        job j = {hits, 10};
        hy_parallel_for(300, touch, &j);
        if (!all_once(hits, 300)) *ok = 0;
    }
    return NULL;
}

int main(void) {
    setenv("HY_THREADS", "4", 1);  // more threads than this machine may have cores: still correct
    CHECK(hy_parallel_threads() == 4, "pool of %d threads, HY_THREADS=4 asked", hy_parallel_threads());
    const int sizes[] = {0, 1, 3, 4, 5, 1000};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        const int n = sizes[s];
        int *hits = calloc((size_t)n + 1, sizeof *hits);
        job j = {hits, 200};
        hy_parallel_for(n, touch, &j);
        CHECK(all_once(hits, n), "%d items: each must run exactly once", n);
        free(hits);
    }
    int reused = 1;
    for (int r = 0; r < 2000 && reused; r++) {
        int hits[17] = {0};
        job j = {hits, 0};
        hy_parallel_for(17, touch, &j);
        reused = all_once(hits, 17);
    }
    CHECK(reused, "2000 calls in a row on the same pool");
    pthread_t t[3];
    int ok[3] = {1, 1, 1};
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, caller, &ok[i]);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    CHECK(ok[0] && ok[1] && ok[2], "three threads calling at once: every item once");
    return check_summary("test_parallel");
}
