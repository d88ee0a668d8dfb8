/* html.c -- report.html: one self-contained page for an architecture review (inline CSS,
 * plots as data: URIs, no scripts, nothing fetched): the scenario, how to read the page,
 * outcomes, verdicts, causal chains, plots. Every scenario string is HTML-escaped, and
 * nothing on the page varies between runs of the same data. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "draw.h"
#include "helper.h"
#include "plots.h"

/* Writes s HTML-escaped (text and attribute values alike): draw_put_xml. */
static void esc(FILE *f, const char *s) { draw_put_xml(f, s); }

/* Appends the file at path as base64; false when it cannot be read or is empty. */
static bool base64_file(FILE *out, const char *path)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    FILE *in = fopen(path, "rb");
    if (!in) return false;
    unsigned char buf[3 * 4096];
    size_t n, total = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        total += n;
        for (size_t i = 0; i < n; i += 3) {
            unsigned b0 = buf[i], b1 = i + 1 < n ? buf[i + 1] : 0, b2 = i + 2 < n ? buf[i + 2] : 0;
            char q[4] = {tab[b0 >> 2], tab[((b0 & 3) << 4) | (b1 >> 4)],
                         i + 1 < n ? tab[((b1 & 15) << 2) | (b2 >> 6)] : '=',
                         i + 2 < n ? tab[b2 & 63] : '='};
            fwrite(q, 1, 4, out);
        }
        if (n < sizeof buf) break;      /* a full buffer is a multiple of 3: no padding */
    }
    bool ok = !ferror(in) && total > 0;
    fclose(in);
    return ok;
}

static bool file_nonempty(const char *path)
{
    struct stat st;
    return !stat(path, &st) && S_ISREG(st.st_mode) && st.st_size > 0;
}

static void secs_str(char *buf, size_t n, double s)
{
    if (isnan(s) || s < 0) snprintf(buf, n, "&ndash;");
    else if (s < 1) snprintf(buf, n, "%.2f&nbsp;ms", s * 1e3);
    else snprintf(buf, n, "%.2f&nbsp;s", s);
}

static const char *const css =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
    "color:#1f2328;max-width:1280px;margin:0 auto;padding:16px 24px 48px;line-height:1.45}"
    "h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:1px solid #d0d7de;"
    "padding-bottom:.2em;margin-top:1.8em}h3{margin-bottom:.3em}"
    ".meta{color:#57606a}.desc{white-space:pre-wrap;background:#f6f8fa;border-left:4px solid "
    "#0969da;padding:8px 12px}.how{background:#fff8c5;border:1px solid #d4a72c;"
    "padding:8px 14px;border-radius:6px}nav ol{columns:2}"
    "table{border-collapse:collapse;margin:.5em 0 1em;font-size:.92em}"
    "th,td{border:1px solid #d0d7de;padding:4px 8px;vertical-align:top}"
    "th{background:#f6f8fa;text-align:left}td.n{text-align:right;white-space:nowrap}"
    "td.n span{display:block;color:#6e7781;font-size:.85em}"
    "td.bad{background:#ffebe9}td.good{background:#dafbe1}"
    ".pass{background:#1a7f37;color:#fff;font-weight:bold;padding:1px 6px;border-radius:4px}"
    ".fail{background:#cf222e;color:#fff;font-weight:bold;padding:1px 6px;border-radius:4px}"
    ".banner{padding:8px 12px;border-radius:6px;font-weight:bold;margin:.6em 0}"
    ".banner.ok{background:#dafbe1;color:#1a7f37}.banner.ko{background:#ffebe9;color:#cf222e}"
    ".banner.warn{background:#fff8c5;color:#7d4e00}"
    "pre{background:#f6f8fa;padding:10px;overflow-x:auto;font-size:.85em;line-height:1.35}"
    "figure{margin:1em 0 2em}figure img{max-width:100%;height:auto;border:1px solid #d0d7de}"
    "figcaption{color:#57606a;max-width:900px;margin:.3em 0}details{margin:.4em 0}summary{cursor:pointer}code{background:#eff1f3;"
    "padding:0 3px}footer{margin-top:3em;color:#6e7781;font-size:.85em}";

