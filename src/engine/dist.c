/* dist.c -- units ("30s", "1KB", "10Gbps", "50/s", "1%") and random distributions
 * (constant, exponential, uniform, truncated normal, lognormal) drawn through GSL from a
 * caller-supplied stream. Parsers are strict: a whole string must match, otherwise
 * LB_EPARSE; nothing here allocates. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <gsl/gsl_randist.h>
#include "lb.h"
#include "dist.h"

/* A truncated normal is redrawn while negative, at most this many times, then 0. */
#define DIST_NORMAL_REDRAWS 64

/* ---- numbers and suffixes --------------------------------------------------------------- */

/* Parses a non-negative decimal number ("12", "1.5", ".5") at s; *end after it. */
static int parse_number(const char *s, double *out, const char **end)
{
    const char *p = s;
    int digits = 0;
    while (isdigit((unsigned char)*p)) { p++; digits++; }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) { p++; digits++; }
    }
    if (!digits) return LB_EPARSE;
    /* strtod on exactly this span (the C locale's decimal point is '.') */
    char buf[64];
    size_t n = (size_t)(p - s);
    if (n >= sizeof buf) return LB_EPARSE;
    memcpy(buf, s, n);
    buf[n] = 0;
    *out = strtod(buf, NULL);
    *end = p;
    return 0;
}

/* Splits "  12.5 ms " into the number and the trimmed unit suffix (unit may be ""). */
static int split_unit(const char *s, double *num, char *unit, size_t unitlen)
{
    if (!s) return LB_EPARSE;
    while (isspace((unsigned char)*s)) s++;
    const char *end;
    if (parse_number(s, num, &end) < 0) return LB_EPARSE;
    while (isspace((unsigned char)*end)) end++;
    size_t n = strlen(end);
    while (n && isspace((unsigned char)end[n - 1])) n--;
    if (n >= unitlen) return LB_EPARSE;
    memcpy(unit, end, n);
    unit[n] = 0;
    return 0;
}

typedef struct unit_def { const char *name; double mult; } unit_def_t;

static const unit_def_t *find_unit(const unit_def_t *tab, const char *u, bool nocase)
{
    for (; tab->name; tab++)
        if (nocase ? strcasecmp(tab->name, u) == 0 : strcmp(tab->name, u) == 0) return tab;
    return NULL;
}

/* value * mult rounded, with overflow check against max. */
static int scale_int(double v, double mult, double max, int64_t *out)
{
    double x = v * mult;
    if (!isfinite(x) || x > max) return LB_EPARSE;
    *out = (int64_t)llround(x);
    return 0;
}

/* ---- units ------------------------------------------------------------------------------- */

static const unit_def_t duration_units[] = {
    { "ns", 1 }, { "us", 1e3 }, { "µs", 1e3 }, { "ms", 1e6 }, { "s", 1e9 },
    { "sec", 1e9 }, { "m", 60e9 }, { "min", 60e9 }, { "h", 3600e9 }, { NULL, 0 }
};

int unit_duration(const char *s, sim_time_t *out)
{
    double v;
    char u[16];
    if (split_unit(s, &v, u, sizeof u) < 0) return LB_EPARSE;
    if (!*u) {
        if (v != 0) return LB_EPARSE;    /* only a bare 0 needs no unit */
        *out = 0;
        return 0;
    }
    const unit_def_t *d = find_unit(duration_units, u, false);
    if (!d) return LB_EPARSE;
    int64_t x;
    if (scale_int(v, d->mult, 9.2e18, &x) < 0) return LB_EPARSE;
    *out = x;
    return 0;
}

static const unit_def_t size_units[] = {
    { "B", 1 }, { "KB", 1e3 }, { "MB", 1e6 }, { "GB", 1e9 }, { "TB", 1e12 },
    { "KiB", 1024.0 }, { "MiB", 1048576.0 }, { "GiB", 1073741824.0 },
    { "TiB", 1099511627776.0 }, { NULL, 0 }
};

int unit_size(const char *s, uint64_t *out)
{
    double v;
    char u[16];
    if (split_unit(s, &v, u, sizeof u) < 0) return LB_EPARSE;
    double mult = 1;
    if (*u) {
        const unit_def_t *d = find_unit(size_units, u, true);
        if (!d) return LB_EPARSE;
        mult = d->mult;
    } else if (v != floor(v)) {
        return LB_EPARSE;                /* a bare number is whole bytes */
    }
    int64_t x;
    if (scale_int(v, mult, 9.2e18, &x) < 0) return LB_EPARSE;
    *out = (uint64_t)x;
    return 0;
}

