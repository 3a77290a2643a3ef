// Paged-KV attention and the KV scatter (kernels/cuda/attention_paged.cu) against the CPU
// reference (kernels/cpu/attention_paged.c).
//
// Inputs are drawn in fp32 and rounded to bf16; both sides see the rounded values, and outputs
// pass under check_bf16 (2 × the bf16 rounding of the reference, gpu_test.h). Block tables are
// scrambled permutations of the pool, so a kernel that assumes contiguous blocks fails; every pool
// row no sequence may read holds NaN, so a kernel that reads past a causal limit or a sequence's
// blocks fails. Shapes are ragged: blocks of 16 and 64 and 5, one-token sequences, a sequence
// ending exactly on a block boundary, prefill chunks (q_len > 1) beside decodes, GQA groups of 1,
// 2, 4, 6 and 16, head dims 256, 128, 96, 64 and 16. The scatter is checked bit for bit.
//
// Decode batches (every q_len ≤ 1) take the split-key kernel. Its cases: 32k keys in one
// sequence, 32 sequences of 1 .. 9000 keys, short sequences in a wide block table (most key
// splits empty, as in the engine, whose tables are max_len wide), and a sequence without a query
// placed so that a write for it would land on its neighbour's output. The workspace starts as NaN,
// so a merge that reads a split nobody wrote fails.
//   usage: test_paged_gpu [--perf]   (--perf adds decode timings)
#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>

#include "gpu_test.h"

static int n_checks = 0, n_failed = 0;
static void tally(int fail) {
    n_checks++;
    n_failed += fail;
}

struct paged_case {
    std::vector<int32_t> table, q_start, q_len, lens;
    int max_blocks, n_blocks, Tq, max_tq, max_len;
};

// Scrambled block tables for sequences of lens tokens, pool of (blocks needed + spare) blocks.
// The table is table_blocks wide, or just wide enough for the longest sequence if that is more.
static paged_case make_case(hy_rng *r, const std::vector<int> &lens, const std::vector<int> &q_len, int bs,
                            int table_blocks = 0) {
    paged_case c;
    const int B = (int)lens.size();
    c.max_len = *std::max_element(lens.begin(), lens.end());
    c.max_tq = *std::max_element(q_len.begin(), q_len.end());
    c.max_blocks = std::max((c.max_len + bs - 1) / bs, table_blocks);
    int used = 0;
    for (int b = 0; b < B; b++) used += (lens[b] + bs - 1) / bs;
    c.n_blocks = used + 3;
    std::vector<int32_t> perm(c.n_blocks);
    std::iota(perm.begin(), perm.end(), 0);
    for (int i = c.n_blocks - 1; i > 0; i--) std::swap(perm[i], perm[hy_rng_next(r) % (uint64_t)(i + 1)]);
    c.table.assign((size_t)B * c.max_blocks, -1);
    int next = 0;
    for (int b = 0; b < B; b++)
        for (int i = 0; i * bs < lens[b]; i++) c.table[(size_t)b * c.max_blocks + i] = perm[next++];
    c.q_start.resize(B);
    c.Tq = 0;
    for (int b = 0; b < B; b++) {
        c.q_start[b] = c.Tq;
        c.Tq += q_len[b];
    }
    c.q_len.assign(q_len.begin(), q_len.end());
    c.lens.assign(lens.begin(), lens.end());
    return c;
}