static const char *const how_to_read =
    "<p>This page shows what a packet-level simulation of the load-balancer chain described "
    "above did. The scenario was run once per <em>variant</em>: the same set-up and the same "
    "client traffic with one change applied (a fix, a different setting). All times are "
    "<em>simulated</em> seconds since the start of the run, not wall-clock time, and the same "
    "scenario and seed always give the same numbers.</p>\n<ol>\n"
    "<li><b>Topology</b>: the chain as built, and per variant what its run saw on it "
    "(backends down, packets dropped, the path of a successful request).</li>\n"
    "<li><b>Outcomes</b>: what the clients saw, per variant (and per traffic source). "
    "<em>2xx</em> are successes. <em>4xx</em> and <em>5xx</em> are HTTP errors returned by "
    "a proxy or an application (a load balancer answers 502 or 504 when its backend fails). "
    "The other columns are requests that never got a response: <em>connect timeout</em> "
    "(nobody answered the connection attempt, e.g. a load balancer with no healthy backend "
    "dropped it), <em>refused</em>, <em>reset</em>, <em>response timeout</em>, "
    "<em>closed</em>. p50 and p99 are the median and 99th-percentile latency of the requests "
    "that got a response.</li>\n"
    "<li><b>Expectations</b>: what the scenario's author states must hold in each variant, "
    "with the value measured; FAIL means the behaviour differs from what was expected.</li>\n"
    "<li><b>Why requests failed</b>: for each kind of failure, one example request traced "
    "back step by step to its root cause (a health probe's answer, a backend marked down, a "
    "dropped packet, the error the client got), and its packet ladder: every packet of "
    "that request, and of the probe that caused it, hop by hop.</li>\n"
    "<li><b>Plots</b>: latency, outcomes over time, each load balancer's view of its "
    "backends' health, and the path of one successful request. Each plot says how to read "
    "it; the PNG and SVG files sit next to this page.</li>\n</ol>\n";

/* Classes shown in the outcomes table: 2xx always, others when any row has them. */
static unsigned shown_classes(const rep_variant_t *v, size_t n)
{
    unsigned m = 1u << M_2XX;
    for (size_t i = 0; i < n; i++) {
        for (int c = 0; c < M_CLASS_COUNT; c++)
            if (v[i].by_class[c]) m |= 1u << c;
        for (size_t r = 0; r < v[i].n_rows; r++)
            for (int c = 0; c < M_CLASS_COUNT; c++)
                if (v[i].rows[r].by_class[c]) m |= 1u << c;
    }
    return m;
}

static const char *const class_head[M_CLASS_COUNT] = {
    [M_2XX] = "2xx", [M_3XX] = "3xx", [M_4XX] = "4xx", [M_5XX] = "5xx",
    [M_CONNECT_TIMEOUT] = "connect timeout", [M_REFUSED] = "refused", [M_RESET] = "reset",
    [M_RESPONSE_TIMEOUT] = "response timeout", [M_CLOSED] = "closed",
    [M_OTHER_ERR] = "other error",
};

static void outcome_row(FILE *f, const char *variant, int span, const char *source,
                        const rep_row_t *row, unsigned cls)
{
    fputs("<tr>", f);
    if (span > 0) {
        fprintf(f, "<td rowspan=\"%d\"><b>", span);
        esc(f, variant);
        fputs("</b></td>", f);
    }
    if (source) {
        fputs("<td>", f);
        esc(f, source);
        fputs("</td>", f);
    }
    fprintf(f, "<td class=\"n\">%llu</td>", (unsigned long long)row->requests);
    for (int c = 0; c < M_CLASS_COUNT; c++) {
        if (!(cls & (1u << c))) continue;
        uint64_t k = row->by_class[c];
        const char *tint = !k || !row->requests ? ""
                           : c == M_2XX ? (k == row->requests ? " good" : "")
                           : c == M_3XX ? "" : " bad";
        if (!k) {
            fputs("<td class=\"n\">&ndash;</td>", f);
            continue;
        }
        fprintf(f, "<td class=\"n%s\">%.1f%%<span>%llu</span></td>", tint,
                100.0 * (double)k / (double)row->requests, (unsigned long long)k);
    }
    char a[32], b[32];
    secs_str(a, sizeof a, row->latency_p50);
    secs_str(b, sizeof b, row->latency_p99);
    fprintf(f, "<td class=\"n\">%s</td><td class=\"n\">%s</td><td>", a, b);
    if (row->errors[0]) esc(f, row->errors);
    else fputs("&ndash;", f);
    fputs("</td></tr>\n", f);
}

