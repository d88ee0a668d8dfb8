/* expect.c -- expectations: "METRIC OP NUMBER [after T] [before T]" (or "between A and
 * B") parsed at load time, evaluated after a run against metrics.h queries. Ratios are over
 * every request of the source whose start time is in the window; with no requests a ratio
 * is NaN and the expectation fails. Grammar: scenario.h and docs/SCENARIO-FORMAT.md. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "scenario_int.h"

#define COMPLETED_CLASSES ((1u << M_2XX) | (1u << M_3XX) | (1u << M_4XX) | (1u << M_5XX))
#define EXPECT_EXAMPLE "like \"browse.status_2xx_ratio >= 0.99 after 5s\""

typedef struct stat_def { const char *name; int stat; unsigned classes; double q; } stat_def_t;
static const stat_def_t stats[] = {
    { "requests", ST_REQUESTS, M_ALL_CLASSES, 0 },
    { "completed", ST_COMPLETED, COMPLETED_CLASSES, 0 },
    { "status_2xx_ratio", ST_RATIO, 1u << M_2XX, 0 },
    { "status_3xx_ratio", ST_RATIO, 1u << M_3XX, 0 },
    { "status_4xx_ratio", ST_RATIO, 1u << M_4XX, 0 },
    { "status_5xx_ratio", ST_RATIO, 1u << M_5XX, 0 },
    { "failed_ratio", ST_RATIO, M_FAILED, 0 },
    { "connect_timeout_ratio", ST_RATIO, 1u << M_CONNECT_TIMEOUT, 0 },
    { "reset_ratio", ST_RATIO, 1u << M_RESET, 0 },
    { "refused_ratio", ST_RATIO, 1u << M_REFUSED, 0 },
    { "response_timeout_ratio", ST_RATIO, 1u << M_RESPONSE_TIMEOUT, 0 },
    { "closed_ratio", ST_RATIO, 1u << M_CLOSED, 0 },
    { "latency_p50", ST_LATENCY_Q, COMPLETED_CLASSES, 0.5 },
    { "latency_p90", ST_LATENCY_Q, COMPLETED_CLASSES, 0.9 },
    { "latency_p99", ST_LATENCY_Q, COMPLETED_CLASSES, 0.99 },
    { "latency_p999", ST_LATENCY_Q, COMPLETED_CLASSES, 0.999 },
    { "latency_mean", ST_LATENCY_MEAN, COMPLETED_CLASSES, 0 },
    { NULL, 0, 0, 0 }
};

/* Statistics over what came back, written as calls: SOURCE.NAME("arg"[, "arg"]). */
typedef struct func_def { const char *name; int stat; int nargs; const char *usage; } func_def_t;
static const func_def_t funcs[] = {
    { "body_match_ratio", ST_BODY_MATCH, 1, "body_match_ratio(\"TEXT\")" },
    { "header_match_ratio", ST_HEADER_MATCH, 2, "header_match_ratio(\"NAME\", \"VALUE\")" },
    { NULL, 0, 0, NULL }
};

static const char *const op_text[] = { "<", "<=", ">", ">=", "==", "!=" };

void expect_clear(scn_expect_t *e)
{
    lb_free(e->text);
    lb_free(e->variant);
    lb_free(e->source);
    lb_free(e->counter);
    lb_free(e->arg[0]);
    lb_free(e->arg[1]);
    memset(e, 0, sizeof *e);
}

static int bad(scn_diag_t *d, elem_pos_t pos, const char *text, const char *why)
{
    return diag_set(d, pos, LB_EINVAL, "bad expectation '%s': %s", text, why);
}

/* Next whitespace-separated token of s at *i into tok (empty at the end). */
static void token(const char *s, size_t *i, char *tok, size_t n)
{
    while (isspace((unsigned char)s[*i])) (*i)++;
    size_t k = 0;
    while (s[*i] && !isspace((unsigned char)s[*i])) {
        if (k + 1 < n) tok[k++] = s[*i];
        (*i)++;
    }
    tok[k] = 0;
}