static void test_paged(const char *label, const std::vector<int> &lens, const std::vector<int> &q_len, int bs, int H,
                       int H_kv, int D, uint64_t seed, int table_blocks = 0) {
    hy_rng r;
    hy_rng_init(&r, seed);
    paged_case c = make_case(&r, lens, q_len, bs, table_blocks);
    const int B = (int)lens.size(), width = H_kv * D;
    const float scale = 1.0f / sqrtf((float)D);
    const size_t pool_elems = (size_t)c.n_blocks * bs * width;
    std::vector<float> kp(pool_elems, NAN), vp(pool_elems, NAN);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < lens[b]; j++) {
            const size_t row = (size_t)c.table[(size_t)b * c.max_blocks + j / bs] * bs + j % bs;
            // unit-variance uniform rather than normal: the long cases draw ~10^8 values, and
            // Box-Muller would take most of the test's time
            for (int e = 0; e < width; e++) {
                kp[row * width + e] = bf16_round(hy_rng_range(&r, -1.7320508f, 1.7320508f));
                vp[row * width + e] = bf16_round(hy_rng_range(&r, -1.7320508f, 1.7320508f));
            }
        }
    std::vector<float> q = normal_vec(&r, (size_t)c.Tq * H * D, 1.0f), o_ref(q.size());
    round_to_bf16(q);
    paged_attn_shape hs = {B, c.table.data(), c.max_blocks, bs, c.q_start.data(), c.q_len.data(), c.lens.data(),
                           H, H_kv, D, scale};
    attention_paged_forward(&hs, o_ref.data(), q.data(), kp.data(), vp.data());

    auto dq = upload_bf16(q), dk = upload_bf16(kp), dv = upload_bf16(vp);
    auto dt = upload(c.table), dqs = upload(c.q_start), dql = upload(c.q_len), dl = upload(c.lens);
    paged_attn_shape ds = hs;
    ds.block_table = dt->p;
    ds.q_start = dqs->p;
    ds.q_len = dql->p;
    ds.lens = dl->p;
    dev_buf<__nv_bfloat16> o(q.size());
    CUDA_CHECK(cudaMemset(o.p, 0xff, o.n * sizeof(__nv_bfloat16)));
    const size_t ws_bytes = attention_paged_workspace_bytes(&ds, c.max_tq);
    dev_buf<unsigned char> ws(ws_bytes);
    CUDA_CHECK(cudaMemset(ws.p, 0xff, ws.n));  // NaN partials
    attention_paged_cuda(&ds, o.p, dq->p, dk->p, dv->p, c.max_tq, ws_bytes ? ws.p : nullptr, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    char what[96];
    snprintf(what, sizeof what, "%s o%s", label, ws_bytes ? " (split)" : "");
    tally(check_bf16(what, download_bf16(o.p, o.n), o_ref));
    delete dq;
    delete dk;
    delete dv;
    delete dt;
    delete dqs;
    delete dql;
    delete dl;
}

