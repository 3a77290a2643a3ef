// The online RL loop (see online_rl.h).
#include "learner/online_rl.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/atomic_file.h"
#include "common/hy_error.h"
#include "evals/env.h"
#include "evals/reward_client.h"
#include "learner/json_fields.h"
#include "learner/train_log.h"
#include "learner/train_state.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    const hy_online_config *c;
    const hy_tokenizer *tok;
    const hy_model *m;
    long size;      // task samples (−1: a generator)
    long *perm;     // (size) the walk over a bounded task
    proto_ctx *zctx;            // with a reward server: its client
    hy_reward_client *rewards;
} loop_ctx;

static long prompt_index(const loop_ctx *x, long s, int j) {
    const long i = (s - 1) * x->c->groups_per_step + j;
    return x->size < 0 ? i : x->perm[i % x->size];
}

static uint64_t env_seed(const hy_online_config *c, long s, int j) {
    return c->task_seed * 1000003ull + (uint64_t)((s - 1) * c->groups_per_step + j);
}

// Held-out episodes are reset with seeds from here on (training: task_seed·1000003 + 0, 1, ...).
#define HELD_OUT_SEED_BASE 1000000000000ull
// Request ids of held-out episodes (training requests: step·G + j, far below).
#define HELD_OUT_ID_BASE (1ull << 40)

// The first observation of the episode reset with seed, as a sample (one user message).
static int env_sample(const hy_online_config *c, uint64_t seed, hy_task_sample *smp) {
    hy_env *env;
    char *obs = NULL;
    if (hy_env_new(&env, c->env_name, c->env_params ? c->env_params : "")) return -1;
    const int rc = hy_env_reset(env, seed, &obs);
    hy_env_destroy(env);
    if (rc) return -1;
    memset(smp, 0, sizeof *smp);
    smp->n_messages = 1;
    smp->messages = hy_calloc(1, sizeof *smp->messages);
    smp->messages[0].role = hy_strdup("user");
    smp->messages[0].content = hy_strdup(obs);
    smp->messages[0].content_len = strlen(obs);
    smp->prompt = obs;
    smp->id = hy_strdup(c->env_name);
    smp->answer = hy_strdup("");
    smp->verifier = hy_strdup("");
    return 0;
}

// The environment's reward for a finished episode: its generated turns replayed through a fresh
// copy reset with the same seed. 0 when the episode ended without the environment saying done.
static int env_reward(const loop_ctx *x, uint64_t seed, const proto_trajectory *tr, double *reward, int *turns);

static uint64_t request_id(const hy_online_config *c, long s, int j) {
    return (uint64_t)s * (uint64_t)c->groups_per_step + (uint64_t)j;
}

static int issue_step(loop_ctx *x, hy_rollout_source *src, long s) {
    const hy_online_config *c = x->c;
    for (int j = 0; j < c->groups_per_step; j++) {
        hy_task_sample smp;
        const long idx = c->env_name ? (long)env_seed(c, s, j) : prompt_index(x, s, j);
        if (c->env_name ? env_sample(c, (uint64_t)idx, &smp) : hy_task_sample_get(c->task, idx, &smp)) return -1;
        int32_t *ids = NULL;
        int n = 0;
        int rc = hy_eval_prompt_tokens(x->tok, &smp, c->chat, &ids, &n);
        hy_task_sample_free(&smp);
        if (rc) return -1;
        char index_text[32];
        snprintf(index_text, sizeof index_text, "%ld", idx);
        proto_str_pair meta[3] = {{"task_index", index_text}, {"env_seed", index_text},
                                  {"env_params", (char *)(c->env_params ? c->env_params : "")}};
        const uint64_t id = request_id(c, s, j);
        proto_gen_request r = {0};
        r.id = id;
        r.group_id = id;
        r.prompt = ids;
        r.n_prompt = (uint32_t)n;
        r.sampling = (proto_sampling){c->temperature, c->top_p, c->top_k, c->seed + id * 4096u, true, 0};
        r.n = (uint32_t)c->group_size;
        r.max_tokens = (uint32_t)c->max_tokens;
        r.metadata = c->env_name ? (proto_str_map){meta + 1, 2} : (proto_str_map){meta, 1};
        r.env_id = (char *)c->env_name;
        rc = src->submit(src->ctx, &r);
        free(ids);
        if (rc) return -1;
    }
    return 0;
}