static void section_outcomes(FILE *f, const rep_variant_t *v, size_t n)
{
    bool per_source = false;
    for (size_t i = 0; i < n; i++) per_source |= v[i].n_rows > 1;
    unsigned cls = shown_classes(v, n);
    fputs("<h2 id=\"outcomes\">Outcomes</h2>\n<p>Share of each variant's requests by what "
          "the client saw (count below). Columns for outcomes that never happened are left "
          "out.</p>\n<table>\n<tr><th>variant</th>", f);
    if (per_source) fputs("<th>traffic</th>", f);
    fputs("<th>requests</th>", f);
    for (int c = 0; c < M_CLASS_COUNT; c++)
        if (cls & (1u << c)) fprintf(f, "<th>%s</th>", class_head[c]);
    fputs("<th>p50</th><th>p99</th><th>most frequent HTTP errors</th></tr>\n", f);
    for (size_t i = 0; i < n; i++) {
        char label[256];
        rep_plots_label(v, n, i, label, sizeof label);
        if (v[i].n_rows > 1) {
            for (size_t r = 1; r < v[i].n_rows; r++)
                outcome_row(f, label, r == 1 ? (int)v[i].n_rows - 1 : 0,
                            v[i].rows[r].source, &v[i].rows[r], cls);
            continue;
        }
        rep_row_t all = {0};
        if (v[i].n_rows) {
            all = v[i].rows[0];
        } else {                            /* no rows collected: the variant's totals */
            all.requests = v[i].requests;
            memcpy(all.by_class, v[i].by_class, sizeof all.by_class);
            all.latency_p50 = v[i].latency_p50;
            all.latency_p99 = v[i].latency_p99;
        }
        outcome_row(f, label, 1, per_source ? "all" : NULL, &all, cls);
    }
    fputs("</table>\n", f);
}