static int parse_metric(const char *m, scn_expect_t *e, char *why, size_t n)
{
    if (strncmp(m, "counter.", 8) == 0) {
        if (!m[8]) { snprintf(why, n, "counter. needs a name, like counter.drops.no-route"); return -1; }
        e->stat = ST_COUNTER;
        e->counter = lb_strdup(m + 8);
        return 0;
    }
    const char *dot = strchr(m, '.');
    if (!dot || dot == m || !dot[1]) {
        snprintf(why, n, "'%s' is not SOURCE.STAT; expected a metric like browse.requests, "
                 "client.failed_ratio or counter.drops", m);
        return -1;
    }
    char *src = lb_strndup(m, (size_t)(dot - m));
    const char *st = dot + 1;
    e->source = strcmp(src, "client") == 0 ? NULL : src;
    if (!e->source) lb_free(src);
    for (const stat_def_t *s = stats; s->name; s++)
        if (strcmp(s->name, st) == 0) {
            e->stat = s->stat;
            e->classes = s->classes;
            e->q = s->q;
            return 0;
        }
    /* status_NNN_ratio */
    if (strncmp(st, "status_", 7) == 0 && isdigit((unsigned char)st[7]) &&
        isdigit((unsigned char)st[8]) && isdigit((unsigned char)st[9]) &&
        strcmp(st + 10, "_ratio") == 0) {
        int code = atoi(st + 7);
        if (code >= 100 && code <= 599) {
            e->stat = ST_STATUS_RATIO;
            e->status = code;
            return 0;
        }
    }
    for (const func_def_t *f = funcs; f->name; f++)
        if (strcmp(f->name, st) == 0) {
            snprintf(why, n, "%s needs its arguments: %s", st, f->usage);
            return -1;
        }
    const char *names[sizeof stats / sizeof *stats + sizeof funcs / sizeof *funcs];
    size_t k = 0;
    for (const stat_def_t *s = stats; s->name; s++) names[k++] = s->name;
    for (const func_def_t *f = funcs; f->name; f++) names[k++] = f->name;
    const char *close = closest_name(st, names, k);
    if (close)
        snprintf(why, n, "unknown statistic '%s'; did you mean '%s'?", st, close);
    else
        snprintf(why, n, "unknown statistic '%s'; expected requests, completed, "
                 "status_2xx_ratio (3xx, 4xx, 5xx, or an exact code like status_503_ratio), "
                 "failed_ratio, connect_timeout_ratio, reset_ratio, refused_ratio, "
                 "response_timeout_ratio, closed_ratio, latency_p50/p90/p99/p999/mean, "
                 "body_match_ratio(\"TEXT\") or header_match_ratio(\"NAME\", \"VALUE\")", st);
    return -1;
}

/* A call SOURCE.name(...) whose '(' is at text[*i]: its arguments are double-quoted
 * strings (\" and \\ escape) separated by commas; *i ends after ')'. Sets e->stat and
 * e->arg; returns 0, or -1 with why. */