// The generated text of a completion: generated tokens only, a final eos left out.
static char *completion_text(const loop_ctx *x, const proto_trajectory *tr) {
    int32_t *ids = hy_malloc(sizeof *ids * (tr->n_completion + 1));
    int n = 0;
    for (uint32_t i = 0; i < tr->n_completion; i++)
        if (tr->generated[i]) ids[n++] = tr->completion[i];
    const hy_config *cfg = &x->m->cfg;
    for (int e = 0; n > 0 && e < cfg->n_eos; e++)
        if (ids[n - 1] == cfg->eos_token_ids[e]) {
            n--;
            break;
        }
    char *text = NULL;
    size_t len = 0;
    if (hy_tokenizer_decode(x->tok, ids, n, 1, &text, &len)) text = hy_strdup("");
    free(ids);
    return text;
}

typedef struct {
    double reward_sum, correct, gen_tokens, completion_len, score_errors, gen_errors, turns;
    int n;
} step_rollout_stats;

// Rewards of one group's completions from the reward server (docs/evals.md, "Reward server"): the
// sample's verifier name, the completion text and the reference answer, one batch per group. A
// completion the server could not score (its error, or no answer in time) gets reward 0 and counts
// as a scoring error.
static void remote_rewards(loop_ctx *x, long s, const hy_task_sample *smp, const proto_trajectory *tr, char **texts,
                           int n, double *rewards, step_rollout_stats *rs) {
    proto_reward_request *req = hy_calloc((size_t)n + 1, sizeof *req);
    proto_reward_result *res = hy_calloc((size_t)n + 1, sizeof *res);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (texts[i]) req[m++] = (proto_reward_request){tr[i].id, smp->verifier, texts[i], NULL, 0, smp->answer, {0}};
    if (hy_reward_client_score(x->rewards, req, m, res, 120000))
        fprintf(stderr, "hybrid: step %ld: reward server: %s\n", s, hy_last_error());
    for (int i = 0, k = 0; i < n; i++) {
        if (!texts[i]) continue;
        if (res[k].error && res[k].error[0]) {
            rs->score_errors++;
            fprintf(stderr, "hybrid: step %ld: completion not scored (reward 0): %s\n", s, res[k].error);
        } else {
            rewards[i] = res[k].reward;
        }
        proto_reward_result_free(&res[k++]);
    }
    free(req);
    free(res);
}