static void section_variants(FILE *f, const scn_t *s, const rep_variant_t *v, size_t n)
{
    bool ids = false;
    for (size_t i = 0; i < n; i++) ids |= v[i].run_id[0] != '\0';
    fputs("<h2 id=\"variants\">Variants</h2>\n<table>\n<tr><th>variant</th><th>what it "
          "changes</th><th>seed</th><th>simulated events</th><th>run</th>", f);
    fputs(ids ? "<th>run id</th></tr>\n" : "</tr>\n", f);
    for (size_t i = 0; i < n; i++) {
        int k = v[i].name ? scn_variant_find(s, v[i].name) : -1;
        const char *d = k >= 0 ? scn_variant_description(s, (size_t)k) : "";
        const rep_plot_t *p = v[i].plot;
        char label[256];
        rep_plots_label(v, n, i, label, sizeof label);
        fputs("<tr><td><b>", f);
        esc(f, label);
        fputs("</b></td><td>", f);
        if (d && *d) esc(f, d);
        else if (scn_variant_count(s) == 1) fputs("the scenario as written", f);
        else fputs("&ndash;", f);
        if (!strcmp(v[i].mode, "real"))
            fprintf(f, "</td><td class=\"n\">%llu</td><td>real sockets</td><td>",
                    (unsigned long long)v[i].seed);
        else if (v[i].db_run)
            fprintf(f, "</td><td class=\"n\">%llu</td><td>results.db run %lld</td><td>",
                    (unsigned long long)v[i].seed, (long long)v[i].db_run);
        else
            fprintf(f, "</td><td class=\"n\">%llu</td><td class=\"n\">%llu</td><td>",
                    (unsigned long long)v[i].seed, (unsigned long long)v[i].events);
        if (v[i].complete)
            fputs("complete", f);
        else if (p)
            fprintf(f, "<b>interrupted</b> at %.1f&nbsp;s of %.1f&nbsp;s", (double)p->end / SIM_S,
                    (double)scn_duration(s) / SIM_S);
        else
            fputs("<b>interrupted</b>", f);
        if (ids) {
            fputs("</td><td><code>", f);
            esc(f, v[i].run_id);
            fputs("</code>", f);
        }
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* A mean and its 95% confidence half-width, scaled ("99.93 &plusmn; 0.05"). */
static void stat_cell(FILE *f, const rep_stat_t *st, double scale)
{
    if (isnan(st->mean)) fputs("<td class=\"n\">&ndash;</td>", f);
    else if (isnan(st->half)) fprintf(f, "<td class=\"n\">%.4g</td>", st->mean * scale);
    else fprintf(f, "<td class=\"n\">%.4g &plusmn; %.2g</td>", st->mean * scale, st->half * scale);
}

static void section_seeds(FILE *f, const rep_variant_t *v, size_t n)
{
    rep_seed_group_t *g;
    size_t ng = rep_seed_groups(v, n, &g);
    fputs("<h2 id=\"seeds\">Across seeds</h2>\n<p>Each variant (and grid point) over its "
          "seeds: the mean and the half-width of its 95% confidence interval (Student's t). "
          "Failed: requests that got no response at all.</p>\n<table>\n<tr><th>variant</th>"
          "<th>seeds</th><th>2xx %</th><th>failed %</th><th>p50 ms</th><th>p99 ms</th></tr>\n", f);
    for (size_t i = 0; i < ng; i++) {
        char label[512];
        rep_variant_label(v, n, g[i].first, label, sizeof label);
        fputs("<tr><td><b>", f);
        esc(f, label);
        fprintf(f, "</b></td><td class=\"n\">%zu</td>", g[i].runs);
        stat_cell(f, &g[i].ok, 100);
        stat_cell(f, &g[i].failed, 100);
        stat_cell(f, &g[i].p50, 1e3);
        stat_cell(f, &g[i].p99, 1e3);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    lb_free(g);
}

static void section_verdicts(FILE *f, const rep_variant_t *v, size_t n)
{
    size_t total = 0, failed = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < v[i].n_verdicts; k++, total++) failed += !v[i].verdicts[k].pass;
    fputs("<h2 id=\"expectations\">Expectations</h2>\n", f);
    if (!total) {
        fputs("<p>This scenario states no expectations.</p>\n", f);
        return;
    }
    if (failed)
        fprintf(f, "<p class=\"banner ko\">%zu of %zu expectations failed.</p>\n", failed, total);
    else
        fprintf(f, "<p class=\"banner ok\">All %zu expectations passed.</p>\n", total);
    fputs("<table>\n<tr><th>result</th><th>variant</th><th>expectation</th>"
          "<th>measured</th></tr>\n", f);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < v[i].n_verdicts; k++) {
            const scn_verdict_t *e = &v[i].verdicts[k];
            char label[256];
            rep_plots_label(v, n, i, label, sizeof label);
            fprintf(f, "<tr><td><span class=\"%s\">%s</span></td><td>", e->pass ? "pass" : "fail",
                    e->pass ? "PASS" : "FAIL");
            esc(f, label);
            fputs("</td><td><code>", f);
            esc(f, e->text);
            fputs("</code></td><td>", f);
            esc(f, e->detail);
            fputs("</td></tr>\n", f);
        }
    fputs("</table>\n", f);
}

/* ---- pictures (include/draw.h): the topology and the packet ladders ---- */

static const char *const topology_how =
    "The chain as it was built, left to right in the direction of traffic: clients, the L7 "
    "load balancer's instances, the L4 load balancer with its frontend and rules, the "
    "cluster's nodes by pool and zone (kube-proxy's hop, the pods running there), gateway "
    "and app pods, with the addresses that matter. Red: what failed in the run (backends a "
    "load balancer had down and by which probe, packets dropped where and why, with "
    "counts); green: the path of one successful request.";
static const char *const ladder_how =
    "One row per packet in time order, from the element that sent it to where it went "
    "(dots: nodes it passed; a cross: where it was dropped, and why), NAT rewrites in "
    "purple, the causal chain's notes in yellow, simulated times on the left: the example "
    "request of each failure class above, and one successful request.";

/* A picture of dir: <name>.svg inlined, else the PNG, under a heading, with how to read it
 * and links to its files. Returns false (and writes nothing) when neither exists. */
static bool picture(FILE *f, const char *dir, const char *name, int level, const char *title,
                    const char *label, const char *how, bool mermaid)
{
    char path[4400];
    const char *mime = "image/svg+xml";
    snprintf(path, sizeof path, "%s/%s.svg", dir, name);
    if (!file_nonempty(path)) {
        mime = "image/png";
        snprintf(path, sizeof path, "%s/%s.png", dir, name);
        if (!file_nonempty(path)) return false;
    }
    fprintf(f, "<figure id=\"pic-%s\">\n<h%d>%s", name, level, title);
    if (label) {
        fputs(": ", f);
        esc(f, label);
    }
    fprintf(f, "</h%d>\n<figcaption>", level);
    if (how) esc(f, how);
    fprintf(f, " <a href=\"%s.png\">PNG</a> &middot; <a href=\"%s.svg\">SVG</a>", name, name);
    if (mermaid) fprintf(f, " &middot; <a href=\"%s.mmd\">Mermaid</a>", name);
    fprintf(f, "</figcaption>\n<img alt=\"%s", title);
    if (label) {
        fputs(": ", f);
        esc(f, label);
    }
    fprintf(f, "\" src=\"data:%s;base64,", mime);
    base64_file(f, path);
    fputs("\">\n</figure>\n", f);
    return true;
}

static bool have_file(const char *dir, const char *name, const char *ext)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
    return file_nonempty(path);
}

