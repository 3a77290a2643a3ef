// Multi-turn environment episodes on the engine (see episode.h).
#include "rollout/episode.h"

#include <stdlib.h>
#include <string.h>

#include "common/hy_error.h"
#include "evals/env.h"
#include "rollout/local_source.h"

typedef struct {
    int64_t id;  // engine id of the sequence
    hy_env *env;
    hy_gen_params p;  // each turn's parameters: held, the environment's stop strings; seed: the sample's
    int turns;
} episode;

// The RNG seed of turn t ≥ 1 of a sample whose first turn sampled with seed s (submit_n's p.seed + i):
// hy_engine_append re-seeds the sequence, and samples that made the same tool call hold the same
// state, so each sample's later turns need their own stream, and each turn another one (splitmix64).
static uint64_t turn_seed(uint64_t s, int t) {
    uint64_t z = s + 0x9E3779B97F4A7C15ull * (uint64_t)t;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

struct hy_episodes {
    hy_engine *e;
    const hy_tokenizer *tok;
    const hy_config *cfg;
    episode *ep;
    int n, cap;
};

hy_episodes *hy_episodes_new(hy_engine *e, const hy_tokenizer *tok, const hy_config *cfg) {
    hy_episodes *x = hy_calloc(1, sizeof *x);
    x->e = e;
    x->tok = tok;
    x->cfg = cfg;
    return x;
}

static void episode_free(episode *ep) { hy_env_destroy(ep->env); }

void hy_episodes_destroy(hy_episodes *x) {
    if (!x) return;
    for (int i = 0; i < x->n; i++) episode_free(&x->ep[i]);
    free(x->ep);
    free(x);
}

const char *hy_episode_meta(const proto_gen_request *r, const char *key) {
    for (uint32_t i = 0; i < r->metadata.n; i++)
        if (!strcmp(r->metadata.items[i].key, key)) return r->metadata.items[i].value;
    return NULL;
}

static episode *find(const hy_episodes *x, int64_t id) {
    for (int i = 0; i < x->n; i++)
        if (x->ep[i].id == id) return &x->ep[i];
    return NULL;
}

int hy_episodes_owns(const hy_episodes *x, int64_t id) { return find(x, id) != NULL; }

int hy_episodes_start(hy_episodes *x, const proto_gen_request *r, int64_t *ids) {
    if (!x->tok) return hy_fail("request %llu: environment episodes need the model's tokenizer", (unsigned long long)r->id);
    const char *seed_text = hy_episode_meta(r, "env_seed"), *params = hy_episode_meta(r, "env_params");
    char *end = NULL;
    const unsigned long long seed = seed_text ? strtoull(seed_text, &end, 10) : 0;
    if (!seed_text || !*seed_text || *end)
        return hy_fail("request %llu: metadata env_seed is missing or not an unsigned integer", (unsigned long long)r->id);
    hy_env **envs = hy_calloc(r->n, sizeof *envs);
    int rc = 0;
    for (uint32_t i = 0; i < r->n && !rc; i++) {
        char *obs = NULL;
        rc = hy_env_new(&envs[i], r->env_id, params ? params : "");
        if (!rc) rc = hy_env_reset(envs[i], seed, &obs);  // the same problem as the learner's prompt
        free(obs);
    }
    hy_gen_params p;
    hy_gen_params_from_request(r, &p);
    p.hold = 1;
    if (!rc) {
        const char *const *stops = hy_env_stop_strings(envs[0]);
        p.n_stop = 0;
        while (stops[p.n_stop]) p.n_stop++;
        p.stop = stops;
        rc = hy_engine_submit_n(x->e, r->prompt, (int)r->n_prompt, &p, (int)r->n, ids);
    }
    if (rc) {
        for (uint32_t i = 0; i < r->n; i++) hy_env_destroy(envs[i]);
        free(envs);
        return hy_fail_prefix("request %llu (environment %s)", (unsigned long long)r->id, r->env_id);
    }
    for (uint32_t i = 0; i < r->n; i++) {
        if (x->n == x->cap) {
            x->cap = x->cap ? 2 * x->cap : 16;
            x->ep = hy_realloc(x->ep, sizeof *x->ep * (size_t)x->cap);
        }
        x->ep[x->n] = (episode){ids[i], envs[i], p, 0};
        x->ep[x->n++].p.seed = p.seed + i;  // what submit_n gave sample i's first turn
    }
    free(envs);
    return 0;
}

// The text of a generated turn, a final eos left out.
static char *turn_text(const hy_episodes *x, const hy_result *res) {
    int n = res->n_new;
    const int32_t *ids = res->tokens + res->turn_start;
    for (int k = 0; n > 0 && k < x->cfg->n_eos; k++)
        if (ids[n - 1] == x->cfg->eos_token_ids[k]) {
            n--;
            break;
        }
    char *text = NULL;
    size_t len = 0;
    if (hy_tokenizer_decode(x->tok, ids, n, 1, &text, &len)) text = hy_strdup("");
    return text;
}

static int end_episode(hy_episodes *x, episode *ep, int *n_turns, int rc) {
    *n_turns = ep->turns;
    hy_engine_release(x->e, ep->id);
    episode_free(ep);
    *ep = x->ep[--x->n];
    return rc;
}

int hy_episodes_on_result(hy_episodes *x, const hy_result *res, int *n_turns) {
    episode *ep = find(x, res->id);
    if (!ep) return hy_fail("sequence %lld is not an episode", (long long)res->id);
    ep->turns++;
    // A turn cut by a length limit, or too many turns: the episode ends where it is (the learner's
    // replay scores it, normally 0 since the environment never said done).
    if (res->finish == HY_FINISH_LENGTH || res->finish == HY_FINISH_MAX_LEN || ep->turns >= HY_EPISODE_MAX_TURNS)
        return end_episode(x, ep, n_turns, 1);
    char *text = turn_text(x, res);
    hy_env_step_result sr;
    int rc = hy_env_step(ep->env, text, &sr);
    free(text);
    if (rc) return end_episode(x, ep, n_turns, -1);
    if (sr.done || !sr.observation[0]) {
        hy_env_step_result_free(&sr);
        return end_episode(x, ep, n_turns, 1);
    }
    int32_t *ids = NULL;
    int n = 0;
    rc = hy_tokenizer_encode(x->tok, sr.observation, strlen(sr.observation), &ids, &n);
    hy_env_step_result_free(&sr);
    // The engine's max_len bounds the whole episode: the next turn gets the room left after the
    // observation, and an observation that leaves none ends the episode at the length limit.
    hy_engine_stats st;
    hy_engine_stats_get(x->e, &st);
    const int room = st.max_len - res->n - n;
    hy_gen_params turn = ep->p;
    turn.seed = turn_seed(ep->p.seed, ep->turns);
    if (turn.max_tokens > room) turn.max_tokens = room;
    if (!rc && n > 0 && room > 0) rc = hy_engine_append(x->e, ep->id, ids, n, &turn);
    free(ids);
    if (rc || n == 0 || room <= 0) return end_episode(x, ep, n_turns, rc ? -1 : 1);
    return 0;
}