static const unit_def_t bandwidth_units[] = {
    { "bps", 1 }, { "Kbps", 1e3 }, { "Mbps", 1e6 }, { "Gbps", 1e9 }, { "Tbps", 1e12 },
    { NULL, 0 }
};

int unit_bandwidth(const char *s, uint64_t *out)
{
    double v;
    char u[16];
    if (split_unit(s, &v, u, sizeof u) < 0) return LB_EPARSE;
    if (!*u) {
        if (v != 0) return LB_EPARSE;
        *out = 0;
        return 0;
    }
    const unit_def_t *d = find_unit(bandwidth_units, u, true);
    if (!d) return LB_EPARSE;
    int64_t x;
    if (scale_int(v, d->mult, 9.2e18, &x) < 0) return LB_EPARSE;
    *out = (uint64_t)x;
    return 0;
}

static const unit_def_t rate_units[] = {      /* divisor: the period in seconds */
    { "/s", 1 }, { "/sec", 1 }, { "/ms", 1e-3 }, { "/us", 1e-6 }, { "/min", 60 },
    { "/m", 60 }, { "/h", 3600 }, { NULL, 0 }
};

int unit_rate(const char *s, double *out)
{
    double v;
    char u[16];
    if (split_unit(s, &v, u, sizeof u) < 0) return LB_EPARSE;
    if (!*u) {
        if (v != 0) return LB_EPARSE;
        *out = 0;
        return 0;
    }
    /* allow "50 / s" */
    char compact[16];
    size_t k = 0;
    for (const char *p = u; *p; p++)
        if (!isspace((unsigned char)*p)) compact[k++] = *p;
    compact[k] = 0;
    const unit_def_t *d = find_unit(rate_units, compact, false);
    if (!d) return LB_EPARSE;
    *out = v / d->mult;
    return isfinite(*out) ? 0 : LB_EPARSE;
}

int unit_ratio(const char *s, double *out)
{
    double v;
    char u[16];
    if (split_unit(s, &v, u, sizeof u) < 0) return LB_EPARSE;
    if (strcmp(u, "%") == 0) v /= 100;
    else if (*u) return LB_EPARSE;
    if (v > 1) return LB_EPARSE;
    *out = v;
    return 0;
}

const char *unit_duration_str(sim_time_t t, char *buf, size_t n)
{
    const char *sign = "";
    uint64_t u;
    if (t < 0) { sign = "-"; u = (uint64_t)0 - (uint64_t)t; } else u = (uint64_t)t;
    if (u == 0) snprintf(buf, n, "0s");
    else if (u % 1000000000u == 0) snprintf(buf, n, "%s%llus", sign, (unsigned long long)(u / 1000000000u));
    else if (u % 1000000u == 0) snprintf(buf, n, "%s%llums", sign, (unsigned long long)(u / 1000000u));
    else if (u % 1000u == 0) snprintf(buf, n, "%s%lluus", sign, (unsigned long long)(u / 1000u));
    else snprintf(buf, n, "%s%lluns", sign, (unsigned long long)u);
    return buf;
}

/* ---- distributions ------------------------------------------------------------------------ */

typedef struct dist_form { const char *name; dist_kind_t kind; int nargs; } dist_form_t;
static const dist_form_t dist_forms[] = {
    { "exp", DIST_EXP, 1 }, { "uniform", DIST_UNIFORM, 2 }, { "normal", DIST_NORMAL, 2 },
    { "lognormal", DIST_LOGNORMAL, 2 }, { NULL, 0, 0 }
};

static int dist_fail(char *err, size_t errlen, const char *fmt, const char *a)
{
    if (err && errlen) snprintf(err, errlen, fmt, a);
    return LB_EPARSE;
}