/* The stem of entry i's pictures ("" when it has none: another seed of a sweep). */
static void picture_stem(const scn_t *s, const rep_variant_t *v, size_t n, size_t i,
                         const char *kind, char *buf, size_t len)
{
    buf[0] = '\0';
    int k = v[i].name ? scn_variant_find(s, v[i].name) : -1;
    if (k < 0) return;
    for (size_t j = 0; j < i; j++)               /* the first run of a variant has them */
        if (v[j].name && strcmp(v[j].name, v[i].name) == 0) return;
    (void)n;
    char stem[160];
    draw_variant_stem(s, (size_t)k, stem, sizeof stem);
    snprintf(buf, len, "%s-%s", kind, stem);
}

static void section_topology(FILE *f, const char *dir, const scn_t *s, const rep_variant_t *v,
                             size_t n)
{
    fputs("<h2 id=\"topology\">Topology</h2>\n", f);
    bool any = picture(f, dir, "topology", 3, "The chain as built", n ? v[0].name : NULL,
                       topology_how, true);
    for (size_t i = 0; i < n; i++) {
        char name[200], label[256];
        picture_stem(s, v, n, i, "topology", name, sizeof name);
        if (!name[0]) continue;
        rep_plots_label(v, n, i, label, sizeof label);
        fputs("<details><summary>What the run of <b>", f);
        esc(f, label);
        fputs("</b> saw</summary>\n", f);
        if (picture(f, dir, name, 4, "Topology", label, NULL, true)) any = true;
        else fputs("<p>(no picture)</p>\n", f);
        fputs("</details>\n", f);
    }
    if (!any) {
        char dot[4096];
        bool have = rep_helper_find("dot", dot, sizeof dot);
        fprintf(f, "<p class=\"banner warn\">No topology pictures: %s</p>\n",
                !have_file(dir, "topology", "dot")
                    ? "they were not drawn for this run (turned off with --no-pictures?)."
                : have ? "Graphviz failed (sim printed its message when the run ended); "
                         "<code>topology.dot</code> and <code>topology.mmd</code> are in the "
                         "folder."
                       : "Graphviz (<code>dot</code>) was not found on PATH when the run "
                         "ended. Install it (Debian: <code>apt-get install graphviz</code>) "
                         "and run the scenario again; <code>topology.dot</code> and "
                         "<code>topology.mmd</code> are in the folder.");
    }
}

/* Variant i's packet ladder, when it has one. */
static void ladder_of(FILE *f, const char *dir, const scn_t *s, const rep_variant_t *v,
                      size_t n, size_t i)
{
    char name[200], label[256];
    picture_stem(s, v, n, i, "ladder", name, sizeof name);
    if (!name[0]) return;
    rep_plots_label(v, n, i, label, sizeof label);
    picture(f, dir, name, 4, "Packet ladder", label, ladder_how, true);
}