static int parse_call(const char *name, const char *text, size_t *i, scn_expect_t *e,
                      char *why, size_t n)
{
    const func_def_t *f = NULL;
    for (const func_def_t *g = funcs; g->name; g++)
        if (strcmp(g->name, name) == 0) f = g;
    if (!f) {
        const char *names[sizeof funcs / sizeof *funcs];
        size_t k = 0;
        for (const func_def_t *g = funcs; g->name; g++) names[k++] = g->name;
        const char *close = closest_name(name, names, k);
        bool plain = false;
        for (const stat_def_t *s = stats; s->name; s++) plain |= strcmp(s->name, name) == 0;
        if (plain)
            snprintf(why, n, "'%s' takes no arguments", name);
        else if (close)
            snprintf(why, n, "unknown function '%s'; did you mean '%s'?", name, close);
        else
            snprintf(why, n, "unknown function '%s'; expected body_match_ratio(\"TEXT\") or "
                     "header_match_ratio(\"NAME\", \"VALUE\")", name);
        return -1;
    }
    e->stat = f->stat;
    int nargs = 0;
    (*i)++;                                         /* '(' */
    for (;;) {
        while (isspace((unsigned char)text[*i])) (*i)++;
        if (text[*i] == ')' && nargs == 0) { (*i)++; break; }
        if (text[*i] != '"') {
            snprintf(why, n, "%s: argument %d at character %zu is not a quoted string; "
                     "expected %s", f->name, nargs + 1, *i + 1, f->usage);
            return -1;
        }
        LB_VEC(char) a = {0};
        (*i)++;
        while (text[*i] && text[*i] != '"') {
            if (text[*i] == '\\' && (text[*i + 1] == '"' || text[*i + 1] == '\\')) (*i)++;
            lb_vec_push(&a, text[*i]);
            (*i)++;
        }
        if (!text[*i]) {
            lb_vec_free(&a);
            snprintf(why, n, "%s: unterminated string in argument %d", f->name, nargs + 1);
            return -1;
        }
        (*i)++;                                     /* closing '"' */
        lb_vec_push(&a, '\0');
        if (nargs < 2) e->arg[nargs] = a.v;
        else lb_vec_free(&a);
        nargs++;
        while (isspace((unsigned char)text[*i])) (*i)++;
        if (text[*i] == ',') { (*i)++; continue; }
        if (text[*i] == ')') { (*i)++; break; }
        snprintf(why, n, "%s: expected ',' or ')' at character %zu", f->name, *i + 1);
        return -1;
    }
    if (nargs != f->nargs) {
        snprintf(why, n, "%s takes %d argument%s, got %d; expected %s", f->name, f->nargs,
                 f->nargs == 1 ? "" : "s", nargs, f->usage);
        return -1;
    }
    if (f->stat == ST_BODY_MATCH && !*e->arg[0]) {
        snprintf(why, n, "body_match_ratio(\"\") matches every body; give the text to find");
        return -1;
    }
    if (f->stat == ST_HEADER_MATCH && !*e->arg[0]) {
        snprintf(why, n, "header_match_ratio needs a header name");
        return -1;
    }
    return 0;
}

/* A number: plain ("0.99", "-1", "1e3"), a percentage ("1%"), or a duration in seconds. */
static bool parse_number(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end != s && !*end && isfinite(v)) { *out = v; return true; }
    size_t l = strlen(s);
    if (l > 1 && s[l - 1] == '%') {
        char *num = lb_strndup(s, l - 1);
        v = strtod(num, &end);
        bool ok = end != num && !*end && isfinite(v);
        lb_free(num);
        if (ok) { *out = v / 100; return true; }
        return false;
    }
    sim_time_t t;
    if (unit_duration(s, &t) == 0) { *out = (double)t / SIM_S; return true; }
    return false;
}

