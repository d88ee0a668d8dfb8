/* tls_cert_elem.c -- the "tls-certificate" element: a certificate as data (subject CN,
 * subjectAltName DNS names, issuer, validity, CA flag) that other elements reference by
 * name: a Gateway listener's tls.certificateRefs, App Gateway's trusted root certificates.
 * The simulated clock starts at TLS_EPOCH_DEFAULT (2026-01-01T00:00:00Z, include/tls.h),
 * which is what not-before / not-after are compared with. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "element.h"
#include "tls.h"

static const elem_param_t cert_params[] = {
    {"type", P_STR, NULL, "tls-certificate", NULL, NULL},
    {"subject", P_STR, NULL, "subject common name (CN)", NULL, NULL},
    {"dns-names", P_STRLIST, "", "subjectAltName DNS names (\"*.example.com\" allowed); "
     "when present, names are checked against these only (RFC 6125)", NULL, NULL},
    {"issuer", P_STR, "", "the issuing tls-certificate element, defined before this one "
     "(empty: self-signed)", NULL, NULL},
    {"ca", P_BOOL, "false", "a CA certificate (basicConstraints CA:TRUE)", NULL, NULL},
    {"not-before", P_STR, "", "start of validity, YYYY-MM-DD[THH:MM:SSZ] (empty: always)",
     NULL, NULL},
    {"not-after", P_STR, "", "end of validity, YYYY-MM-DD[THH:MM:SSZ] (empty: never); the "
     "simulation starts at 2026-01-01T00:00:00Z", NULL, NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

/* "2027-01-01" or "2027-01-01T12:00:00Z" -> UNIX seconds; 0 for ""; -1 when malformed. */
static int64_t parse_date(const char *s)
{
    if (!s || !*s) return 0;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end) {
        memset(&tm, 0, sizeof tm);
        end = strptime(s, "%Y-%m-%d", &tm);
        if (!end || *end) return -1;
    }
    return (int64_t)timegm(&tm);
}

static void cert_free_cb(void *obj) { tls_cert_unref(obj); }

static int cert_build(build_ctx_t *ctx, const char *name, const elem_cfg_t *cfg)
{
    tls_cert_spec_t s = {0};
    s.name = name;
    s.subject = elem_str(cfg, "subject");
    const elem_val_t *dn = elem_get(cfg, "dns-names");
    s.dns_names = (const char *const *)dn->u.strs.v;
    s.n_dns = dn->u.strs.n;
    const char *iss = elem_str(cfg, "issuer");
    if (iss && *iss) {
        s.issuer = build_get(ctx, iss, "tls-cert");
        if (!s.issuer)
            return build_error(ctx, elem_get(cfg, "issuer")->pos, "tls-certificate '%s': issuer "
                               "'%s' is not a tls-certificate element defined before it", name, iss);
    }
    s.ca = elem_bool(cfg, "ca");
    const char *keys[2] = {"not-before", "not-after"};
    int64_t *dst[2] = {&s.not_before, &s.not_after};
    for (int i = 0; i < 2; i++) {
        *dst[i] = parse_date(elem_str(cfg, keys[i]));
        if (*dst[i] < 0)
            return build_error(ctx, elem_get(cfg, keys[i])->pos, "%s '%s': expected a date "
                               "like 2027-01-01 or 2027-01-01T00:00:00Z", keys[i],
                               elem_str(cfg, keys[i]));
    }
    char err[160];
    tls_cert_t *c = tls_cert_new(&s, err, sizeof err);
    if (!c) return build_error(ctx, cfg->pos, "tls-certificate '%s': %s", name, err);
    build_on_free(ctx, cert_free_cb, c);
    build_put(ctx, name, "tls-cert", c);
    return 0;
}

static const elem_type_t cert_type = {
    "tls-certificate", ELEM_CLOUD,
    "a TLS certificate as data (subject, DNS names, issuer, validity) for HTTPS listeners "
    "and trusted roots",
    cert_params, cert_build,
};

void tls_cert_register(void) { elem_register(&cert_type); }