// Scores the step's trajectories and adds them to d (group j = prompt j); stores them.
static int score_step(loop_ctx *x, long s, proto_trajectory **traj, int *n_traj, hy_rl_data *d,
                      step_rollout_stats *rs) {
    const hy_online_config *c = x->c;
    memset(rs, 0, sizeof *rs);
    for (int j = 0; j < c->groups_per_step; j++) {
        hy_task_sample smp = {0};
        if (!c->env_name && hy_task_sample_get(c->task, prompt_index(x, s, j), &smp)) return -1;
        run_store_trajectory *rows = hy_calloc((size_t)n_traj[j] + 1, sizeof *rows);
        char **texts = hy_calloc((size_t)n_traj[j] + 1, sizeof *texts);
        int32_t **versions = hy_calloc((size_t)n_traj[j] + 1, sizeof *versions);
        for (int i = 0; i < n_traj[j]; i++) {
            const proto_trajectory *tr = &traj[j][i];
            if (tr->finish_reason == PROTO_FINISH_ERROR) {
                rs->gen_errors++;
                continue;
            }
            texts[i] = completion_text(x, tr);
        }
        double *rewards = hy_calloc((size_t)n_traj[j] + 1, sizeof *rewards);
        int *turns = hy_calloc((size_t)n_traj[j] + 1, sizeof *turns);
        if (x->rewards) remote_rewards(x, s, &smp, traj[j], texts, n_traj[j], rewards, rs);
        for (int i = 0; i < n_traj[j]; i++) {
            const proto_trajectory *tr = &traj[j][i];
            if (!texts[i]) continue;
            hy_verdict v;
            turns[i] = 1;
            if (x->rewards) continue;
            if (c->env_name ? env_reward(x, env_seed(c, s, j), tr, &rewards[i], &turns[i])
                            : hy_task_check(&smp, texts[i], NULL, &v)) {
                rs->score_errors++;
                fprintf(stderr, "hybrid: step %ld: completion not scored (reward 0): %s\n", s, hy_last_error());
            } else if (!c->env_name) {
                rewards[i] = v.reward;
            }
        }
        for (int i = 0; i < n_traj[j]; i++) {
            const proto_trajectory *tr = &traj[j][i];
            if (!texts[i]) continue;
            const double reward = rewards[i];
            rs->turns += turns[i];
            versions[i] = hy_malloc(sizeof(int32_t) * (tr->n_completion + 1));
            uint64_t oldest = UINT64_MAX;
            for (uint32_t k = 0; k < tr->n_completion; k++) {
                versions[i][k] = (int32_t)tr->weight_version[k];
                if (tr->generated[k] && tr->weight_version[k] < oldest) oldest = tr->weight_version[k];
            }
            if (tr->n_completion > 0)
                hy_rl_data_add(d, j, tr->prompt, (int)tr->n_prompt, tr->completion, (int)tr->n_completion,
                               tr->generated, tr->logprobs, versions[i], reward);
            rs->reward_sum += reward;
            rs->correct += reward >= HY_EVAL_PASS_REWARD;
            rs->gen_tokens += tr->n_completion;
            rs->completion_len += tr->n_completion;
            rs->n++;
            rows[i] = (run_store_trajectory){s,
                                             (int64_t)tr->id,
                                             (int64_t)tr->group_id,
                                             oldest == UINT64_MAX ? -1 : (int64_t)oldest,
                                             tr->prompt,
                                             (int)tr->n_prompt,
                                             tr->completion,
                                             (int)tr->n_completion,
                                             tr->generated,
                                             tr->logprobs,
                                             versions[i],
                                             reward,
                                             proto_finish_name(tr->finish_reason),
                                             texts[i],
                                             NULL};
        }
        if (c->store) {  // keep the ones that were generated (error placeholders carry nothing)
            int m = 0;
            for (int i = 0; i < n_traj[j]; i++)
                if (texts[i]) rows[m++] = rows[i];
            if (m && run_store_trajectory_add(c->store, c->run_id, rows, m))
                fprintf(stderr, "hybrid: warning: trajectories of step %ld not stored: %s\n", s, hy_last_error());
        }
        for (int i = 0; i < n_traj[j]; i++) {
            free(texts[i]);
            free(versions[i]);
        }
        free(rewards);
        free(turns);
        free(texts);
        free(versions);
        free(rows);
        if (!c->env_name) hy_task_sample_free(&smp);
    }
    return 0;
}

static int env_reward(const loop_ctx *x, uint64_t seed, const proto_trajectory *tr, double *reward, int *turns) {
    const hy_online_config *c = x->c;
    hy_env *env;
    char *obs = NULL;
    if (hy_env_new(&env, c->env_name, c->env_params ? c->env_params : "")) return -1;
    int rc = hy_env_reset(env, seed, &obs);
    free(obs);
    *reward = 0;
    *turns = 0;
    const hy_config *cfg = &x->m->cfg;
    for (uint32_t i = 0; !rc && i < tr->n_completion;) {
        if (!tr->generated[i]) {
            i++;
            continue;
        }
        uint32_t k = i;
        while (k < tr->n_completion && tr->generated[k]) k++;
        int n = (int)(k - i);
        for (int e = 0; n > 0 && e < cfg->n_eos; e++)
            if (tr->completion[i + (uint32_t)n - 1] == cfg->eos_token_ids[e]) {
                n--;
                break;
            }
        char *text = NULL;
        size_t len = 0;
        if (hy_tokenizer_decode(x->tok, tr->completion + i, n, 1, &text, &len)) text = hy_strdup("");
        hy_env_step_result sr;
        rc = hy_env_step(env, text, &sr);
        free(text);
        (*turns)++;
        i = k;
        if (rc) break;
        const int done = sr.done;
        if (done) *reward = sr.reward;
        hy_env_step_result_free(&sr);
        if (done) break;
    }
    hy_env_destroy(env);
    return rc;
}