int expect_parse(const char *text, elem_pos_t pos, scn_expect_t *e, scn_diag_t *d)
{
    memset(e, 0, sizeof *e);
    e->text = lb_strdup(text);
    e->pos = pos;
    e->to = -1;
    char why[400];
    int rc = 0;
    size_t i = 0;
    /* METRIC: up to an operator character or whitespace */
    while (isspace((unsigned char)text[i])) i++;
    size_t m0 = i;
    while (text[i] && !isspace((unsigned char)text[i]) && !strchr("<>=!(", text[i])) i++;
    char *metric = lb_strndup(text + m0, i - m0);
    if (!*metric) {
        rc = bad(d, pos, text, "no metric; expected METRIC OP NUMBER [after T] [before T], "
                 EXPECT_EXAMPLE);
        goto out;
    }
    if (text[i] == '(') {
        /* SOURCE.FUNC("...") */
        const char *dot = strchr(metric, '.');
        if (dot && dot > metric && strncmp(metric, "counter.", 8) != 0) {
            char *src = lb_strndup(metric, (size_t)(dot - metric));
            e->source = strcmp(src, "client") == 0 ? NULL : src;
            if (!e->source) lb_free(src);
        }
        if (!dot || dot == metric || strncmp(metric, "counter.", 8) == 0) {
            snprintf(why, sizeof why, "'%s(...)' is not SOURCE.FUNCTION(...); expected a call "
                     "like browse.body_match_ratio(\"app1\")", metric);
            rc = bad(d, pos, text, why);
            goto out;
        }
        if (parse_call(dot + 1, text, &i, e, why, sizeof why) < 0) { rc = bad(d, pos, text, why); goto out; }
    } else if (parse_metric(metric, e, why, sizeof why) < 0) {
        rc = bad(d, pos, text, why);
        goto out;
    }
    /* OP */
    while (isspace((unsigned char)text[i])) i++;
    e->op = -1;
    for (int k = 0; k < 6; k++) {
        size_t l = strlen(op_text[k]);
        if (strncmp(text + i, op_text[k], l) == 0 && (e->op < 0 || l > strlen(op_text[e->op])))
            e->op = k;
    }
    if (e->op < 0) {
        rc = bad(d, pos, text, "expected an operator (<, <=, >, >=, ==, !=) after the metric");
        goto out;
    }
    i += strlen(op_text[e->op]);
    char tok[64], tok2[64];
    token(text, &i, tok, sizeof tok);
    if (!*tok) { rc = bad(d, pos, text, "expected a number after the operator"); goto out; }
    if (!parse_number(tok, &e->number)) {
        snprintf(why, sizeof why, "bad number '%s'; expected a number like 0.99, 1%% or 250ms", tok);
        rc = bad(d, pos, text, why);
        goto out;
    }
    bool have_after = false, have_before = false;
    for (;;) {
        token(text, &i, tok, sizeof tok);
        if (!*tok) break;
        bool after = strcmp(tok, "after") == 0, before = strcmp(tok, "before") == 0;
        bool between = strcmp(tok, "between") == 0;
        if (!after && !before && !between) {
            snprintf(why, sizeof why, "unexpected '%s'; expected 'after T', 'before T' or "
                     "'between A and B'", tok);
            rc = bad(d, pos, text, why);
            goto out;
        }
        if ((after && have_after) || (before && have_before) ||
            (between && (have_after || have_before))) {
            snprintf(why, sizeof why, "the window is given twice ('%s')", tok);
            rc = bad(d, pos, text, why);
            goto out;
        }
        token(text, &i, tok2, sizeof tok2);
        sim_time_t t;
        if (!*tok2 || unit_duration(tok2, &t) < 0) {
            snprintf(why, sizeof why, "expected a time like 5s after '%s'; got '%s'", tok, tok2);
            rc = bad(d, pos, text, why);
            goto out;
        }
        if (after || between) { e->from = t; have_after = true; }
        if (before) { e->to = t; have_before = true; }
        if (between) {
            token(text, &i, tok, sizeof tok);
            token(text, &i, tok2, sizeof tok2);
            if (strcmp(tok, "and") != 0 || unit_duration(tok2, &t) < 0) {
                rc = bad(d, pos, text, "expected 'between A and B' with times like 5s and 60s");
                goto out;
            }
            e->to = t;
            have_before = true;
        }
    }
out:
    lb_free(metric);
    if (rc < 0) expect_clear(e);
    return rc;
}

static bool compare(double v, int op, double x)
{
    if (isnan(v)) return false;
    switch (op) {
    case EX_LT: return v < x;
    case EX_LE: return v <= x;
    case EX_GT: return v > x;
    case EX_GE: return v >= x;
    case EX_EQ: return v == x;
    case EX_NE: return v != x;
    }
    return false;
}

