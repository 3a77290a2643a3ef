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
//
// Calls with max_tq > 1 check both kernels attention_paged_cuda picks between: the tensor-core one
// (attention_paged_prefill.cu; "(tensor cores)", or a note when the shape is not one it takes)
// and the general one ("(general)"), then that attention_paged_cuda gives bit for bit the output
// of the one it should pick. Cases: a 512-query chunk beside decodes and a query-less sequence, the
// last 2048-query chunk of an 8k prompt, chunks of 7, 33, 64 and 1 queries in blocks of 5, a GQA
// group of 16 at D = 256, and D = 40 (general only). The output buffer has a NaN guard row past
// the last query row that must stay untouched.
//
// The CPU reference costs ~0.2 s of one core per query (32 heads) at 8k keys, so long chunks are
// checked on a sample of their query rows (the first 4, the last 4, the rest at random). A query
// at position p is checked against the reference run on a one-query sequence of p + 1 keys over
// the same blocks, which is the same arithmetic as that row of the whole chunk; the rows run in
// parallel on the host's cores (common/parallel.h).
//   usage: test_paged_gpu [--perf]   (--perf adds decode and prefill-chunk timings)
#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>

#include "gpu_test.h"

extern "C" {
#include "../../common/parallel.h"
}

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

// Query rows of a sequence of q_len queries that the test compares: all of them, or when there are
// more than `limit` (> 8), the first 4, the last 4 and limit − 8 others at random; ascending.
static std::vector<int> pick_rows(hy_rng *r, int q_len, int limit) {
    std::vector<int> rows;
    if (limit <= 0 || q_len <= limit) {
        rows.resize(q_len);
        std::iota(rows.begin(), rows.end(), 0);
        return rows;
    }
    std::vector<char> taken(q_len, 0);
    for (int i = 0; i < 4; i++) taken[i] = taken[q_len - 1 - i] = 1;
    for (int n = 8; n < limit;) {
        const int i = 4 + (int)(hy_rng_next(r) % (uint64_t)(q_len - 8));
        if (!taken[i]) taken[i] = 1, n++;
    }
    for (int i = 0; i < q_len; i++)
        if (taken[i]) rows.push_back(i);
    return rows;
}

// The CPU reference for single query rows of a case (hy_parallel_for items).
struct ref_rows {
    const paged_case *c;
    const float *q, *k_pool, *v_pool;
    float *o;                         // (rows, H, D)
    std::vector<int32_t> seq, n_keys;  // per row: its sequence, and the keys it sees
    std::vector<size_t> q_row;        // per row: its row of q / o
    int bs, H, H_kv, D;
    float scale;
};

static void ref_row(void *ctx, int k) {
    const ref_rows *rr = (const ref_rows *)ctx;
    const size_t row_elems = (size_t)rr->H * rr->D;
    const int32_t start = 0, len = 1;
    const paged_attn_shape s = {1, rr->c->table.data() + (size_t)rr->seq[k] * rr->c->max_blocks, rr->c->max_blocks,
                                rr->bs, &start, &len, &rr->n_keys[k], rr->H, rr->H_kv, rr->D, rr->scale};
    attention_paged_forward(&s, rr->o + k * row_elems, rr->q + rr->q_row[k] * row_elems, rr->k_pool, rr->v_pool);
}