static void section_explain(FILE *f, const char *dir, const scn_t *s, const rep_variant_t *v,
                            size_t n)
{
    fputs("<h2 id=\"why\">Why requests failed</h2>\n<p>For each variant and each kind of "
          "failure: how many requests failed that way and one example, walked back from what "
          "the client saw to the first cause, with the simulated time and the element "
          "where each step happened.</p>\n", f);
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
        if (!v[i].explain || !v[i].explain[0]) continue;
        char label[256];
        rep_plots_label(v, n, i, label, sizeof label);
        fputs("<h3>", f);
        esc(f, label);
        fputs("</h3>\n<pre>", f);
        const char *t = v[i].explain;
        while (*t == '\n') t++;
        esc(f, t);
        fputs("</pre>\n", f);
        ladder_of(f, dir, s, v, n, i);
        shown++;
    }
    if (shown < n) {
        fputs(shown ? "<p>No failed requests in: " : "<p>No request failed in any variant: ", f);
        for (size_t i = 0, k = 0; i < n; i++) {
            if (v[i].explain && v[i].explain[0]) continue;
            char label[256];
            rep_plots_label(v, n, i, label, sizeof label);
            fputs(k++ ? ", " : "", f);
            fputs("<b>", f);
            esc(f, label);
            fputs("</b>", f);
        }
        fputs(".</p>\n", f);
        /* their ladders: one successful request each */
        for (size_t i = 0; i < n; i++) {
            if (v[i].explain && v[i].explain[0]) continue;
            char name[200], label[256];
            picture_stem(s, v, n, i, "ladder", name, sizeof name);
            if (!name[0] || !have_file(dir, name, "svg")) continue;
            rep_plots_label(v, n, i, label, sizeof label);
            fputs("<details><summary>Packet ladder of a successful request in <b>", f);
            esc(f, label);
            fputs("</b></summary>\n", f);
            ladder_of(f, dir, s, v, n, i);
            fputs("</details>\n", f);
        }
    }
}

static bool any_real(const rep_variant_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].mode, "real")) return true;
    return false;
}

/* Real runs next to their simulated counterparts (src/report/compare.c), and every
 * backend's verdict as its load balancer saw it. */
static void section_real(FILE *f, const rep_variant_t *v, size_t n)
{
    fputs("<h2 id=\"real\">Simulation and reality</h2>\n<p>Variants marked <em>(real)</em> "
          "were played on real sockets against a deployed stack (<code>--real</code>): the "
          "same traffic schedule and the same health probes, measured with real "
          "connections; latency counts from when each request was due. Each is set beside "
          "the simulation of the same variant and seed. Flagged (red): an outcome's share "
          "more than ", f);
    fprintf(f, "%.0f percentage points apart, p50/p99 more than %.0f times and %.0f&nbsp;ms "
            "apart, a backend in another health state.</p>\n", REP_CMP_SHARE_POINTS,
            REP_CMP_LATENCY_FACTOR, REP_CMP_LATENCY_FLOOR_S * 1e3);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].mode, "real")) continue;
        char label[256];
        rep_plots_label(v, n, i, label, sizeof label);
        fputs("<h3>", f);
        esc(f, label);
        fputs("</h3>\n", f);
        const rep_variant_t *sim = rep_compare_peer(v, n, i);
        if (!sim) {
            fputs("<p class=\"banner warn\">No simulated run of this variant and seed to "
                  "compare with (<code>--compare</code> runs one).</p>\n", f);
        } else {
            rep_cmp_row_t *rows;
            size_t nr = rep_compare_rows(sim, &v[i], &rows), bad = 0;
            if (sim->db_run)
                fprintf(f, "<p>Simulation: run %lld of this folder's results.db.</p>\n",
                        (long long)sim->db_run);
            fputs("<table>\n<tr><th></th><th>simulated</th><th>real</th><th></th></tr>\n", f);
            for (size_t k = 0; k < nr; k++) {
                bad += rows[k].differs;
                fputs("<tr><td>", f);
                if (rows[k].probe) fputs("backend ", f);
                esc(f, rows[k].what);
                fputs("</td><td class=\"n\">", f);
                esc(f, rows[k].sim);
                fprintf(f, "</td><td class=\"n%s\">", rows[k].differs ? " bad" : "");
                esc(f, rows[k].real);
                fprintf(f, "</td><td>%s</td></tr>\n", rows[k].differs ? "differs" : "");
            }
            fputs("</table>\n", f);
            if (bad)
                fprintf(f, "<p class=\"banner ko\">%zu difference%s beyond tolerance.</p>\n",
                        bad, bad == 1 ? "" : "s");
            else
                fputs("<p class=\"banner ok\">Simulation and reality agree within "
                      "tolerance.</p>\n", f);
            lb_free(rows);
        }
        if (v[i].n_probes) {
            fputs("<p>Each backend as its load balancer would see it after the real run:</p>"
                  "\n<pre>", f);
            for (size_t k = 0; k < v[i].n_probes; k++) {
                esc(f, v[i].probes[k].line);
                fputc('\n', f);
            }
            fputs("</pre>\n", f);
        }
        if (v[i].delayed)
            fprintf(f, "<p>%llu requests could not start when due (the in-flight bound or the "
                    "rate cap); their latency counts from when they were due.</p>\n",
                    (unsigned long long)v[i].delayed);
    }
}