static void test_scatter(int T, int width, int n_rows, uint64_t seed) {
    hy_rng r;
    hy_rng_init(&r, seed);
    std::vector<int32_t> rows(n_rows);
    std::iota(rows.begin(), rows.end(), 0);
    for (int i = n_rows - 1; i > 0; i--) std::swap(rows[i], rows[hy_rng_next(&r) % (uint64_t)(i + 1)]);
    rows.resize(T);
    std::vector<float> kv = normal_vec(&r, (size_t)T * width, 1.0f), want((size_t)n_rows * width, 7.0f);
    round_to_bf16(kv);
    kv_paged_write(want.data(), kv.data(), rows.data(), T, width);
    auto dpool = upload_bf16(std::vector<float>((size_t)n_rows * width, 7.0f));
    auto dkv = upload_bf16(kv);
    auto drows = upload(rows);
    kv_paged_write_cuda(dpool->p, dkv->p, drows->p, T, width, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<float> got = download_bf16(dpool->p, want.size());
    const int exact = memcmp(got.data(), want.data(), sizeof(float) * want.size()) == 0;
    printf("  %-28s %s\n", "kv scatter (exact)", exact ? "ok" : "FAIL");
    tally(!exact);
    delete dpool;
    delete dkv;
    delete drows;
}

// The decode path at B = 1 × 32k keys (the grid is all key splits) and B = 32 × 8k. Inputs are
// zeros: the kernel's time does not depend on the values.
static void perf() {
    printf("decode timings (H=32 H_kv=8 D=128, blocks of 16)\n");
    const int H = 32, H_kv = 8, D = 128, bs = 16;
    const int shapes[][2] = {{1, 32768}, {32, 8192}};
    for (const auto &shape : shapes) {
        const int B = shape[0], ctx = shape[1];
        hy_rng r;
        hy_rng_init(&r, 5);
        std::vector<int> lens(B, ctx), q_len(B, 1);
        paged_case c = make_case(&r, lens, q_len, bs);
        const size_t pool_elems = (size_t)c.n_blocks * bs * H_kv * D;
        dev_buf<__nv_bfloat16> kp(pool_elems), vp(pool_elems), q((size_t)B * H * D), o((size_t)B * H * D);
        auto dt = upload(c.table), dqs = upload(c.q_start), dql = upload(c.q_len), dl = upload(c.lens);
        paged_attn_shape ds = {B, dt->p, c.max_blocks, bs, dqs->p, dql->p, dl->p, H, H_kv, D, 0.088f};
        const size_t ws_bytes = attention_paged_workspace_bytes(&ds, 1);
        dev_buf<unsigned char> ws(ws_bytes);
        for (int i = 0; i < 3; i++) attention_paged_cuda(&ds, o.p, q.p, kp.p, vp.p, 1, ws.p, 0);
        cudaEvent_t a, b;
        CUDA_CHECK(cudaEventCreate(&a));
        CUDA_CHECK(cudaEventCreate(&b));
        const int reps = 20;
        CUDA_CHECK(cudaEventRecord(a));
        for (int i = 0; i < reps; i++) attention_paged_cuda(&ds, o.p, q.p, kp.p, vp.p, 1, ws.p, 0);
        CUDA_CHECK(cudaEventRecord(b));
        CUDA_CHECK(cudaEventSynchronize(b));
        float ms = 0;
        CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
        const double us = 1e3 * ms / reps;
        // each K and V row of a KV head is read once for its whole group of q heads
        const double bytes = 2.0 * B * ctx * H_kv * D * sizeof(__nv_bfloat16);
        printf("  decode B=%-2d ctx=%-5d: %8.1f us, %6.0f GB/s of K+V (workspace %zu KB)\n", B, ctx, us,
               bytes / us / 1e3, ws_bytes >> 10);
        CUDA_CHECK(cudaEventDestroy(a));
        CUDA_CHECK(cudaEventDestroy(b));
        delete dt;
        delete dqs;
        delete dql;
        delete dl;
    }
}

int main(int argc, char **argv) {
    const bool want_perf = argc > 1 && !strcmp(argv[1], "--perf");
    printf("paged KV attention\n");
    test_paged("decode bs16 H4/2 D128", {1, 77, 300, 64}, {1, 1, 1, 1}, 16, 4, 2, 128, 41);
    test_paged("decode bs64 H4/1 D64", {1, 77, 300, 128}, {1, 1, 1, 1}, 64, 4, 1, 64, 42);
    test_paged("decode bs5 H2/2 D16", {1, 77, 300}, {1, 1, 1}, 5, 2, 2, 16, 43);
    test_paged("prefill+decode bs16 H4/2 D128", {5, 77, 300, 40}, {5, 1, 40, 40}, 16, 4, 2, 128, 44);
    test_paged("long ctx 2047 bs16 H8/2 D128", {700, 2047}, {1, 1}, 16, 8, 2, 128, 45);
    test_paged("D256 bs16 H2/1", {33, 130}, {3, 64}, 16, 2, 1, 256, 46);
    // split-key decode; 32767 keys end one short of a block
    test_paged("decode 32767 keys H32/8 D128", {32767}, {1}, 16, 32, 8, 128, 48);
    {
        hy_rng r;
        hy_rng_init(&r, 49);
        std::vector<int> lens(32);
        for (int &n : lens) n = 1 + (int)(hy_rng_next(&r) % 9000);
        lens[3] = 1;
        lens[17] = 9000;
        test_paged("decode B32 1..9000 H32/8 D128", lens, std::vector<int>(32, 1), 16, 32, 8, 128, 50);
    }
    test_paged("decode short, 32k table", {1, 700, 2100}, {1, 1, 1}, 16, 32, 8, 128, 51, 2048);
    test_paged("decode bs16 H8/8 D64", {1, 333, 4000, 1500}, {1, 1, 1, 1}, 16, 8, 8, 64, 52);
    test_paged("decode bs64 H16/1 D256", {3000, 17}, {1, 1}, 64, 16, 1, 256, 53);
    test_paged("decode bs5 H12/2 D96", {2500, 1, 640}, {1, 1, 1}, 5, 12, 2, 96, 54);
    // q_start of both is 0: a write for the query-less sequence 0 would overwrite sequence 1's o
    test_paged("decode with q_len 0", {3000, 1200}, {0, 1}, 16, 32, 8, 128, 55);
    test_scatter(300, 256, 1000, 47);
    printf("%d checks, %d failed\n", n_checks, n_failed);
    if (want_perf) perf();
    return n_failed ? 1 : 0;
}