void expect_eval(const scn_expect_t *e, const metrics_t *m, sim_time_t duration,
                 uint64_t status_count, scn_verdict_t *out)
{
    m_window_t w = { e->from, e->to < 0 ? duration : e->to };
    char a[32], b[32], win[80];
    snprintf(win, sizeof win, "[%s, %s)", unit_duration_str(w.from, a, sizeof a),
             unit_duration_str(w.to, b, sizeof b));
    out->text = e->text;
    out->pos = e->pos;
    /* a named source that never recorded anything has no index: zero requests */
    int src = -1;
    bool none = false;
    if (e->source) {
        src = metrics_source_find(m, e->source);
        none = src < 0;
    }
    uint64_t total = none ? 0 : metrics_requests(m, src, M_ALL_CLASSES, w);
    double v = NAN;
    switch (e->stat) {
    case ST_REQUESTS: case ST_COMPLETED: {
        uint64_t c = none ? 0 : metrics_requests(m, src, e->classes, w);
        v = (double)c;
        snprintf(out->detail, sizeof out->detail, "%llu of %llu requests in %s",
                 (unsigned long long)c, (unsigned long long)total, win);
        break;
    }
    case ST_RATIO: case ST_STATUS_RATIO: case ST_BODY_MATCH: case ST_HEADER_MATCH: {
        uint64_t c = e->stat != ST_RATIO ? status_count
                   : none ? 0 : metrics_requests(m, src, e->classes, w);
        if (total == 0) {
            snprintf(out->detail, sizeof out->detail, "no requests in window %s", win);
            break;
        }
        v = (double)c / (double)total;
        snprintf(out->detail, sizeof out->detail, "%.4g (%llu/%llu requests in %s)", v,
                 (unsigned long long)c, (unsigned long long)total, win);
        break;
    }
    case ST_LATENCY_Q: case ST_LATENCY_MEAN: {
        uint64_t c = none ? 0 : metrics_requests(m, src, e->classes, w);
        if (c == 0) {
            snprintf(out->detail, sizeof out->detail, "no completed requests in window %s", win);
            break;
        }
        if (e->stat == ST_LATENCY_Q) {
            sim_time_t t = metrics_latency_q(m, src, e->classes, e->q, w);
            if (t >= 0) v = (double)t / SIM_S;
        } else {
            v = metrics_latency_mean(m, src, e->classes, w) / SIM_S;
        }
        if (isnan(v))
            snprintf(out->detail, sizeof out->detail, "no latency recorded in window %s", win);
        else
            snprintf(out->detail, sizeof out->detail, "%.4gs (%s of %llu completed requests in %s)",
                     v, e->stat == ST_LATENCY_MEAN ? "mean" : e->q == 0.5 ? "p50" : e->q == 0.9
                     ? "p90" : e->q == 0.99 ? "p99" : "p999", (unsigned long long)c, win);
        break;
    }
    case ST_COUNTER: {
        int64_t c = metrics_counter(m, e->counter, w);
        v = (double)c;
        snprintf(out->detail, sizeof out->detail, "%lld in %s", (long long)c, win);
        break;
    }
    }
    out->value = v;
    out->pass = compare(v, e->op, e->number);
}

/* Body: the text occurs in the response body as recorded (its first bytes: the
 * simulation keeps small bodies whole, real mode the first METRICS_BODY_MAX bytes).
 * Header: a response header of that name (names compare case-blind, RFC 9110 5.1) whose
 * value is exactly the given one. No response (a timeout, a reset): no match. */
bool expect_response_matches(const scn_expect_t *e, const m_request_t *q)
{
    if (e->stat == ST_BODY_MATCH)
        return q->body && strstr(q->body, e->arg[0]) != NULL;
    if (e->stat != ST_HEADER_MATCH)
        return false;
    for (size_t i = 0; i < q->n_headers; i++)
        if (strcasecmp(q->headers[i].name, e->arg[0]) == 0 &&
            strcmp(q->headers[i].value, e->arg[1]) == 0)
            return true;
    return false;
}