static void section_plots(FILE *f, const char *dir, const rep_variant_t *v, size_t n,
                          const rep_missings_t *ms)
{
    size_t m;
    rep_variant_t *view = rep_plots_view(v, n, &m);     /* a big sweep: one per variant */
    if (view) {
        section_plots(f, dir, view, m, ms);
        fprintf(f, "<p>These plots show the %zu runs by variant (and grid point): client "
                "outcomes per second and the latency distribution as the mean over each one's "
                "seeds, backend health and one request's hops for its first seed (every run is "
                "in results.db).</p>\n", n);
        rep_plots_view_free(view, m);
        return;
    }
    rep_plot_file_t *fs;
    size_t nf = rep_plots_files(v, n, &fs);
    fputs("<h2 id=\"plots\">Plots</h2>\n", f);
    if (!nf) {
        fputs("<p class=\"banner warn\">No plots: no plot data was collected for this "
              "run (plots turned off with --no-plots?).</p>\n", f);
        return;
    }
    char path[4096];
    size_t missing = 0;
    for (size_t i = 0; i < nf; i++) {
        const char *mime = "image/svg+xml";
        snprintf(path, sizeof path, "%s/%s.svg", dir, fs[i].name);
        if (!file_nonempty(path)) {
            mime = "image/png";
            snprintf(path, sizeof path, "%s/%s.png", dir, fs[i].name);
            if (!file_nonempty(path)) {
                missing++;
                continue;
            }
        }
        char label[256];
        const char *vn = NULL;
        if (fs[i].variant >= 0) {
            rep_plots_label(v, n, (size_t)fs[i].variant, label, sizeof label);
            vn = label;
        }
        fprintf(f, "<figure id=\"plot-%s\">\n<h3>%s", fs[i].name, fs[i].title);
        if (vn) {
            fputs(": ", f);
            esc(f, vn);
        }
        fputs("</h3>\n<figcaption>", f);
        esc(f, fs[i].how);
        fprintf(f, " <a href=\"%s.png\">PNG</a> &middot; <a href=\"%s.svg\">SVG</a></figcaption>\n",
                fs[i].name, fs[i].name);
        fprintf(f, "<img alt=\"%s", fs[i].title);
        if (vn) {
            fputs(": ", f);
            esc(f, vn);
        }
        fprintf(f, "\" src=\"data:%s;base64,", mime);
        if (!base64_file(f, path)) missing++;
        fputs("\">\n</figure>\n", f);
    }
    const rep_missing_t *why = NULL;
    for (size_t i = 0; ms && i < ms->n && !why; i++)
        if (!strcmp(ms->v[i].output, "plots")) why = &ms->v[i];
    if (missing) {
        char gp[4096];
        bool have = rep_plots_gnuplot(gp, sizeof gp);
        fputs("<p class=\"banner warn\">", f);
        fputs(missing == nf ? "This report has no plots: " : "Some plots are missing: ", f);
        if (why && have) {
            fputs("they were not drawn for this run: ", f);
            esc(f, why->reason);
            fputs(". Everything else on this page is complete.", f);
        } else {
            fputs(have ? "they were not drawn for this run (plots turned off with --no-plots, "
                         "or gnuplot failed: sim printed its message when the run ended)."
                       : "gnuplot was not found on PATH when the run ended, so none were drawn. "
                         "Install it (Debian: <code>apt-get install gnuplot-nox</code>) and run "
                         "the scenario again; everything else on this page is complete.", f);
        }
        fputs("</p>\n", f);
    }
    lb_free(fs);
}