// rows_per_seq: 0 = compare every query row, else at most that many per sequence (pick_rows).
static void test_paged(const char *label, const std::vector<int> &lens, const std::vector<int> &q_len, int bs, int H,
                       int H_kv, int D, uint64_t seed, int table_blocks = 0, int rows_per_seq = 0) {
    hy_rng r;
    hy_rng_init(&r, seed);
    paged_case c = make_case(&r, lens, q_len, bs, table_blocks);
    const int B = (int)lens.size(), width = H_kv * D;
    const size_t row_elems = (size_t)H * D;
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
    std::vector<float> q = normal_vec(&r, (size_t)c.Tq * row_elems, 1.0f);
    round_to_bf16(q);

    // The reference on the compared rows (on the host's cores): row k is query i of sequence b,
    // run as a one-query sequence of length p0 + i + 1 on b's blocks.
    ref_rows rr = {&c, q.data(), kp.data(), vp.data(), {}, {}, {}, {}, bs, H, H_kv, D, scale};
    for (int b = 0; b < B; b++)
        for (int i : pick_rows(&r, q_len[b], rows_per_seq)) {
            rr.seq.push_back(b);
            rr.n_keys.push_back(lens[b] - q_len[b] + i + 1);
            rr.q_row.push_back((size_t)c.q_start[b] + i);
        }
    const int n_ref = (int)rr.seq.size();
    std::vector<float> o_ref((size_t)n_ref * row_elems);
    rr.o = o_ref.data();
    hy_parallel_for(n_ref, ref_row, &rr);

    auto dq = upload_bf16(q), dk = upload_bf16(kp), dv = upload_bf16(vp);
    auto dt = upload(c.table), dqs = upload(c.q_start), dql = upload(c.q_len), dl = upload(c.lens);
    paged_attn_shape ds = {B, dt->p, c.max_blocks, bs, dqs->p, dql->p, dl->p, H, H_kv, D, scale};
    dev_buf<__nv_bfloat16> o(q.size() + row_elems);  // + a guard row
    const size_t ws_bytes = attention_paged_workspace_bytes(&ds, c.max_tq);
    dev_buf<unsigned char> ws(ws_bytes);

    // One launch on an all-NaN o (and workspace); the whole o, guard row included.
    auto launch_get = [&](auto launch) {
        CUDA_CHECK(cudaMemset(o.p, 0xff, o.n * sizeof(__nv_bfloat16)));
        CUDA_CHECK(cudaMemset(ws.p, 0xff, ws.n));
        launch();
        CUDA_CHECK(cudaDeviceSynchronize());
        return download_bf16(o.p, o.n);
    };
    // The compared rows against the reference, and the guard row for writes past the last query.
    auto check = [&](const char *path, const std::vector<float> &all) {
        std::vector<float> got((size_t)n_ref * row_elems);
        for (int k = 0; k < n_ref; k++)
            std::copy_n(all.begin() + rr.q_row[k] * row_elems, row_elems, got.begin() + k * row_elems);
        char what[128];
        snprintf(what, sizeof what, "%s o%s", label, path);
        int fail = check_bf16(what, got, o_ref);
        for (size_t e = q.size(); e < all.size(); e++)
            if (!std::isnan(all[e])) {
                fprintf(stderr, "  %s: wrote the guard row past the last query\n", what);
                fail = 1;
                break;
            }
        tally(fail);
    };

    if (c.max_tq == 1) {
        check(ws_bytes ? " (split)" : "", launch_get([&] {
            attention_paged_cuda(&ds, o.p, dq->p, dk->p, dv->p, 1, ws_bytes ? ws.p : nullptr, 0);
        }));
    } else {
        int rc = -1;
        const std::vector<float> tc = launch_get([&] {
            rc = attention_paged_prefill_cuda(&ds, o.p, dq->p, dk->p, dv->p, c.max_tq, 0);
        });
        if (rc == 0)
            check(" (tensor cores)", tc);
        else
            printf("  %s: not a shape the tensor-core kernel takes\n", label);
        const std::vector<float> gen = launch_get([&] {
            attention_paged_general_cuda(&ds, o.p, dq->p, dk->p, dv->p, c.max_tq, 0);
        });
        check(" (general)", gen);
        const std::vector<float> picked = launch_get([&] {
            attention_paged_cuda(&ds, o.p, dq->p, dk->p, dv->p, c.max_tq, ws_bytes ? ws.p : nullptr, 0);
        });
        const std::vector<float> &want = rc == 0 ? tc : gen;
        const int same = memcmp(picked.data(), want.data(), sizeof(float) * want.size()) == 0;
        printf("  %s: dispatch = %s bit for bit %s\n", label, rc == 0 ? "tensor cores" : "general",
               same ? "ok" : "FAIL");
        tally(!same);
    }
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

// Mean ms of one call of f over reps calls, after 3 warm-up calls.
template <class F>
static float time_ms(F f, int reps) {
    for (int i = 0; i < 3; i++) f();
    cudaEvent_t a, b;
    CUDA_CHECK(cudaEventCreate(&a));
    CUDA_CHECK(cudaEventCreate(&b));
    CUDA_CHECK(cudaEventRecord(a));
    for (int i = 0; i < reps; i++) f();
    CUDA_CHECK(cudaEventRecord(b));
    CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    CUDA_CHECK(cudaEventDestroy(a));
    CUDA_CHECK(cudaEventDestroy(b));
    return ms / reps;
}

// The decode path at B = 1 × 32k keys (the grid is all key splits) and B = 32 × 8k; then the last
// 2048-query chunk of an 8k prompt, alone and beside 32 decodes at 8k, on both max_tq > 1 kernels.
// Inputs are zeros: the kernels' time does not depend on the values.
static void perf() {
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    printf("timings on %s (H=32 H_kv=8 D=128, blocks of 16)\n", prop.name);
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
        const double us = 1e3 * time_ms([&] { attention_paged_cuda(&ds, o.p, q.p, kp.p, vp.p, 1, ws.p, 0); }, 20);
        // each K and V row of a KV head is read once for its whole group of q heads
        const double bytes = 2.0 * B * ctx * H_kv * D * sizeof(__nv_bfloat16);
        printf("  decode B=%-2d ctx=%-5d: %8.1f us, %6.0f GB/s of K+V (workspace %zu KB)\n", B, ctx, us,
               bytes / us / 1e3, ws_bytes >> 10);
        delete dt;
        delete dqs;
        delete dql;
        delete dl;
    }
    for (int n_decode : {0, 32}) {
        const int ctx = 8192, chunk = 2048, B = 1 + n_decode;
        hy_rng r;
        hy_rng_init(&r, 6);
        std::vector<int> lens(B, ctx), q_len(B, 1);
        q_len[0] = chunk;
        paged_case c = make_case(&r, lens, q_len, bs);
        const size_t pool_elems = (size_t)c.n_blocks * bs * H_kv * D, q_elems = (size_t)c.Tq * H * D;
        dev_buf<__nv_bfloat16> kp(pool_elems), vp(pool_elems), q(q_elems), o(q_elems);
        auto dt = upload(c.table), dqs = upload(c.q_start), dql = upload(c.q_len), dl = upload(c.lens);
        paged_attn_shape ds = {B, dt->p, c.max_blocks, bs, dqs->p, dql->p, dl->p, H, H_kv, D, 0.088f};
        // 4·D flops per (query, head, visible key): Q·Kᵀ and P·V
        double keys = (double)n_decode * ctx;
        for (int i = 0; i < chunk; i++) keys += ctx - chunk + i + 1;
        const double flop = 4.0 * D * H * keys;
        const float tc = time_ms([&] { attention_paged_prefill_cuda(&ds, o.p, q.p, kp.p, vp.p, chunk, 0); }, 20);
        const float gen = time_ms([&] { attention_paged_general_cuda(&ds, o.p, q.p, kp.p, vp.p, chunk, 0); }, 3);
        printf("  chunk %d @%d + %2d decodes @%d: tensor cores %7.3f ms %6.1f TFLOP/s, general %7.2f ms %5.2f "
               "TFLOP/s\n", chunk, ctx, n_decode, ctx, tc, flop / tc / 1e9, gen, flop / gen / 1e9);
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
    // max_tq > 1 on tensor cores: a chunk beside decodes (one ending on a block boundary, one of a
    // single key) and a query-less sequence between them; the last chunk of an 8k prompt; ragged
    // chunks in blocks of 5 (the first is a whole 7-token prompt); a GQA group of 16 at D = 256.
    // Long chunks compare 64 sampled rows: 5 and 13 s of one core's CPU reference.
    test_paged("chunk 512 @3000 + decodes H32/8 D128", {3000, 1, 1200, 17, 2048, 700, 5000}, {512, 1, 0, 1, 1, 1, 1},
               16, 32, 8, 128, 56, 0, 64);
    test_paged("chunk 2048 @8192 H32/8 D128", {8192}, {2048}, 16, 32, 8, 128, 57, 0, 64);
    test_paged("chunks 7,33,64,1 bs5 H4/4 D64", {7, 100, 375, 58}, {7, 33, 64, 1}, 5, 4, 4, 64, 58);
    test_paged("chunks bs16 H16/1 D256", {40, 97, 300}, {40, 20, 3}, 16, 16, 1, 256, 59);
    test_paged("chunks bs16 H4/2 D40 (general only)", {50, 200}, {50, 9}, 16, 4, 2, 40, 60);
    test_scatter(300, 256, 1000, 47);
    printf("%d checks, %d failed\n", n_checks, n_failed);
    if (want_perf) perf();
    return n_failed ? 1 : 0;
}