static void report_eval(const hy_online_config *c, long step, const hy_eval_result *r);

int hy_online_eval(const hy_online_config *c, const hy_model *m, const hy_tokenizer *tok, long step,
                   hy_eval_result *r) {
    if (hy_eval_run(m, tok, c->eval_task, &c->eval, r, NULL, NULL)) return hy_fail_prefix("evaluation at step %ld", step);
    report_eval(c, step, r);
    return 0;
}

// Held-out episodes through the rollout source with the weights it holds now: eval.n_prompts
// episodes of fresh seeds, eval.samples each at the evaluation temperature, the environment's
// reward by replay; pass@1, pass@k and the mean reward as for a task.
static int env_eval(loop_ctx *x, hy_rollout_source *src, long step, hy_eval_result *r) {
    const hy_online_config *c = x->c;
    const hy_eval_options *o = &c->eval;
    memset(r, 0, sizeof *r);
    r->k = o->samples;
    double t0 = now_s(), reward_sum = 0;
    int rc = 0;
    for (int i = 0; i < o->n_prompts && !rc; i++) {
        const uint64_t seed = c->task_seed * 1000003ull + HELD_OUT_SEED_BASE + (uint64_t)i;
        hy_task_sample smp;
        int32_t *ids = NULL;
        int n = 0;
        if (env_sample(c, seed, &smp)) return -1;
        rc = hy_eval_prompt_tokens(x->tok, &smp, c->chat, &ids, &n);
        hy_task_sample_free(&smp);
        if (rc) break;
        char seed_text[32];
        snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)seed);
        proto_str_pair meta[2] = {{"env_seed", seed_text}, {"env_params", (char *)(c->env_params ? c->env_params : "")}};
        proto_gen_request q = {0};
        q.id = q.group_id = HELD_OUT_ID_BASE + (uint64_t)step * (uint64_t)o->n_prompts + (uint64_t)i;
        q.prompt = ids;
        q.n_prompt = (uint32_t)n;
        q.sampling = (proto_sampling){o->temperature, 1.0f, 0, o->seed + q.id * 4096u, true, 0};
        q.n = (uint32_t)o->samples;
        q.max_tokens = (uint32_t)o->max_tokens;
        q.metadata = (proto_str_map){meta, 2};
        q.env_id = (char *)c->env_name;
        rc = src->submit(src->ctx, &q);
        free(ids);
    }
    for (int i = 0; i < o->n_prompts && !rc; i++) {
        const uint64_t seed = c->task_seed * 1000003ull + HELD_OUT_SEED_BASE + (uint64_t)i;
        proto_trajectory *tr = NULL;
        int n = 0, passed = 0;
        rc = src->collect(src->ctx, HELD_OUT_ID_BASE + (uint64_t)step * (uint64_t)o->n_prompts + (uint64_t)i, &tr, &n);
        for (int k = 0; k < n; k++) {
            double reward = 0;
            int turns = 0;
            if (!rc && tr[k].finish_reason != PROTO_FINISH_ERROR && env_reward(x, seed, &tr[k], &reward, &turns))
                rc = -1;
            passed += reward >= HY_EVAL_PASS_REWARD;
            reward_sum += reward;
            r->generated_tokens += tr[k].n_completion;
            proto_trajectory_free(&tr[k]);
        }
        free(tr);
        if (rc) break;
        r->pass_at_1 += (double)passed / (n > 0 ? n : 1);
        r->pass_at_k += hy_eval_pass_at_k(n, passed, o->samples);
        r->n_completions += n;
        r->n_prompts++;
    }
    if (rc) return hy_fail_prefix("held-out episodes at step %ld", step);
    if (r->n_prompts) r->pass_at_1 /= r->n_prompts, r->pass_at_k /= r->n_prompts;
    r->mean_reward = r->n_completions ? reward_sum / r->n_completions : 0;
    r->seconds = now_s() - t0;
    report_eval(c, step, r);
    return 0;
}