int dist_parse(const char *text, dist_t *d, char *err, size_t errlen)
{
    if (!text) return dist_fail(err, errlen, "expected a distribution%s", "");
    const char *s = text;
    while (isspace((unsigned char)*s)) s++;
    const char *paren = strchr(s, '(');
    if (!paren) {
        sim_time_t t;
        if (unit_duration(s, &t) < 0)
            return dist_fail(err, errlen, "expected a duration like 5ms or a distribution like "
                             "exp(5ms), uniform(1ms,9ms), normal(5ms,1ms), lognormal(5ms,2ms); "
                             "got '%s'", text);
        d->kind = DIST_CONST;
        d->a = (double)t;
        d->b = 0;
        return 0;
    }
    char name[16];
    size_t nl = (size_t)(paren - s);
    while (nl && isspace((unsigned char)s[nl - 1])) nl--;
    if (nl == 0 || nl >= sizeof name)
        return dist_fail(err, errlen, "expected a distribution like exp(5ms); got '%s'", text);
    memcpy(name, s, nl);
    name[nl] = 0;
    const dist_form_t *f = dist_forms;
    while (f->name && strcmp(f->name, name) != 0) f++;
    if (!f->name)
        return dist_fail(err, errlen, "unknown distribution '%s'; expected one of: exp, uniform, "
                         "normal, lognormal", name);
    const char *close = strrchr(paren, ')');
    const char *tail = close ? close + 1 : NULL;
    while (tail && isspace((unsigned char)*tail)) tail++;
    if (!close || *tail)
        return dist_fail(err, errlen, "expected ')' at the end of '%s'", text);
    /* arguments between the parentheses, comma separated */
    char args[128];
    size_t al = (size_t)(close - paren - 1);
    if (al >= sizeof args) return dist_fail(err, errlen, "distribution too long: '%s'", text);
    memcpy(args, paren + 1, al);
    args[al] = 0;
    double v[2] = { 0, 0 };
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(args, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        sim_time_t t;
        if (n >= 2 || unit_duration(tok, &t) < 0) { n = -1; break; }
        v[n++] = (double)t;
    }
    if (n != f->nargs) {
        if (err && errlen)
            snprintf(err, errlen, "%s() takes %d duration%s, like %s; got '%s'", f->name,
                     f->nargs, f->nargs == 1 ? "" : "s",
                     f->nargs == 1 ? "exp(5ms)" : f->kind == DIST_UNIFORM ? "uniform(1ms,9ms)"
                     : f->kind == DIST_NORMAL ? "normal(5ms,1ms)" : "lognormal(5ms,2ms)", text);
        return LB_EPARSE;
    }
    if ((f->kind == DIST_EXP || f->kind == DIST_LOGNORMAL) && v[0] <= 0)
        return dist_fail(err, errlen, "the mean of '%s' must be positive", text);
    if (f->kind == DIST_UNIFORM && v[0] > v[1])
        return dist_fail(err, errlen, "uniform(low,high) needs low <= high; got '%s'", text);
    d->kind = f->kind;
    d->a = v[0];
    d->b = v[1];
    return 0;
}

sim_time_t dist_sample(const dist_t *d, gsl_rng *r)
{
    double x = 0;
    switch (d->kind) {
    case DIST_CONST: x = d->a; break;
    case DIST_EXP: x = gsl_ran_exponential(r, d->a); break;
    case DIST_UNIFORM: x = gsl_ran_flat(r, d->a, d->b); break;
    case DIST_NORMAL:
        x = -1;
        for (int i = 0; i < DIST_NORMAL_REDRAWS && x < 0; i++) x = d->a + gsl_ran_gaussian(r, d->b);
        break;
    case DIST_LOGNORMAL: {
        /* mean m, stddev s of the lognormal -> parameters of the underlying normal */
        double m = d->a, s = d->b;
        double sigma2 = log1p((s * s) / (m * m));
        x = gsl_ran_lognormal(r, log(m) - sigma2 / 2, sqrt(sigma2));
        break;
    }
    }
    if (!(x > 0)) return 0;
    if (x > 9.2e18) return SIM_TIME_MAX;
    return (sim_time_t)llround(x);
}

double dist_mean(const dist_t *d)
{
    switch (d->kind) {
    case DIST_UNIFORM: return (d->a + d->b) / 2;
    default: return d->a;   /* const, exp, lognormal: a is the mean; normal: before truncation */
    }
}

const char *dist_str(const dist_t *d, char *buf, size_t n)
{
    char a[32], b[32];
    unit_duration_str((sim_time_t)llround(d->a), a, sizeof a);
    unit_duration_str((sim_time_t)llround(d->b), b, sizeof b);
    switch (d->kind) {
    case DIST_CONST: snprintf(buf, n, "%s", a); break;
    case DIST_EXP: snprintf(buf, n, "exp(%s)", a); break;
    case DIST_UNIFORM: snprintf(buf, n, "uniform(%s,%s)", a, b); break;
    case DIST_NORMAL: snprintf(buf, n, "normal(%s,%s)", a, b); break;
    case DIST_LOGNORMAL: snprintf(buf, n, "lognormal(%s,%s)", a, b); break;
    }
    return buf;
}