int rep_html_write(const char *dir, const scn_t *s, const rep_variant_t *v, size_t n,
                   const rep_missings_t *missing, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        if (err && errlen) snprintf(err, errlen, "cannot build report.html: %s", strerror(errno));
        return LB_EIO;
    }
    const char *name = scn_name(s), *desc = scn_description(s);
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<title>", f);
    esc(f, name);
    fprintf(f, " &ndash; lbchain report</title>\n<style>%s</style>\n</head>\n<body>\n", css);
    fputs("<h1>Scenario <code>", f);
    esc(f, name);
    fputs("</code></h1>\n<p class=\"meta\">", f);
    if (scn_file(s)) {
        fputs("from <code>", f);
        esc(f, scn_file(s));
        fputs("</code> &middot; ", f);
    }
    fprintf(f, "%.6g&nbsp;s simulated &middot; %zu variant%s</p>\n",
            (double)scn_duration(s) / SIM_S, n, n == 1 ? "" : "s");
    if (desc && *desc) {
        fputs("<div class=\"desc\">", f);
        size_t dl = strlen(desc);
        while (dl && (desc[dl - 1] == '\n' || desc[dl - 1] == ' ')) dl--;
        char *d = lb_strndup(desc, dl);
        esc(f, d);
        lb_free(d);
        fputs("</div>\n", f);
    }
    bool interrupted = false;
    for (size_t i = 0; i < n; i++) interrupted |= !v[i].complete;
    if (interrupted)
        fputs("<p class=\"banner warn\">This run was interrupted: some variants cover only "
              "the first part of the scenario (see Variants).</p>\n", f);
    if (missing && missing->n) {
        fputs("<div class=\"banner warn\">These results are not complete; missing:<ul>\n", f);
        for (size_t i = 0; i < missing->n; i++) {
            fputs("<li><b>", f);
            esc(f, missing->v[i].output);
            fputs("</b>: ", f);
            esc(f, missing->v[i].reason);
            fputs("</li>\n", f);
        }
        fputs("</ul></div>\n", f);
    }
    fputs("<h2 id=\"how\">How to read this report</h2>\n<div class=\"how\">", f);
    fputs(how_to_read, f);
    bool real = any_real(v, n);
    bool seeds = rep_seed_stats_apply(v, n);
    fputs("</div>\n<nav><ol><li><a href=\"#topology\">Topology</a></li><li><a href=\"#variants\">Variants</a></li><li><a "
          "href=\"#outcomes\">Outcomes</a></li>", f);
    if (seeds) fputs("<li><a href=\"#seeds\">Across seeds</a></li>", f);
    if (real) fputs("<li><a href=\"#real\">Simulation and reality</a></li>", f);
    fputs("<li><a href=\"#expectations\">Expectations</a>"
          "</li><li><a href=\"#why\">Why requests failed</a></li><li><a href=\"#plots\">Plots"
          "</a></li></ol></nav>\n", f);
    section_topology(f, dir, s, v, n);
    section_variants(f, s, v, n);
    section_outcomes(f, v, n);
    if (seeds) section_seeds(f, v, n);
    if (real) section_real(f, v, n);
    section_verdicts(f, v, n);
    section_explain(f, dir, s, v, n);
    section_plots(f, dir, v, n, missing);
    fputs(real ? "<footer>Written by lbchain's <code>sim</code>. Entries marked (real) were "
                 "measured on real sockets; the others are simulated. The page loads nothing "
                 "from the network.</footer>\n</body>\n</html>\n"
               : "<footer>Written by lbchain's <code>sim</code>. Everything on this page is "
                 "simulated; it loads nothing from the network.</footer>\n</body>\n</html>\n", f);
    if (fclose(f)) {
        free(text);
        if (err && errlen) snprintf(err, errlen, "cannot build report.html");
        return LB_EIO;
    }
    int rc = rep_write_atomic(dir, "report.html", text, len, err, errlen);
    free(text);
    return rc;
}