static void report_eval(const hy_online_config *c, long step, const hy_eval_result *r) {
    if (c->progress) {
        fprintf(c->progress, "eval %s at step %ld: pass@1 %.3f", c->eval_name, step, r->pass_at_1);
        if (r->k > 1) fprintf(c->progress, ", pass@%d %.3f", r->k, r->pass_at_k);
        fprintf(c->progress, " over %d prompts (%.1f s)\n", r->n_prompts, r->seconds);
    }
    if (c->store) {
        char k_name[32];
        snprintf(k_name, sizeof k_name, "pass@%d", r->k);
        if (run_store_eval_add(c->store, c->run_id, step, c->eval_name, "pass@1", r->pass_at_1, r->n_prompts) ||
            (r->k > 1 && run_store_eval_add(c->store, c->run_id, step, c->eval_name, k_name, r->pass_at_k,
                                            r->n_prompts)) ||
            run_store_eval_add(c->store, c->run_id, step, c->eval_name, "mean_reward", r->mean_reward,
                               r->n_completions))
            fprintf(stderr, "hybrid: warning: evaluation not stored: %s\n", hy_last_error());
    }
}

int hy_run_state_write(const char *out, const char *phase, long step, const char *checkpoint) {
    char path[4200];
    snprintf(path, sizeof path, "%s/run_state.json", out);
    json_t *o = json_pack("{s:s, s:I, s:s}", "phase", phase, "step", (json_int_t)step, "checkpoint", checkpoint);
    char *text = json_dumps(o, JSON_INDENT(2));
    json_decref(o);
    const int rc = hy_atomic_write(path, text, strlen(text));
    free(text);
    return rc;
}

int hy_run_state_read(const char *out, int *found, char *phase, size_t phase_n, long *step, char *checkpoint,
                      size_t checkpoint_n) {
    char path[4200];
    snprintf(path, sizeof path, "%s/run_state.json", out);
    *found = 0;
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    fclose(f);
    json_error_t err;
    json_t *o = json_load_file(path, 0, &err);
    if (!o) return hy_fail("%s:%d: %s", path, err.line, err.text);
    const char *ph, *ck;
    json_int_t st;
    if (json_unpack_ex(o, &err, 0, "{s:s, s:I, s:s}", "phase", &ph, "step", &st, "checkpoint", &ck)) {
        json_decref(o);
        return hy_fail("%s: %s", path, err.text);
    }
    snprintf(phase, phase_n, "%s", ph);
    snprintf(checkpoint, checkpoint_n, "%s", ck);
    *step = (long)st;
    *found = 1;
    json_decref(o);
    return 0;
}

static int save(const hy_online_config *c, hy_trainer *t, long s, long tokens_seen) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/step-%06ld", c->out, s);
    hy_train_state st = {0};
    st.step = s;
    st.skipped = t->skipped;
    st.tokens_seen = tokens_seen;
    st.seed = c->seed;
    if (hy_checkpoint_save(dir, t->model, t, &st, c->config_yaml, c->tokenizer_path) ||
        hy_run_state_write(c->out, "rl", s, dir))
        return -1;
    if (c->store && run_store_checkpoint_add(c->store, c->run_id, s, dir))
        fprintf(stderr, "hybrid: warning: checkpoint not stored: %s\n", hy_last_error());
    if (c->progress) fprintf(c->progress, "hybrid: checkpoint %s\n", dir);
    return 0;
}

static void format_eta(char *buf, size_t n, double s) {
    const long v = s > 0 ? (long)(s + 0.5) : 0;
    snprintf(buf, n, "%ld:%02ld:%02ld", v / 3600, v / 60 % 60, v % 60);
}

int hy_online_rl_run(const hy_online_config *c, hy_trainer *t, const hy_tokenizer *tok, hy_rollout_source *src) {
    loop_ctx x = {c, tok, t->model, c->task ? hy_task_size(c->task) : -1, NULL, NULL, NULL};
    if (x.size > 0 && c->train_size > 0 && c->train_size < x.size) x.size = c->train_size;
    if (x.size == 0) return hy_fail("the training task has no samples");
    if (x.size > 0) {  // a seeded walk over a bounded task
        x.perm = hy_malloc(sizeof *x.perm * (size_t)x.size);
        for (long i = 0; i < x.size; i++) x.perm[i] = i;
        hy_rng r;
        hy_rng_init(&r, c->task_seed ^ 0x9e3779b97f4a7c15ull);
        for (long i = x.size - 1; i > 0; i--) {
            const long k = (long)(hy_rng_next(&r) % (uint64_t)(i + 1));
            const long tmp = x.perm[i];
            x.perm[i] = x.perm[k];
            x.perm[k] = tmp;
        }
    }
    if (c->reward_server) {
        proto_socket_opts so;
        proto_socket_opts_default(&so);
        if (!(x.zctx = proto_ctx_new()) || hy_reward_client_new(&x.rewards, x.zctx, c->reward_server, &so)) {
            if (x.zctx) proto_ctx_destroy(x.zctx);
            free(x.perm);
            return hy_fail_prefix("reward server %s", c->reward_server);
        }
    }
    hy_rl_options ro = c->rl;
    ro.use_versions = 1;
    ro.loss.max_staleness = c->max_staleness;
    ro.start_version = 0;
    proto_trajectory **traj = hy_calloc((size_t)c->groups_per_step, sizeof *traj);
    int *n_traj = hy_calloc((size_t)c->groups_per_step, sizeof *n_traj);
    hy_train_log log;
    hy_train_log_init(&log, c->steps, c->start_step + 1, t->model->table.n_params, 0);
    long issued = c->start_step, tokens_seen = 0;
    double gen_tokens = 0, t_start = now_s(), last_eval = -1;
    int rc = 0;
    const int eval_env = c->env_name && c->eval.n_prompts > 0;
    if ((c->eval_task || eval_env) && c->eval_at_start && c->start_step == 0) {
        hy_eval_result er;
        rc = eval_env ? env_eval(&x, src, 0, &er) : hy_online_eval(c, t->model, tok, 0, &er);
        last_eval = er.pass_at_1;
    }
    for (long s = c->start_step + 1; s <= c->steps && !rc; s++) {
        for (; issued < s + c->max_staleness && issued < c->steps && !rc; issued++) rc = issue_step(&x, src, issued + 1);
        for (int j = 0; j < c->groups_per_step && !rc; j++)
            rc = src->collect(src->ctx, request_id(c, s, j), &traj[j], &n_traj[j]);
        if (rc) break;
        hy_rl_data d;
        hy_rl_data_init(&d);
        step_rollout_stats rs;
        rc = score_step(&x, s, traj, n_traj, &d, &rs);
        for (int j = 0; j < c->groups_per_step; j++) {
            for (int i = 0; i < n_traj[j]; i++) proto_trajectory_free(&traj[j][i]);
            free(traj[j]);
            traj[j] = NULL;
            n_traj[j] = 0;
        }
        if (rc) {
            hy_rl_data_free(&d);
            break;
        }
        hy_rl_data_finish(&d);
        const double lr = hy_lr_at(&c->schedule, s);
        hy_step_stats st = {0};
        hy_rl_stepper xs;
        hy_rl_stepper_init(&xs, t, &d, NULL, &ro, c->micro_tokens);
        int *seqs = hy_malloc(sizeof *seqs * (size_t)(d.ds.n + 1));
        for (int i = 0; i < d.ds.n; i++) seqs[i] = i;
        if (d.ds.n > 0) rc = hy_rl_prepare(&xs, seqs, d.ds.n, (int)(s - 1));
        if (!rc && d.ds.n > 0) rc = hy_rl_step(&xs, lr, &st);
        free(seqs);
        double sync_s = 0;
        if (!rc && s < c->steps) rc = src->publish(src->ctx, (uint64_t)s, &sync_s);  // nobody generates after the last
        gen_tokens += rs.gen_tokens;
        tokens_seen += st.tokens;
        if (!rc && (c->eval_task || eval_env) && ((c->eval_every > 0 && s % c->eval_every == 0) || s == c->steps)) {
            hy_eval_result er;
            if (eval_env && s == c->steps) rc = src->publish(src->ctx, (uint64_t)s, &sync_s);  // evaluate the last
            if (!rc) rc = eval_env ? env_eval(&x, src, s, &er) : hy_online_eval(c, t->model, tok, s, &er);
            last_eval = er.pass_at_1;
        }
        char extra[1024] = "";
        const hy_rl_step_stats *r = &xs.stats;
        const double n = rs.n > 0 ? rs.n : 1;
        snprintf(extra, sizeof extra,
                 ", \"groups\": %d, \"dropped_groups\": %d, \"trajectories\": %d, \"stale_tokens\": %d, "
                 "\"updates\": %d",
                 c->groups_per_step, r->adv.n_dropped_groups, rs.n, r->rl.n_stale_tokens, r->updates);
        hy_json_member_append(extra, sizeof extra, RUN_METRIC_REWARD, rs.reward_sum / n);
        hy_json_member_append(extra, sizeof extra, RUN_METRIC_ACCURACY, rs.correct / n);
        hy_json_member_append(extra, sizeof extra, "completion_len", rs.completion_len / n);
        if (c->env_name) hy_json_member_append(extra, sizeof extra, "turns", rs.turns / n);
        hy_json_member_append(extra, sizeof extra, RUN_METRIC_CLIP_FRACTION,
                              r->rl.clip_low_frac + r->rl.clip_high_frac);
        hy_json_member_append(extra, sizeof extra, RUN_METRIC_MISMATCH_KL, r->rl.mismatch_kl);
        hy_json_member_append(extra, sizeof extra, "ratio_mean", r->rl.ratio_mean);
        hy_json_member_append(extra, sizeof extra, "generation_errors", rs.gen_errors);
        hy_json_member_append(extra, sizeof extra, "score_errors", rs.score_errors);
        hy_json_member_append(extra, sizeof extra, RUN_METRIC_SYNC_TIME, sync_s);
        hy_rl_stepper_free(&xs);
        hy_rl_data_free(&d);
        if (rc) break;
        hy_step_metrics metrics;
        if ((rc = hy_train_log_task_step(&log, c->metrics, NULL, s, lr, &st, t->skipped, extra, &metrics))) break;
        const double elapsed = now_s() - t_start;
        const double gen_rate = elapsed > 0 ? gen_tokens / elapsed : 0;
        if (metrics.n < HY_STEP_METRICS_MAX) {
            metrics.names[metrics.n] = "generated_tokens_per_s";
            metrics.values[metrics.n++] = gen_rate;
        }
        if (c->store && run_store_metrics_log(c->store, c->run_id, s, metrics.n, metrics.names, metrics.values))
            fprintf(stderr, "hybrid: warning: metrics of step %ld not stored: %s\n", s, hy_last_error());
        if (c->progress) {
            char eta[32];
            format_eta(eta, sizeof eta, elapsed / (double)(s - c->start_step) * (double)(c->steps - s));
            fprintf(c->progress, "rl step %ld/%ld | reward %.3f | acc %.3f", s, c->steps, rs.reward_sum / n,
                    rs.correct / n);
            if (last_eval >= 0) fprintf(c->progress, " | eval %.3f", last_eval);
            fprintf(c->progress, " | loss %.4f | %.0f gen tok/s | sync %.3f s | ETA %s\n", st.loss, gen_rate, sync_s,
                    eta);
            fflush(c->progress);
        }
        if ((c->save_every > 0 && s % c->save_every == 0) || s == c->steps) rc = save(c, t, s, tokens_seen);
    }
    free(traj);
    free(n_traj);
    free(x.perm);
    hy_reward_client_destroy(x.rewards);
    if (x.zctx) proto_ctx_destroy(x.zctx);
    return rc;
}
