/* test_scenario.c -- the scenario loader: a table of bad inputs with their exact
 * "file:line:col: message", a valid scenario built into a network (addresses, group
 * expansion, automatic routes on a three-router chain), variants and command-line
 * overrides, the element registry, and expectations evaluated on hand-filled metrics. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "scenario.h"
#include "scenario/scenario_int.h"
#include "net.h"
#include "tcp.h"
#include "metrics.h"

#define HDR "name: t\nduration: 10s\n"

static void setup(void) { elem_register_builtin(); }

static char *diag_text(const scn_diag_t *d)
{
    return lb_sprintf("%s:%d:%d: %s", d->file, d->line, d->col, d->msg);
}

/* ---- bad inputs ------------------------------------------------------------------------- */

static const struct bad_case { const char *yaml, *want; } bad_cases[] = {
    /* YAML syntax */
    { HDR "nodes: { r1: { type: router }\n",
      "t.yaml:4:1: invalid YAML: did not find expected ',' or '}' (while parsing a flow mapping at 3:8)" },
    { HDR "nodes:\n\tr1: { type: router }\n",
      "t.yaml:4:1: invalid YAML: found character that cannot start any token (while scanning for the next token at 4:1)" },
    { HDR "nodes: *web\n",
      "t.yaml:3:8: alias '*web' refers to no anchor defined before it; expected '&web' earlier in the document" },
    { HDR "---\nname: u\n",
      "t.yaml:4:1: a second YAML document ('---'); expected one document" },
    { "- a\n- b\n",
      "t.yaml:1:1: a scenario must be a mapping with name, duration, nodes, links...; got a list" },
    /* required and unknown keys */
    { "duration: 10s\n",
      "t.yaml:1:1: missing required key 'name' in scenario; expected the scenario's name, like core-nat (a-z, 0-9, '-')" },
    { "name: t\n",
      "t.yaml:1:1: missing required key 'duration' in scenario; expected the simulated time to run, like 60s" },
    { "name: t\ndurration: 10s\n",
      "t.yaml:2:1: unknown key 'durration' in scenario; did you mean 'duration'?" },
    { "name: Core_NAT\nduration: 10s\n",
      "t.yaml:1:7: name: expected lowercase letters, digits and '-', like core-nat; got 'Core_NAT'" },
    /* wrong types and units */
    { "name: t\nduration: fast\n",
      "t.yaml:2:11: duration: expected a duration like 30s, 250ms, 10us; got 'fast'" },
    { "name: t\nduration: 5 parsecs\n",
      "t.yaml:2:11: duration: expected a duration like 30s, 250ms, 10us; got '5 parsecs'" },
    { HDR "seed: lots\n",
      "t.yaml:3:7: seed: expected an integer from 0 to 18446744073709551615; got 'lots'" },
    { HDR "seed: -1\n",
      "t.yaml:3:7: seed: expected an integer from 0 to 18446744073709551615; got '-1'" },
    { HDR "seed: 18446744073709551616\n",
      "t.yaml:3:7: seed: expected an integer from 0 to 18446744073709551615; got '18446744073709551616'" },
    { HDR "seed: [1]\n",
      "t.yaml:3:7: seed: expected an integer from 0 to 18446744073709551615; got a list" },
    { HDR "nodes: [r1, r2]\n",
      "t.yaml:3:8: nodes: expected a mapping of names to elements, like  r1: { type: router }; got a list" },
    { HDR "nodes:\n  r1: { type: router, conntrack: maybe }\n",
      "t.yaml:4:34: conntrack: expected true or false; got 'maybe'" },
    { HDR "nodes:\n  r1: { type: router, count: 0 }\n",
      "t.yaml:4:30: count: expected a whole number from 1 to 65536; got 0" },
    { HDR "nodes:\n  r1: { type: router, tcp: { syn-retires: 3 } }\n",
      "t.yaml:4:30: unknown key 'syn-retires' in node 'r1' (router) tcp; did you mean 'syn-retries'?" },
    { HDR "nodes:\n  r1: { type: router, addresses: [10.9.9] }\n",
      "t.yaml:4:35: addresses: expected an IPv4 address like 10.9.9.9; got '10.9.9'" },
    /* element types */
    { HDR "nodes:\n  r1: { type: ruter }\n",
      "t.yaml:4:15: unknown node type 'ruter' for 'r1'; did you mean 'router'?" },
    { HDR "nodes:\n  r1: { type: http-client }\n",
      "t.yaml:4:15: type 'http-client' belongs in section 'traffic', not 'nodes'; node types are: host, router" },
    { HDR "nodes:\n  r1: { count: 2 }\n",
      "t.yaml:4:7: missing required key 'type' in node 'r1'; expected the element's type, like type: router" },
    { HDR "nodes:\n  r1: router\n",
      "t.yaml:4:7: node 'r1': expected a mapping with a type, like { type: host }; got a scalar" },
    /* duplicate names */
    { HDR "nodes:\n  r1: { type: router }\n  r1: { type: host }\n",
      "t.yaml:5:3: duplicate key 'r1'; it is already defined at line 4, column 3" },
    { HDR "nodes:\n  web: { type: host, count: 2 }\n  web1: { type: host }\n",
      "t.yaml:5:3: node name 'web1' is already used by a member of group 'web' (count: 2, at line 4); expected a unique name" },
    { HDR "nodes:\n  web1: { type: host }\n  web: { type: host, count: 3 }\n",
      "t.yaml:5:3: group 'web' (count: 3) would create node 'web1', which is already defined at line 4; expected unique node names" },
    { HDR "nodes:\n  a.b: { type: host }\n",
      "t.yaml:4:3: bad node name 'a.b'; expected letters, digits, '-' and '_', starting with a letter" },
    /* links */
    { HDR "nodes: { a: { type: host }, r1: { type: router } }\n"
          "links:\n  - { between: [a, r1], latncy: 5ms }\n",
      "t.yaml:5:25: unknown key 'latncy' in link; did you mean 'latency'?" },
    { HDR "nodes: { a: { type: host }, r1: { type: router } }\n"
          "links:\n  - { between: [a, r1], bandwidth: 10 Gbit }\n",
      "t.yaml:5:36: bandwidth: expected a bandwidth like 10Gbps, 100Mbps, 800bps; got '10 Gbit'" },
    { HDR "nodes: { a: { type: host }, r1: { type: router } }\n"
          "links:\n  - { between: [a, r1], loss: 150% }\n",
      "t.yaml:5:31: loss: expected a ratio like 1% or 0.01 (between 0 and 1); got '150%'" },
    { HDR "nodes: { client: { type: host }, r1: { type: router }, r2: { type: router }, web: { type: host } }\n"
          "links:\n  - { between: [client, r1] }\n  - { between: [r1, r3] }\n",
      "t.yaml:6:21: link refers to node 'r3', which is not defined; nodes are: client, r1, r2, web" },
    { HDR "nodes: { a: { type: host }, r1: { type: router } }\n"
          "links:\n  - { between: [a, r1, a] }\n",
      "t.yaml:5:16: between: expected exactly two node references, like [client, r1]; got 3" },
    { HDR "nodes: { a: { type: host }, r1: { type: router } }\n"
          "links:\n  - { between: [a, r1] }\n  - { bandwidth: 1Gbps }\n",
      "t.yaml:6:5: link: expected between (two nodes) or members (the nodes on a shared segment)" },
    { HDR "nodes: { a: { type: host, count: 3 }, b: { type: host, count: 2 } }\n"
          "links:\n  - { between: [a, b] }\n",
      "t.yaml:5:16: between: group 'a' has 3 members and group 'b' has 2; expected groups of equal size (zipped) or a group and a single node" },
    { HDR "nodes: { a: { type: host }, r1: { type: router } }\n"
          "links:\n  - { between: [a, r1], subnet: 10.10.0.1/30 }\n",
      "t.yaml:5:33: subnet: '10.10.0.1/30' has host bits set; expected 10.10.0.0/30" },
    { HDR "nodes: { a: { type: host }, r1: { type: router }, b: { type: host } }\n"
          "links:\n  - { between: [a, r1], subnet: 10.10.0.0/24 }\n"
          "  - { between: [b, r1], subnet: 10.10.0.4/30 }\n",
      "t.yaml:6:33: subnet: 10.10.0.4/30 overlaps the subnet of the link at line 5; expected disjoint subnets" },
    { HDR "nodes: { a: { type: host }, r1: { type: router } }\n"
          "links:\n  - { between: [a, a] }\n",
      "t.yaml:5:16: between: a link cannot join node 'a' to itself; expected two different nodes" },
    /* variants */
    { HDR "nodes: { a: { type: host }, r1: { type: router } }\n"
          "links:\n  - { between: [a, r1] }\n"
          "variants:\n  lossy: { set: { links.0.loss: lots } }\n",
      "t.yaml:7:33: loss: expected a ratio like 1% or 0.01 (between 0 and 1); got 'lots'" },
    { HDR "nodes: { a: { type: host }, r1: { type: router } }\n"
          "variants:\n  big:\n    set:\n      nodes.r9.count: 3\n",
      "t.yaml:7:13: cannot set 'nodes.r9.count': nodes has no 'r9'; did you mean 'r1'? nodes has: a, r1" },
    { HDR "variants:\n  v1: { sett: {} }\n",
      "t.yaml:4:9: unknown key 'sett' in variant 'v1'; did you mean 'set'?" },
    /* expectations */
    { HDR "variants: { long: { set: { duration: 60s } }, short: {} }\n"
          "expect:\n  long: [ \"client.requests > 5 after 30s\" ]\n  short: [ \"client.requests > 5 after 30s\" ]\n",
      "t.yaml:6:12: expectation window [30s, 10s) starts at or after the end of the run (duration 10s); expected times within the run" },
    { HDR "variants: { keepalive: {}, per-request: {} }\n"
          "expect:\n  keepalvie: [\"client.requests > 0\"]\n",
      "t.yaml:5:3: expect refers to variant 'keepalvie', which is not defined; did you mean 'keepalive'? variants are: keepalive, per-request (or \"*\" for all)" },
    { HDR "expect:\n  \"*\":\n    - \"client.status_2xx_ratoi >= 0.99\"\n",
      "t.yaml:5:7: bad expectation 'client.status_2xx_ratoi >= 0.99': unknown statistic 'status_2xx_ratoi'; did you mean 'status_2xx_ratio'?" },
    { HDR "expect:\n  \"*\": [ \"client.requests >> 5\" ]\n",
      "t.yaml:4:10: bad expectation 'client.requests >> 5': bad number '>'; expected a number like 0.99, 1% or 250ms" },
    { HDR "expect:\n  \"*\": [ \"client.requests > 5 after\" ]\n",
      "t.yaml:4:10: bad expectation 'client.requests > 5 after': expected a time like 5s after 'after'; got ''" },
    { HDR "expect:\n  \"*\": [ \"browse.requests > 5\" ]\n",
      "t.yaml:4:10: expectation refers to traffic 'browse', which is not defined; traffic is: (none) (or 'client' for all traffic)" },
    { HDR "expect:\n  \"*\": [ \"client.requests > 5 after 20s\" ]\n",
      "t.yaml:4:10: expectation window [20s, 10s) starts at or after the end of the run (duration 10s); expected times within the run" },
    { HDR "expect:\n  \"*\": [ \"client.requests > 5 before 20s\" ]\n",
      "t.yaml:4:10: expectation window [0s, 20s) ends after the run's duration 10s; expected times within the run" },
    { HDR "expect:\n  \"*\": [ \"client.requests > 5 between 8s and 2s\" ]\n",
      "t.yaml:4:10: expectation window [8s, 2s) is empty; expected 'after' before 'before' and within the duration 10s" },
    { HDR "expect:\n  \"*\": [ \"client.requests ~ 5\" ]\n",
      "t.yaml:4:10: bad expectation 'client.requests ~ 5': expected an operator (<, <=, >, >=, ==, !=) after the metric" },
};

/* Loading len bytes of text failed, nothing was kept, and the diagnostic is exactly want. */
static void assert_load_error(const char *text, size_t len, const char *want, int i)
{
    scn_t *s = NULL;
    scn_diag_t d;
    memset(&d, 0x55, sizeof d);
    int rc = scn_load_buffer(text, len, "t.yaml", &s, &d, NULL);
    ck_assert_msg(rc < 0, "case %d loaded:\n%s", i, text);
    ck_assert_ptr_null(s);
    char *got = diag_text(&d);
    ck_assert_msg(strcmp(got, want) == 0, "case %d:\n got: %s\nwant: %s", i, got, want);
    lb_free(got);
}

START_TEST(bad_inputs)
{
    assert_load_error(bad_cases[_i].yaml, strlen(bad_cases[_i].yaml), bad_cases[_i].want, _i);
}
END_TEST

START_TEST(bad_files_and_overrides)
{
    scn_t *s = NULL;
    scn_diag_t d;
    ck_assert_int_eq(scn_load("/nonexistent/x.yaml", &s, &d, NULL), LB_EIO);
    ck_assert_str_eq(d.file, "/nonexistent/x.yaml");
    ck_assert_int_eq(d.line, 0);
    ck_assert_str_eq(d.msg, "cannot open: No such file or directory");
    /* print form without a position */
    char buf[512];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    scn_diag_print(&d, f);
    fclose(f);
    ck_assert_str_eq(buf, "/nonexistent/x.yaml: error: cannot open: No such file or directory\n");
}
END_TEST

/* ---- hostile input: encodings, files that are not files, shared trees -------------------- */

/* Bytes that are not UTF-8 text: the position is the offending byte's own line:col. */
static const struct enc_case { const char *bytes; size_t len; const char *want; } enc_cases[] = {
#define ENC(lit, want) { lit, sizeof lit - 1, want }
    ENC("name: t\nduration: 10s\nno\0des: {}\n",
        "t.yaml:3:3: a NUL byte; expected UTF-8 text (a UTF-16 file? convert it with iconv -f UTF-16 -t UTF-8)"),
    ENC("n\0a\0m\0e\0", "t.yaml:1:2: a NUL byte; expected UTF-8 text (a UTF-16 file? convert it with iconv -f UTF-16 -t UTF-8)"),
    ENC("\xff\xfen\0a\0m\0e\0", "t.yaml:1:1: UTF-16 text (byte-order mark FF FE); expected UTF-8 (convert it with iconv -f UTF-16 -t UTF-8)"),
    ENC("\xfe\xff\0n\0a", "t.yaml:1:1: UTF-16 text (byte-order mark FE FF); expected UTF-8 (convert it with iconv -f UTF-16 -t UTF-8)"),
    ENC("name: t\ndescription: caf\xe9 x\n",
        "t.yaml:2:17: invalid UTF-8 at byte 0xE9 (invalid trailing UTF-8 octet); expected UTF-8 text"),
    ENC("name: t\r\ndescription: \xc3\xa9\xff\n",        /* columns count characters */
        "t.yaml:2:15: invalid UTF-8 at byte 0xFF (invalid leading UTF-8 octet); expected UTF-8 text"),
    ENC("\xef\xbb\xbfname: t\nduration: 1s\n\xed\xa0\x80",  /* a UTF-8 BOM is no character */
        "t.yaml:3:1: invalid UTF-8 at byte 0xED (invalid Unicode character); expected UTF-8 text"),
    ENC("name: t\ndescription: x\x01\n",
        "t.yaml:2:15: control character 0x01 (control characters are not allowed); expected printable UTF-8 text"),
#undef ENC
};

START_TEST(encodings)
{
    assert_load_error(enc_cases[_i].bytes, enc_cases[_i].len, enc_cases[_i].want, _i);
}
END_TEST

/* `file:` reads regular files only, of bounded size, and never waits: a FIFO with no
 * writer, a device, a directory and an oversized (sparse) file are errors at the item. */
START_TEST(include_not_a_file)
{
    char dir[] = "/tmp/lbchain-test-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char *fifo = lb_sprintf("%s/pipe.yaml", dir), *big = lb_sprintf("%s/big.yaml", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    FILE *f = fopen(big, "w");
    ck_assert_int_eq(ftruncate(fileno(f), SCN_MAX_FILE_BYTES + 1), 0);
    fclose(f);
    static const struct { const char *path, *want; } cases[] = {
        { "pipe.yaml", "a FIFO (named pipe); expected a regular YAML file" },
        { "/dev/zero", "a character device; expected a regular YAML file" },
        { ".", "a directory; expected a regular YAML file" },
        { "big.yaml", "16777217 bytes; expected at most 16777216 (16 MiB)" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *yaml = lb_sprintf(HDR "kubernetes:\n  - file: %s\n", cases[i].path);
        char *fname = lb_sprintf("%s/s.yaml", dir);
        scn_t *s = NULL;
        scn_diag_t d;
        ck_assert_int_eq(scn_load_string(yaml, fname, &s, &d, NULL), LB_EIO);
        char *want = lb_sprintf("%s:4:11: file: cannot read '%s%s%s': %s", fname,
                                cases[i].path[0] == '/' ? "" : dir,
                                cases[i].path[0] == '/' ? "" : "/", cases[i].path, cases[i].want);
        char *got = diag_text(&d);
        ck_assert_str_eq(got, want);
        lb_free(got);
        lb_free(want);
        lb_free(fname);
        lb_free(yaml);
    }
    /* the scenario file itself follows the same rules */
    scn_t *s = NULL;
    scn_diag_t d;
    ck_assert_int_eq(scn_load(fifo, &s, &d, NULL), LB_EIO);
    ck_assert_str_eq(d.msg, "a FIFO (named pipe); expected a regular YAML file");
    unlink(fifo);
    unlink(big);
    rmdir(dir);
    lb_free(fifo);
    lb_free(big);
}
END_TEST

/* An anchor of ~20k nodes used in an ignored manifest field, and 200 variants that each set
 * one key: every variant's tree shares the big subtree with the base (no copy), only the
 * path to the key a variant sets is its own, and the base tree is left as it was. */
START_TEST(variants_share_tree)
{
    char *yaml = lb_sprintf(HDR "nodes: { a: { type: host }, b: { type: host } }\n"
                            "links:\n  - { between: [a, b] }\n"
                            "kubernetes:\n"
                            "  - apiVersion: v1\n    kind: ConfigMap\n    metadata: { name: big }\n"
                            "    extra:\n"
                            "      l0: &l0 [x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x]\n"
                            "      l1: &l1 [*l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0]\n"
                            "      l2: [*l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1]\n"
                            "variants:\n");
    for (int v = 0; v < 200; v++) {
        char *more = lb_sprintf("%s  v%d: { set: { links.0.latency: %dus } }\n", yaml, v, v + 1);
        lb_free(yaml);
        yaml = more;
    }
    scn_t *s = NULL;
    scn_diag_t d;
    int rc = scn_load_string(yaml, "t.yaml", &s, &d, NULL);
    ck_assert_msg(rc == 0, "%s:%d:%d: %s", d.file, d.line, d.col, d.msg);
    const scn_node_t *kube0 = yt_get(scn_variant_model(s, 0)->tree, "kubernetes", NULL);
    const scn_node_t *links0 = yt_get(scn_variant_model(s, 0)->tree, "links", NULL);
    for (size_t v = 1; v < scn_variant_count(s); v++) {
        const scn_model_t *m = scn_variant_model(s, v);
        ck_assert_ptr_eq(yt_get(m->tree, "kubernetes", NULL), kube0);     /* shared */
        ck_assert_ptr_ne(yt_get(m->tree, "links", NULL), links0);         /* its own */
        ck_assert_int_eq(elem_int(m->links.v[0].cfg, "latency"), (int64_t)(v + 1) * SIM_US);
    }
    /* an alias is the anchored node itself, not a copy */
    const scn_node_t *extra = yt_get(scn_node_at(kube0, 0), "extra", NULL);
    const scn_node_t *l2 = yt_get(extra, "l2", NULL);
    ck_assert_ptr_eq(scn_node_at(l2, 0), scn_node_at(l2, 9));
    ck_assert_ptr_eq(scn_node_at(l2, 0), yt_get(extra, "l1", NULL));
    /* a command-line override copies paths again and leaves shared subtrees shared */
    ck_assert_int_eq(scn_override(s, "kubernetes.ConfigMap/big.data={ a: b }", &d), 0);
    ck_assert_ptr_ne(yt_get(scn_variant_model(s, 0)->tree, "kubernetes", NULL), NULL);
    const scn_node_t *ks = yt_get(scn_variant_model(s, 3)->tree, "kubernetes-set", NULL);
    ck_assert_uint_eq(scn_node_len(ks), 1);
    ck_assert_str_eq(k8s_kv_get(&scn_variant_k8s(s, 3)->configmaps.v[0]->data, "a"), "b");
    scn_free(s);
    lb_free(yaml);
}
END_TEST

/* Aliases count as the copies they stand for: a small file whose aliases would expand past
 * the node budget is refused at the alias that crosses it. */
START_TEST(alias_budget)
{
    char *yaml = lb_strdup(HDR "a0: &a0 [x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 6; i++) {
        char *more = lb_sprintf("%sa%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, "
                                "*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", yaml, i, i,
                                i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1,
                                i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
        lb_free(yaml);
        yaml = more;
    }
    scn_t *s = NULL;
    scn_diag_t d;
    ck_assert_int_eq(scn_load_string(yaml, "t.yaml", &s, &d, NULL), LB_EPARSE);
    ck_assert_int_eq(d.line, 7);                        /* a4: 16 x 69905 nodes */
    ck_assert_msg(strstr(d.msg, "YAML nodes after expanding aliases (alias '*a3' stands for"),
                  "%s", d.msg);
    lb_free(yaml);
}
END_TEST

/* A stop request (SIGINT/SIGTERM in ./sim) ends loading and building with LB_EINTR. The
 * request is sticky for the process, so this runs in a child of its own. */
START_TEST(stop_request_interrupts_loading_and_building)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int bad = 0;
        scn_t *s = NULL;
        scn_diag_t d;
        bad |= scn_load_string(HDR "nodes: { a: { type: host }, b: { type: host } }\n"
                               "links: [ { between: [a, b] } ]\n", "t.yaml", &s, &d, NULL) != 0;
        LB_VEC(char) big = { 0 };               /* more YAML events than one stop check */
        char *head = lb_strdup(HDR "kubernetes:\n  - apiVersion: v1\n    kind: ConfigMap\n"
                               "    metadata: { name: big }\n    data:\n");
        lb_vec_reserve(&big, strlen(head) + 1);
        strcpy(big.v, head);
        big.n = strlen(head);
        lb_free(head);
        for (int i = 0; i < 10000; i++) {
            char line[32];
            int l = snprintf(line, sizeof line, "      k%d: v\n", i);
            lb_vec_reserve(&big, big.n + (size_t)l + 1);
            memcpy(big.v + big.n, line, (size_t)l + 1);
            big.n += (size_t)l;
        }
        scn_request_stop();
        scn_t *s2 = NULL;
        bad |= (scn_load_string(big.v, "big.yaml", &s2, &d, NULL) != LB_EINTR) << 1;
        bad |= (strstr(d.msg, "interrupted while loading") == NULL) << 2;
        scn_run_t *r = NULL;
        bad |= (scn_run_new(s, 0, 1, &r, &d) != LB_EINTR) << 3;
        bad |= (strstr(d.msg, "interrupted while building variant 'default'") == NULL) << 4;
        bad |= (r != NULL) << 5;
        _exit(bad);
    }
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: status %d", st);
}
END_TEST

/* ---- a valid chain ---------------------------------------------------------------------- */

static const char *chain_yaml =
    "name: chain\n"
    "description: three routers in a row\n"
    "seed: 7\n"
    "duration: 30s\n"
    "nodes:\n"
    "  client: { type: host }\n"
    "  r1: { type: router }\n"
    "  r2: { type: router, conntrack: true }\n"
    "  r3: { type: router }\n"
    "  web: { type: host, addresses: [10.9.9.9], tcp: { syn-retries: 2, early-retrans: 0 } }\n"
    "links:\n"
    "  - { between: [client, r1], bandwidth: 10Gbps, latency: 50us, queue: 1MB }\n"
    "  - { between: [r1, r2] }\n"
    "  - { between: [r2, r3], subnet: 10.10.0.0/30 }\n"
    "  - { between: [r3, web], loss: 1% }\n";

static uint32_t ip(const char *s)
{
    uint32_t a = 0;
    ck_assert_int_eq(lb_ip_parse(s, &a), 0);
    return a;
}

static void assert_route(net_node_t *n, const char *dst, const char *gw, const char *ifname,
                         int plen)
{
    const net_route_t *r = net_route_lookup(n, ip(dst));
    ck_assert_msg(r != NULL, "%s: no route to %s", n->name, dst);
    char b1[16], b2[16];
    ck_assert_msg(r->gw == (gw ? ip(gw) : 0), "%s -> %s: gw %s, want %s", n->name, dst,
                  lb_ip_str(r->gw, b1), gw ? lb_ip_str(ip(gw), b2) : "on-link");
    ck_assert_str_eq(r->ifc->name, ifname);
    ck_assert_int_eq(r->plen, plen);
}

START_TEST(chain_builds)
{
    scn_t *s = NULL;
    scn_diag_t d;
    int rc = scn_load_string(chain_yaml, "chain.yaml", &s, &d, NULL);
    ck_assert_msg(rc == 0, "%s:%d:%d: %s", d.file, d.line, d.col, d.msg);
    ck_assert_str_eq(scn_name(s), "chain");
    ck_assert_str_eq(scn_description(s), "three routers in a row");
    ck_assert_str_eq(scn_file(s), "chain.yaml");
    ck_assert_uint_eq(scn_seed(s), 7);
    ck_assert_int_eq(scn_duration(s), 30 * SIM_S);
    ck_assert_uint_eq(scn_variant_count(s), 1);
    ck_assert_str_eq(scn_variant_name(s, 0), "default");
    ck_assert_int_eq(scn_variant_find(s, "default"), 0);
    ck_assert_int_eq(scn_variant_find(s, "nope"), -1);

    scn_run_t *r = NULL;
    rc = scn_run_new(s, 0, scn_seed(s), &r, &d);
    ck_assert_msg(rc == 0, "%s:%d:%d: %s", d.file, d.line, d.col, d.msg);
    ck_assert_str_eq(scn_run_variant(r), "default");
    net_t *net = scn_run_net(r);
    ck_assert_uint_eq(net_node_count(net), 5);
    net_node_t *client = scn_run_node(r, "client"), *r1 = scn_run_node(r, "r1");
    net_node_t *r2 = scn_run_node(r, "r2"), *r3 = scn_run_node(r, "r3");
    net_node_t *web = scn_run_node(r, "web");
    ck_assert_ptr_nonnull(web);
    ck_assert_ptr_null(scn_run_node(r, "r4"));
    ck_assert(!client->forwarding && r1->forwarding && r2->forwarding && !web->forwarding);
    ck_assert_ptr_nonnull(r2->nf);          /* conntrack: true */
    ck_assert_ptr_null(r1->nf);
    /* addresses: /30s in link order, explicit subnet for r2-r3 */
    ck_assert_uint_eq(net_node_addr(client), ip("10.0.0.1"));
    ck_assert_uint_eq(r1->ifaces.n, 2);
    ck_assert_str_eq(r1->ifaces.v[0]->name, "eth0");
    ck_assert_uint_eq(r1->ifaces.v[0]->addr, ip("10.0.0.2"));
    ck_assert_str_eq(r1->ifaces.v[1]->name, "eth1");
    ck_assert_uint_eq(r1->ifaces.v[1]->addr, ip("10.0.0.5"));
    ck_assert_int_eq(r1->ifaces.v[1]->plen, 30);
    ck_assert_uint_eq(r2->ifaces.v[1]->addr, ip("10.10.0.1"));
    ck_assert_uint_eq(r3->ifaces.v[0]->addr, ip("10.10.0.2"));
    ck_assert_uint_eq(r3->ifaces.v[1]->addr, ip("10.0.0.9"));
    ck_assert_uint_eq(net_node_addr(web), ip("10.0.0.10"));
    ck_assert(net_node_is_local(web, ip("10.9.9.9")));
    /* link parameters */
    const net_link_params_t *lp = net_link_params(client->ifaces.v[0]->link);
    ck_assert_uint_eq(lp->bandwidth_bps, 10000000000ull);
    ck_assert_int_eq(lp->latency, 50 * SIM_US);
    ck_assert_uint_eq(lp->queue_bytes, 1000000);
    lp = net_link_params(r1->ifaces.v[1]->link);
    ck_assert_uint_eq(lp->bandwidth_bps, 1000000000ull);      /* defaults */
    ck_assert_int_eq(lp->latency, 100 * SIM_US);
    ck_assert_uint_eq(lp->queue_bytes, 0);
    ck_assert_double_eq(lp->loss, 0);
    ck_assert_double_eq_tol(net_link_params(web->ifaces.v[0]->link)->loss, 0.01, 1e-12);
    /* routes: single-interface hosts default via the peer, routers by shortest path */
    assert_route(client, "10.0.0.10", "10.0.0.2", "eth0", 0);
    assert_route(web, "10.0.0.1", "10.0.0.9", "eth0", 0);
    assert_route(r1, "10.0.0.10", "10.0.0.6", "eth1", 30);
    assert_route(r1, "10.10.0.2", "10.0.0.6", "eth1", 30);
    assert_route(r1, "10.9.9.9", "10.0.0.6", "eth1", 32);
    assert_route(r1, "10.0.0.1", NULL, "eth0", 30);         /* connected */
    assert_route(r2, "10.0.0.1", "10.0.0.5", "eth0", 30);
    assert_route(r2, "10.9.9.9", "10.10.0.2", "eth1", 32);
    assert_route(r3, "10.0.0.2", "10.10.0.1", "eth0", 30);
    assert_route(r3, "10.9.9.9", "10.0.0.10", "eth1", 32);
    ck_assert_ptr_null(net_route_lookup(r1, ip("8.8.8.8")));
    /* TCP parameters from the scenario, the rest Linux defaults */
    tcp_params_t def;
    tcp_params_default(&def);
    ck_assert_int_eq(tcp_stack_params(web)->syn_retries, 2);
    ck_assert_int_eq(tcp_stack_params(web)->retries2, def.retries2);
    ck_assert_int_eq(tcp_stack_params(web)->rto_min, def.rto_min);
    ck_assert_int_eq(tcp_stack_params(web)->early_retrans, 0);
    ck_assert_int_eq(tcp_stack_params(client)->early_retrans, 3);
    scn_run_free(r);
    scn_free(s);
}
END_TEST

START_TEST(routing_rules)
{
    /* diamond: r1 reaches r4 through r2 (first link) and r3; ties go by link order.
     * h is a host with two links: nobody transits it. */
    const char *y =
        "name: diamond\nduration: 1s\n"
        "nodes:\n"
        "  r1: { type: router }\n  r2: { type: router }\n  r3: { type: router }\n"
        "  r4: { type: router }\n  web: { type: host }\n"
        "  h: { type: host }\n  r5: { type: router }\n  y: { type: host }\n"
        "links:\n"
        "  - { between: [r1, r2] }\n"      /* 10.0.0.0/30  r1 .1 r2 .2 */
        "  - { between: [r1, r3] }\n"      /* 10.0.0.4/30  r1 .5 r3 .6 */
        "  - { between: [r2, r4] }\n"      /* 10.0.0.8/30  r2 .9 r4 .10 */
        "  - { between: [r3, r4] }\n"      /* 10.0.0.12/30 r3 .13 r4 .14 */
        "  - { between: [r4, web] }\n"     /* 10.0.0.16/30 r4 .17 web .18 */
        "  - { between: [r1, h] }\n"       /* 10.0.0.20/30 r1 .21 h .22 */
        "  - { between: [h, r5] }\n"       /* 10.0.0.24/30 h .25 r5 .26 */
        "  - { between: [r5, y] }\n";      /* 10.0.0.28/30 r5 .29 y .30 */
    scn_t *s = NULL;
    scn_diag_t d;
    ck_assert_int_eq(scn_load_string(y, "d.yaml", &s, &d, NULL), 0);
    scn_run_t *r = NULL;
    ck_assert_int_eq(scn_run_new(s, 0, 1, &r, &d), 0);
    net_node_t *r1 = scn_run_node(r, "r1"), *r4 = scn_run_node(r, "r4");
    assert_route(r1, "10.0.0.18", "10.0.0.2", "eth0", 30);   /* via r2, not r3 */
    assert_route(r1, "10.0.0.14", "10.0.0.6", "eth1", 30);   /* r3-r4 subnet: r3 is nearer */
    assert_route(r4, "10.0.0.1", "10.0.0.9", "eth0", 30);
    assert_route(r4, "10.0.0.5", "10.0.0.13", "eth1", 30);
    /* the h-r5 subnet is reachable (h is its endpoint), but nothing behind h is */
    assert_route(r1, "10.0.0.26", "10.0.0.22", "eth2", 30);
    ck_assert_ptr_null(net_route_lookup(r1, ip("10.0.0.30")));
    ck_assert_ptr_null(net_route_lookup(r4, ip("10.0.0.30")));
    /* h itself (two interfaces, a host) has routes of its own */
    assert_route(scn_run_node(r, "h"), "10.0.0.18", "10.0.0.21", "eth0", 30);
    assert_route(scn_run_node(r, "h"), "10.0.0.30", "10.0.0.26", "eth1", 30);
    scn_run_free(r);
    scn_free(s);
}
END_TEST

/* ---- groups and build_nodes --------------------------------------------------------------- */

static size_t probe_counts[3];
static char probe_first[3][32];

static const elem_param_t probe_params[] = {
    { "refs", P_STRLIST, NULL, "node references to resolve", NULL, NULL },
    { NULL, 0, NULL, NULL, NULL, NULL }
};

static int probe_build(build_ctx_t *ctx, const char *name, const elem_cfg_t *cfg)
{
    (void)name;
    const elem_val_t *refs = elem_get(cfg, "refs");
    for (size_t i = 0; i < refs->u.strs.n && i < 3; i++) {
        net_node_t **nodes;
        probe_counts[i] = build_nodes(ctx, refs->u.strs.v[i], &nodes);
        snprintf(probe_first[i], sizeof probe_first[i], "%s",
                 probe_counts[i] ? nodes[0]->name : "");
    }
    build_put(ctx, "probe", "test", ctx);
    ck_assert_ptr_eq(build_get(ctx, "probe", "test"), ctx);
    ck_assert_ptr_null(build_get(ctx, "probe", "other"));
    if (refs->u.strs.n > 3)
        return build_error(ctx, refs->u.strs.pos[3], "probe: fourth ref '%s' not allowed",
                           refs->u.strs.v[3]);
    return 0;
}

static const elem_type_t probe_type = { "test-probe", ELEM_APP, "test", probe_params, probe_build };

/* Loads yaml (as file `file`) and builds its first variant, asserting both work. */
static scn_run_t *load_run(const char *yaml, const char *file, scn_t **s)
{
    scn_diag_t d;
    int rc = scn_load_string(yaml, file, s, &d, NULL);
    ck_assert_msg(rc == 0, "%s:%d:%d: %s", d.file, d.line, d.col, d.msg);
    scn_run_t *r = NULL;
    rc = scn_run_new(*s, 0, 1, &r, &d);
    ck_assert_msg(rc == 0, "%s:%d:%d: %s", d.file, d.line, d.col, d.msg);
    return r;
}

START_TEST(groups)
{
    if (!elem_type_find("test-probe")) elem_register(&probe_type);
    const char *y =
        "name: groups\nduration: 1s\n"
        "nodes:\n"
        "  client: { type: host, count: 3 }\n"
        "  r1: { type: router }\n"
        "  web: { type: host, count: 2 }\n"
        "  lb: { type: router, count: 2 }\n"
        "links:\n"
        "  - { between: [client, r1] }\n"
        "  - { between: [r1, lb] }\n"
        "  - { between: [lb, web] }\n"
        "apps:\n"
        "  p: { type: test-probe, refs: [client, web1, \"cl*\"] }\n";
    scn_t *s = NULL;
    scn_diag_t d;
    scn_run_t *r = load_run(y, "g.yaml", &s);
    ck_assert_uint_eq(net_node_count(scn_run_net(r)), 8);
    ck_assert_ptr_null(scn_run_node(r, "client"));
    ck_assert_ptr_nonnull(scn_run_node(r, "client2"));
    ck_assert_ptr_null(scn_run_node(r, "client3"));
    net_node_t *r1 = scn_run_node(r, "r1");
    ck_assert_uint_eq(r1->ifaces.n, 5);     /* 3 clients + 2 lbs */
    ck_assert_uint_eq(net_node_addr(scn_run_node(r, "client0")), ip("10.0.0.1"));
    ck_assert_uint_eq(net_node_addr(scn_run_node(r, "client2")), ip("10.0.0.9"));
    ck_assert_uint_eq(r1->ifaces.v[2]->addr, ip("10.0.0.10"));
    ck_assert_str_eq(r1->ifaces.v[4]->name, "eth4");
    /* zipped: lb0-web0, lb1-web1 */
    net_node_t *lb1 = scn_run_node(r, "lb1"), *web1 = scn_run_node(r, "web1");
    ck_assert_uint_eq(lb1->ifaces.n, 2);
    ck_assert_uint_eq(web1->ifaces.n, 1);
    ck_assert_uint_eq(net_node_addr(web1), ip("10.0.0.26"));
    ck_assert_uint_eq(lb1->ifaces.v[1]->addr, ip("10.0.0.25"));
    assert_route(scn_run_node(r, "client1"), "10.0.0.26", "10.0.0.6", "eth0", 0);
    assert_route(r1, "10.0.0.26", "10.0.0.18", "eth4", 30);
    /* build_nodes from an element */
    ck_assert_uint_eq(probe_counts[0], 3);
    ck_assert_str_eq(probe_first[0], "client0");
    ck_assert_uint_eq(probe_counts[1], 1);
    ck_assert_str_eq(probe_first[1], "web1");
    ck_assert_uint_eq(probe_counts[2], 3);
    scn_run_free(r);
    scn_free(s);

    /* a build error carries its position and frees everything */
    const char *y2 =
        "name: groups\nduration: 1s\n"
        "nodes: { a: { type: host } }\n"
        "apps:\n  p: { type: test-probe, refs: [a, a, a, zz] }\n";
    ck_assert_int_eq(scn_load_string(y2, "g2.yaml", &s, &d, NULL), 0);
    ck_assert_int_eq(scn_run_new(s, 0, 1, &r, &d), LB_EINVAL);
    char *got = diag_text(&d);
    ck_assert_str_eq(got, "g2.yaml:5:42: probe: fourth ref 'zz' not allowed");
    lb_free(got);
    scn_free(s);
}
END_TEST

/* routing: explicit -- a node has its connected subnets, its gateway and its routes, and
 * nothing computed; `routing: auto` (the default) keeps the breadth-first routes, and a
 * route of its own wins over a computed one to the same prefix. */
static const char *explicit_yaml =
    "name: explicit\nduration: 1s\n"
    "nodes:\n"
    "  client: { type: host, routing: explicit,\n"
    "            routes: [ { to: 10.99.0.0/16, via: 10.0.0.2 },\n"
    "                      { to: 10.66.0.0/16, type: blackhole },\n"
    "                      { to: 10.67.0.0/16, type: unreachable },\n"
    "                      { to: 10.68.0.0/16, type: prohibit } ] }\n"
    "  r1: { type: router, routing: explicit, gateway: 10.0.0.6 }\n"
    "  r2: { type: router, routes: [ { to: 10.0.0.0/30, dev: eth0 } ] }\n"
    "  web: { type: host, gateway: 10.0.0.9, addresses: [10.99.0.10] }\n"
    "links:\n"
    "  - { between: [client, r1] }\n"      /* 10.0.0.0/30 */
    "  - { between: [r1, r2] }\n"          /* 10.0.0.4/30 */
    "  - { between: [r2, web] }\n";        /* 10.0.0.8/30 */

START_TEST(explicit_routing)
{
    scn_t *s = NULL;
    scn_run_t *r = load_run(explicit_yaml, "e.yaml", &s);
    net_node_t *client = scn_run_node(r, "client"), *r1 = scn_run_node(r, "r1");
    net_node_t *r2 = scn_run_node(r, "r2"), *web = scn_run_node(r, "web");
    /* client: connected + its routes only; no default route */
    ck_assert_uint_eq(client->routes.n, 5);
    assert_route(client, "10.0.0.2", NULL, "eth0", 30);
    assert_route(client, "10.99.0.10", "10.0.0.2", "eth0", 16);
    ck_assert_ptr_null(net_route_lookup(client, ip("10.0.0.10")));   /* web's link: none */
    ck_assert_int_eq(net_route_lookup(client, ip("10.66.1.1"))->type, NET_RT_BLACKHOLE);
    ck_assert_int_eq(net_route_lookup(client, ip("10.67.1.1"))->type, NET_RT_UNREACHABLE);
    ck_assert_int_eq(net_route_lookup(client, ip("10.68.1.1"))->type, NET_RT_PROHIBIT);
    /* r1: two connected subnets and the gateway; no route back to anything else */
    ck_assert_uint_eq(r1->routes.n, 3);
    assert_route(r1, "10.99.0.10", "10.0.0.6", "eth1", 0);
    /* r2 (auto): its own on-link route to client's subnet wins over the computed one */
    assert_route(r2, "10.0.0.1", NULL, "eth0", 30);
    assert_route(r2, "10.99.0.10", "10.0.0.10", "eth1", 32);
    /* web (auto, one interface): the gateway instead of the computed default route */
    assert_route(web, "10.0.0.1", "10.0.0.9", "eth0", 0);
    ck_assert_uint_eq(web->routes.n, 2);
    scn_run_free(r);
    scn_free(s);
}
END_TEST

/* Bad routes are errors at the offending key when the variant is built (exit 2). */
static const struct { const char *from, *to, *want; } route_bad[] = {
    { "via: 10.0.0.2 }", "via: 10.0.5.2 }", "e.yaml:5:48: via 10.0.5.2 is not on a connected "
      "subnet of node 'client' (eth0 10.0.0.1/30); expected a next hop on one of them (Linux: "
      "Nexthop has invalid gateway)" },
    { "via: 10.0.0.2 }", "via: 10.0.0.2, dev: eth1 }", "e.yaml:5:63: dev 'eth1': node "
      "'client' has no such interface; it has eth0 10.0.0.1/30" },
    { "via: 10.0.0.2 }", "via: 10.0.0.1 }", "e.yaml:5:48: via 10.0.0.1 is an address of node "
      "'client' itself; expected a neighbour's address" },
    { "via: 10.0.0.2 }", "dev: eth0, type: prohibit }", "e.yaml:5:48: a prohibit route has no "
      "next hop; expected no via or dev with type prohibit" },
    { "via: 10.0.0.2 }", "type: unicast }", "e.yaml:5:23: route to 10.99.0.0/16: expected via "
      "(a next hop), dev (an interface) or a type (blackhole, unreachable, prohibit)" },
    { "gateway: 10.0.0.6", "gateway: 10.0.0.9", "e.yaml:9:51: gateway 10.0.0.9 is not on a "
      "connected subnet of node 'r1' (eth0 10.0.0.2/30, eth1 10.0.0.5/30); expected a next hop "
      "on one of them (Linux: Nexthop has invalid gateway)" },
    { "10.66.0.0/16", "10.99.0.0/16", "e.yaml:6:29: to 10.99.0.0/16: node 'client' has a "
      "route to this prefix already (an earlier entry of routes); expected one route per "
      "prefix (Linux: File exists)" },
    { "to: 10.0.0.0/30, dev: eth0", "to: 10.5.0.0/16, dev: eth0, via: 10.0.0.10",
      "e.yaml:10:68: via 10.0.0.10 is not on the subnet of eth0 (node 'r2': eth0 10.0.0.6/30, "
      "eth1 10.0.0.9/30); expected a next hop on eth0's subnet (Linux: Nexthop has invalid "
      "gateway)" },
};

START_TEST(explicit_routing_errors)
{
    const char *from = route_bad[_i].from;
    const char *at = strstr(explicit_yaml, from);
    ck_assert_ptr_nonnull(at);
    char *y = lb_sprintf("%.*s%s%s", (int)(at - explicit_yaml), explicit_yaml, route_bad[_i].to,
                         at + strlen(from));
    scn_t *s = NULL;
    scn_run_t *r = NULL;
    scn_diag_t d;
    int rc = scn_load_string(y, "e.yaml", &s, &d, NULL);
    if (rc == 0) rc = scn_run_new(s, 0, 1, &r, &d);
    ck_assert_int_eq(rc, LB_EINVAL);
    ck_assert_ptr_null(r);
    char *got = diag_text(&d);
    ck_assert_msg(strcmp(got, route_bad[_i].want) == 0, "case %d:\n got: %s\nwant: %s", _i, got,
                  route_bad[_i].want);
    lb_free(got);
    lb_free(y);
    scn_free(s);
}
END_TEST

/* A shared segment: a link with members and a subnet. Chosen addresses, the free ones in
 * member order, a VIP on a member's interface; automatic routes reach the segment and the
 * VIP through it; explicit hosts route by their gateway on it; traffic may start on a
 * router. */
static const char *segment_yaml =
    "name: seg\nduration: 6s\n"
    "nodes:\n"
    "  client: { type: host }\n"
    "  edge: { type: router }\n"
    "  web: { type: host, count: 2, routing: explicit, gateway: 10.0.1.1 }\n"
    "  db: { type: host }\n"
    "links:\n"
    "  - { between: [client, edge] }\n"
    "  - subnet: 10.0.1.0/24\n"
    "    name: lan\n"
    "    members:\n"
    "      - { node: web0, address: 10.0.1.2/24, addresses: [10.0.1.100] }\n"
    "      - { node: edge, address: 10.0.1.1 }\n"
    "      - { node: web1 }\n"
    "      - { node: db }\n"
    "apps:\n"
    "  site: { type: http-server, on: web, locations: [ { path: / } ] }\n"
    "traffic:\n"
    "  browse: { type: http-client, from: client, to: 10.0.1.100, rate: 20/s }\n"
    "  local: { type: http-client, from: edge, to: web1, rate: 20/s }\n"
    "  ghost: { type: http-client, from: client, to: 10.0.1.77, rate: 1/s, requests: 1,\n"
    "           arrival: constant }\n"
    "expect:\n"
    "  \"*\": [ \"browse.status_2xx_ratio == 1\", \"local.status_2xx_ratio == 1\",\n"
    "          \"ghost.failed_ratio == 1\",\n"
    "          \"ghost.connect_timeout_ratio == 0\", \"counter.drops.neigh-failed >= 1\" ]\n";

START_TEST(segment_builds)
{
    scn_t *s = NULL;
    scn_run_t *r = load_run(segment_yaml, "s.yaml", &s);
    net_node_t *edge = scn_run_node(r, "edge"), *web0 = scn_run_node(r, "web0");
    net_node_t *web1 = scn_run_node(r, "web1"), *db = scn_run_node(r, "db");
    net_node_t *client = scn_run_node(r, "client");
    ck_assert_uint_eq(web0->ifaces.v[0]->addr, ip("10.0.1.2"));
    ck_assert_int_eq(web0->ifaces.v[0]->plen, 24);
    ck_assert_uint_eq(edge->ifaces.v[1]->addr, ip("10.0.1.1"));
    ck_assert_str_eq(edge->ifaces.v[1]->name, "eth1");
    ck_assert_uint_eq(web1->ifaces.v[0]->addr, ip("10.0.1.3"));     /* first free */
    ck_assert_uint_eq(db->ifaces.v[0]->addr, ip("10.0.1.4"));
    ck_assert(net_node_is_local(web0, ip("10.0.1.100")));
    ck_assert_str_eq(net_fabric_name(web0->ifaces.v[0]->fabric), "lan");
    uint32_t held;
    ck_assert_str_eq(net_fabric_holder(web0->ifaces.v[0]->fabric, ip("10.0.1.100"), 32, &held,
                                       NULL), "web0");
    /* automatic: the client's default route via its peer; db (its only interface on the
     * segment) a default route via the segment's first router; explicit web hosts:
     * connected + gateway only */
    assert_route(client, "10.0.1.100", "10.0.0.2", "eth0", 0);
    assert_route(db, "10.0.0.1", "10.0.1.1", "eth0", 0);
    ck_assert_uint_eq(db->routes.n, 2);
    assert_route(edge, "10.0.1.100", NULL, "eth1", 24);
    assert_route(web1, "10.0.0.1", "10.0.1.1", "eth0", 0);
    ck_assert_uint_eq(web1->routes.n, 2);
    ck_assert_int_eq(scn_run_execute(r, NULL, NULL), 0);
    scn_verdict_t *v = NULL;
    size_t nv = scn_run_check(r, &v);
    ck_assert_uint_eq(nv, 5);
    for (size_t i = 0; i < nv; i++) ck_assert_msg(v[i].pass, "%s: %s", v[i].text, v[i].detail);
    lb_free(v);
    scn_run_free(r);
    scn_free(s);
}
END_TEST

START_TEST(iptables_error_position)
{
    const char *y =
        "name: ipt\nduration: 1s\n"
        "nodes:\n"
        "  nat:\n"
        "    type: router\n"
        "    iptables:\n"
        "      - \"-t nat -A POSTROUTING -o eth1 -j MASQUERADE\"\n"
        "      - \"bogus\"\n";
    scn_t *s = NULL;
    scn_run_t *r = NULL;
    scn_diag_t d;
    ck_assert_int_eq(scn_load_string(y, "ipt.yaml", &s, &d, NULL), 0);
    ck_assert_int_eq(scn_run_new(s, 0, 1, &r, &d), LB_EINVAL);
    ck_assert_ptr_null(r);
    ck_assert_str_eq(d.file, "ipt.yaml");
    ck_assert_int_eq(d.line, 8);
    ck_assert_int_eq(d.col, 9);
    ck_assert_msg(strncmp(d.msg, "iptables: ", 10) == 0 && strlen(d.msg) > 10, "%s", d.msg);
    scn_free(s);
}
END_TEST

/* ---- variants and overrides ------------------------------------------------------------------ */

static const char *variant_yaml =
    "name: core-nat\n"
    "duration: 60s\n"
    "nodes:\n"
    "  client: { type: host, count: 2 }\n"
    "  r1: { type: router }\n"
    "  web: { type: host }\n"
    "links:\n"
    "  - { between: [client, r1], latency: 50us }\n"
    "  - { between: [r1, web] }\n"
    "apps:\n"
    "  site: { type: http-server, on: web, locations: [ { path: / } ] }\n"
    "traffic:\n"
    "  browse: { type: http-client, from: client, to: web, rate: 50/s }\n"
    "variants:\n"
    "  keepalive:   { set: { traffic.browse.keepalive: true } }\n"
    "  per-request:\n"
    "    description: one connection per request\n"
    "    set:\n"
    "      traffic.browse.keepalive: false\n"
    "      links.1.loss: 2%\n"
    "      nodes.web.tcp.syn-retries: 3\n"
    "      duration: 30s\n"
    "expect:\n"
    "  \"*\": [ \"browse.status_2xx_ratio >= 0.99 after 5s\" ]\n"
    "  per-request: [ \"client.failed_ratio < 1%\", \"counter.drops == 0 before 20s\" ]\n";

static const elem_cfg_t *traffic_cfg(const scn_t *s, size_t v, const char *name)
{
    const scn_elem_t *e = model_elem(scn_variant_model(s, v), ELEM_TRAFFIC, name);
    ck_assert_ptr_nonnull(e);
    return e->cfg;
}

START_TEST(variants)
{
    scn_t *s = NULL;
    scn_diag_t d;
    int rc = scn_load_string(variant_yaml, "v.yaml", &s, &d, NULL);
    ck_assert_msg(rc == 0, "%s:%d:%d: %s", d.file, d.line, d.col, d.msg);
    ck_assert_uint_eq(scn_variant_count(s), 2);
    ck_assert_str_eq(scn_variant_name(s, 1), "per-request");
    ck_assert_str_eq(scn_variant_description(s, 1), "one connection per request");
    ck_assert_str_eq(scn_variant_description(s, 0), "");
    ck_assert(elem_bool(traffic_cfg(s, 0, "browse"), "keepalive"));
    ck_assert(!elem_bool(traffic_cfg(s, 1, "browse"), "keepalive"));
    const elem_val_t *ka = elem_get(traffic_cfg(s, 1, "browse"), "keepalive");
    ck_assert(ka->set);
    ck_assert_int_eq(ka->pos.line, 19);           /* the override's own position */
    ck_assert_int_eq(ka->pos.col, 33);
    ck_assert_int_eq(scn_variant_model(s, 0)->duration, 60 * SIM_S);
    ck_assert_int_eq(scn_variant_model(s, 1)->duration, 30 * SIM_S);
    ck_assert_int_eq(scn_duration(s), 60 * SIM_S);
    ck_assert_uint_eq(scn_variant_model(s, 0)->expects.n, 1);
    ck_assert_uint_eq(scn_variant_model(s, 1)->expects.n, 3);

    /* build both: link loss and TCP parameters differ */
    scn_run_t *r0 = NULL, *r1 = NULL;
    rc = scn_run_new(s, 0, 1, &r0, &d);
    ck_assert_msg(rc == 0, "%s:%d:%d: %s", d.file, d.line, d.col, d.msg);
    rc = scn_run_new(s, 1, 1, &r1, &d);
    ck_assert_msg(rc == 0, "%s:%d:%d: %s", d.file, d.line, d.col, d.msg);
    net_node_t *w0 = scn_run_node(r0, "web"), *w1 = scn_run_node(r1, "web");
    ck_assert_double_eq(net_link_params(w0->ifaces.v[0]->link)->loss, 0);
    ck_assert_double_eq_tol(net_link_params(w1->ifaces.v[0]->link)->loss, 0.02, 1e-12);
    tcp_params_t def;
    tcp_params_default(&def);
    ck_assert_int_eq(tcp_stack_params(w0)->syn_retries, def.syn_retries);
    ck_assert_int_eq(tcp_stack_params(w1)->syn_retries, 3);
    ck_assert_int_eq(scn_run_duration(r1), 30 * SIM_S);

    /* command-line overrides apply to every variant; runs keep what they were built with */
    rc = scn_override(s, "links.0.latency=5ms", &d);
    ck_assert_msg(rc == 0, "%s:%d:%d: %s", d.file, d.line, d.col, d.msg);
    for (size_t v = 0; v < 2; v++) {
        const scn_model_t *m = scn_variant_model(s, v);
        ck_assert_int_eq(elem_int(m->links.v[0].cfg, "latency"), 5 * SIM_MS);
        ck_assert_str_eq(elem_get(m->links.v[0].cfg, "latency")->pos.file, "<command line>");
        ck_assert_int_eq(elem_get(m->links.v[0].cfg, "latency")->pos.col, 17);
    }
    net_node_t *c0 = scn_run_node(r0, "client0");
    ck_assert_int_eq(net_link_params(c0->ifaces.v[0]->link)->latency, 50 * SIM_US);
    scn_run_free(r0);
    scn_run_free(r1);

    /* overrides beat the variant's own set */
    ck_assert_int_eq(scn_override(s, "traffic.browse.keepalive=yes", &d), 0);
    ck_assert(elem_bool(traffic_cfg(s, 1, "browse"), "keepalive"));
    ck_assert_int_eq(scn_override(s, "traffic.browse.path=[/a, /b]", &d), 0);
    ck_assert_uint_eq(elem_get(traffic_cfg(s, 0, "browse"), "path")->u.strs.n, 2);

    /* bad overrides: exact messages, and nothing changes */
    static const struct { const char *kv, *want; } bad[] = {
        { "links.0.latency=fast",
          "<command line>:1:17: latency: expected a duration like 30s, 250ms, 10us; got 'fast'" },
        { "nodes.r9.count=3",
          "<command line>:1:7: cannot set 'nodes.r9.count': nodes has no 'r9'; did you mean 'r1'? nodes has: client, r1, web" },
        { "latency",
          "<command line>:1:1: bad override 'latency'; expected KEY=VALUE like traffic.browse.rate=100/s" },
        { "links.7.loss=0",
          "<command line>:1:7: cannot set 'links.7.loss': links is a list of 2; expected an index from 0 to 1, got '7'" },
        { "traffic.browse.rate=[1,",
          "<command line>:1:24: invalid YAML: did not find expected node content (while parsing a flow node at 1:24)" },
        { "expect.x=1",
          "<command line>:1:1: cannot set 'expect.x': variants and overrides cannot change 'expect'; expected a path into name, seed, duration, nodes, links, apps, traffic or cloud" },
        { "traffic.browse.ratee=5/s",
          "<command line>:1:16: unknown key 'ratee' in traffic 'browse' (http-client); did you mean 'rate'?" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_lt(scn_override(s, bad[i].kv, &d), 0);
        char *got = diag_text(&d);
        ck_assert_msg(strcmp(got, bad[i].want) == 0, "%s:\n got: %s\nwant: %s", bad[i].kv, got,
                      bad[i].want);
        lb_free(got);
    }
    ck_assert_int_eq(elem_int(scn_variant_model(s, 0)->links.v[0].cfg, "latency"), 5 * SIM_MS);
    scn_free(s);
}
END_TEST

/* ---- registry ----------------------------------------------------------------------------------- */

START_TEST(registry)
{
    ck_assert_ptr_nonnull(elem_type_find("host"));
    ck_assert_ptr_nonnull(elem_type_find("router"));
    ck_assert_int_eq(elem_type_find("router")->section, ELEM_NODE);
    ck_assert_ptr_null(elem_type_find("switch"));
    size_t n = elem_type_count();
    ck_assert_uint_ge(n, 2);
    ck_assert_ptr_null(elem_type_at(n));
    elem_register_builtin();                /* idempotent */
    ck_assert_uint_eq(elem_type_count(), n);
    /* every model's types, registered through the table the Makefile generates from
     * models/ (no list of them in the scenario core) */
    static const char *const models[] = { "http-server", "http-client", "vnet", "k8s-cluster",
        "azure-internal-lb", "azure-app-gateway", "aws-nlb", "aws-alb" };
    for (size_t i = 0; i < sizeof models / sizeof *models; i++)
        ck_assert_msg(elem_type_find(models[i]), "%s not registered", models[i]);

    static const char *const c[] = { "latency", "bandwidth", "queue", "loss", "subnet" };
    ck_assert_str_eq(elem_closest("latncy", c, 5), "latency");
    ck_assert_str_eq(elem_closest("los", c, 5), "loss");
    ck_assert_str_eq(elem_closest("bandwith", c, 5), "bandwidth");
    ck_assert_ptr_null(elem_closest("xyz", c, 5));
    ck_assert_ptr_null(elem_closest("colour", c, 5));
    ck_assert_uint_eq(elem_distance("kitten", "sitting"), 3);
    ck_assert_uint_eq(elem_distance("", "abc"), 3);

    char err[256];
    elem_cfg_t *cfg = elem_cfg_defaults(link_params, err, sizeof err);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(elem_int(cfg, "bandwidth"), 1000000000);
    ck_assert_int_eq(elem_int(cfg, "latency"), 100 * SIM_US);
    ck_assert(!elem_get(cfg, "latency")->set);
    ck_assert_int_eq(elem_set(cfg, "latency", "2ms", err, sizeof err), 0);
    ck_assert_int_eq(elem_int(cfg, "latency"), 2 * SIM_MS);
    ck_assert(elem_get(cfg, "latency")->set);
    ck_assert_int_eq(elem_set(cfg, "latency", "soon", err, sizeof err), LB_EINVAL);
    ck_assert_str_eq(err, "latency: expected a duration like 30s, 250ms, 10us; got 'soon'");
    ck_assert_int_eq(elem_int(cfg, "latency"), 2 * SIM_MS);
    ck_assert_int_eq(elem_set(cfg, "jitter", "1ms", err, sizeof err), LB_ENOENT);
    ck_assert_int_eq(elem_set(cfg, "between", "[a, b]", err, sizeof err), 0);
    ck_assert_str_eq(elem_get(cfg, "between")->u.strs.v[1], "b");
    elem_cfg_free(cfg);

    /* a router's defaults: forwarding on, tcp object present with nothing set */
    cfg = elem_cfg_defaults(elem_type_find("router")->params, err, sizeof err);
    ck_assert(elem_bool(cfg, "forwarding"));
    ck_assert_uint_eq(elem_get(cfg, "tcp")->u.objs.n, 1);
    ck_assert(!elem_get(elem_get(cfg, "tcp")->u.objs.v[0], "mss")->set);
    elem_cfg_free(cfg);
    cfg = elem_cfg_defaults(elem_type_find("host")->params, err, sizeof err);
    ck_assert(!elem_bool(cfg, "forwarding"));
    elem_cfg_free(cfg);
}
END_TEST

/* ---- the tree ------------------------------------------------------------------------------------ */

START_TEST(tree_positions)
{
    const char *y = "a: 1\nb:\n  - x\n  - { k: v }\nc: &anc { q: 1 }\nd: *anc\n---\n- 2\n";
    scn_docs_t *docs = NULL;
    scn_diag_t d;
    ck_assert_int_eq(scn_docs_load_string(y, "m.yaml", &docs, &d), 0);
    ck_assert_uint_eq(scn_docs_count(docs), 2);
    const scn_node_t *r = scn_docs_at(docs, 0);
    ck_assert_int_eq(scn_node_kind(r), SCN_MAP);
    ck_assert_uint_eq(scn_node_len(r), 4);
    ck_assert_str_eq(scn_node_key(r, 1), "b");
    const scn_node_t *b = scn_node_get(r, "b");
    ck_assert_int_eq(scn_node_kind(b), SCN_SEQ);
    const scn_node_t *kv = scn_node_get(scn_node_at(b, 1), "k");
    ck_assert_str_eq(scn_node_str(kv), "v");
    ck_assert_int_eq(scn_node_pos(kv).line, 4);
    ck_assert_int_eq(scn_node_pos(kv).col, 10);
    ck_assert_str_eq(scn_node_pos(kv).file, "m.yaml");
    const scn_node_t *q = scn_node_get(scn_node_get(r, "d"), "q");   /* alias copied */
    ck_assert_str_eq(scn_node_str(q), "1");
    ck_assert_int_eq(scn_node_pos(q).line, 5);
    ck_assert_int_eq(scn_node_kind(scn_docs_at(docs, 1)), SCN_SEQ);
    ck_assert_ptr_null(scn_docs_at(docs, 2));
    scn_docs_free(docs);

    /* a billion-laughs style alias bomb is refused, not expanded */
    char *bomb = lb_strdup("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
    for (char c = 'b'; c <= 'h'; c++) {
        char *next = lb_sprintf("%s%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n", bomb, c, c,
                                c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1);
        lb_free(bomb);
        bomb = next;
    }
    ck_assert_int_eq(scn_docs_load_string(bomb, "bomb.yaml", &docs, &d), LB_EPARSE);
    ck_assert_ptr_nonnull(strstr(d.msg, "YAML nodes after expanding aliases"));
    lb_free(bomb);
}
END_TEST

/* ---- expectations ------------------------------------------------------------------------------- */

START_TEST(expect_parse_forms)
{
    scn_expect_t e;
    scn_diag_t d;
    elem_pos_t pos = { "x", 1, 1 };
    ck_assert_int_eq(expect_parse("browse.status_2xx_ratio >= 0.99 after 5s", pos, &e, &d), 0);
    ck_assert_str_eq(e.source, "browse");
    ck_assert_int_eq(e.stat, ST_RATIO);
    ck_assert_uint_eq(e.classes, 1u << M_2XX);
    ck_assert_int_eq(e.op, EX_GE);
    ck_assert_double_eq(e.number, 0.99);
    ck_assert_int_eq(e.from, 5 * SIM_S);
    ck_assert_int_eq(e.to, -1);
    expect_clear(&e);
    ck_assert_int_eq(expect_parse("client.latency_p99<250ms between 10s and 20s", pos, &e, &d), 0);
    ck_assert_ptr_null(e.source);
    ck_assert_int_eq(e.stat, ST_LATENCY_Q);
    ck_assert_double_eq(e.q, 0.99);
    ck_assert_int_eq(e.op, EX_LT);
    ck_assert_double_eq(e.number, 0.25);
    ck_assert_int_eq(e.from, 10 * SIM_S);
    ck_assert_int_eq(e.to, 20 * SIM_S);
    expect_clear(&e);
    ck_assert_int_eq(expect_parse("counter.drops.ct-invalid != 0 before 30s after 1s", pos, &e, &d), 0);
    ck_assert_int_eq(e.stat, ST_COUNTER);
    ck_assert_str_eq(e.counter, "drops.ct-invalid");
    ck_assert_int_eq(e.op, EX_NE);
    ck_assert_int_eq(e.from, SIM_S);
    ck_assert_int_eq(e.to, 30 * SIM_S);
    expect_clear(&e);
    ck_assert_int_eq(expect_parse("web.status_503_ratio == 1%", pos, &e, &d), 0);
    ck_assert_int_eq(e.stat, ST_STATUS_RATIO);
    ck_assert_int_eq(e.status, 503);
    ck_assert_double_eq(e.number, 0.01);
    expect_clear(&e);
    static const char *const bad[] = {
        "browse.status_999_ratio > 0", "browse > 1", "counter. > 1", "browse.requests > 1 after 5s after 6s",
        "browse.requests > 1 during 5s", "browse.requests > 1 between 1s 2s", "browse.requests >",
        ".requests > 1", "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(expect_parse(bad[i], pos, &e, &d) == LB_EINVAL, "accepted '%s'", bad[i]);
}
END_TEST

/* Expectations on what came back: calls with quoted arguments, their errors, and the
 * matching rules (a body substring; a header named case-blind with exactly that value). */
START_TEST(expect_response_calls)
{
    scn_expect_t e;
    scn_diag_t d;
    elem_pos_t pos = { "x", 3, 7 };
    ck_assert_int_eq(expect_parse("browse.body_match_ratio(\"app1\") >= 0.99 after 5s", pos,
                                  &e, &d), 0);
    ck_assert_str_eq(e.source, "browse");
    ck_assert_int_eq(e.stat, ST_BODY_MATCH);
    ck_assert_str_eq(e.arg[0], "app1");
    ck_assert_int_eq(e.op, EX_GE);
    ck_assert_int_eq(e.from, 5 * SIM_S);
    m_header_t hs[] = { { "Content-Type", "text/plain" }, { "X-Served-By", "pod-a" } };
    m_request_t q = { .body = "Hello from app1\n", .headers = hs, .n_headers = 2 };
    ck_assert(expect_response_matches(&e, &q));
    q.body = "Hello from app2";
    ck_assert(!expect_response_matches(&e, &q));
    q.body = NULL;                                  /* no response */
    ck_assert(!expect_response_matches(&e, &q));
    expect_clear(&e);
    ck_assert_int_eq(expect_parse("client.header_match_ratio( \"x-served-by\" ,\"pod-a\")>=0.5",
                                  pos, &e, &d), 0);
    ck_assert_ptr_null(e.source);
    ck_assert_int_eq(e.stat, ST_HEADER_MATCH);
    ck_assert_str_eq(e.arg[0], "x-served-by");
    ck_assert_str_eq(e.arg[1], "pod-a");
    ck_assert_double_eq(e.number, 0.5);
    ck_assert(expect_response_matches(&e, &q));
    hs[1].value = "pod-ab";                         /* the value is compared whole */
    ck_assert(!expect_response_matches(&e, &q));
    expect_clear(&e);
    ck_assert_int_eq(expect_parse("b.body_match_ratio(\"say \\\"hi\\\" >= 1\") < 1", pos, &e, &d), 0);
    ck_assert_str_eq(e.arg[0], "say \"hi\" >= 1");     /* escapes; operators inside quotes */
    ck_assert_int_eq(e.op, EX_LT);
    expect_clear(&e);
    static const struct { const char *text, *msg; } bad[] = {
        { "b.bodymatch_ratio(\"a\") > 0", "unknown function 'bodymatch_ratio'; did you mean "
          "'body_match_ratio'?" },
        { "b.header_match_ratio(\"x-a\") > 0", "header_match_ratio takes 2 arguments, got 1" },
        { "b.body_match_ratio(\"a\", \"b\") > 0", "body_match_ratio takes 1 argument, got 2" },
        { "b.body_match_ratio() > 0", "takes 1 argument, got 0" },
        { "b.body_match_ratio(app1) > 0", "argument 1 at character 20 is not a quoted string" },
        { "b.body_match_ratio(\"app1) > 0", "unterminated string in argument 1" },
        { "b.body_match_ratio(\"a\" > 0", "expected ',' or ')' at character 24" },
        { "b.body_match_ratio > 0", "body_match_ratio needs its arguments" },
        { "b.latency_p99(\"a\") > 0", "'latency_p99' takes no arguments" },
        { "b.body_match_ratio(\"\") > 0", "matches every body" },
        { "counter.x(\"a\") > 0", "is not SOURCE.FUNCTION(...)" },
        { "b.body_match_ratio(\"a\") 0.5", "expected an operator" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_msg(expect_parse(bad[i].text, pos, &e, &d) == LB_EINVAL, "accepted '%s'",
                      bad[i].text);
        ck_assert_msg(strstr(d.msg, bad[i].msg) != NULL, "'%s': %s", bad[i].text, d.msg);
        ck_assert_int_eq(d.line, 3);
        ck_assert_int_eq(d.col, 7);
    }
}
END_TEST

static void req(metrics_t *m, int src, sim_time_t t, int cls, int status, sim_time_t lat)
{
    m_request_t r = { .source = src, .t_start = t, .t_end = t + lat, .cls = cls,
                      .status = status };
    metrics_request(m, &r);
}

static scn_verdict_t eval(const metrics_t *m, const char *text, sim_time_t dur)
{
    scn_expect_t e;
    scn_diag_t d;
    ck_assert_int_eq(expect_parse(text, (elem_pos_t){ "x", 1, 1 }, &e, &d), 0);
    scn_verdict_t v;
    memset(&v, 0, sizeof v);
    expect_eval(&e, m, dur, 0, &v);
    v.text = NULL;
    expect_clear(&e);
    return v;
}

START_TEST(expect_eval_metrics)
{
    sim_time_t dur = 60 * SIM_S;
    metrics_t *m = metrics_new(SIM_S, dur);
    int browse = metrics_source(m, "browse"), api = metrics_source(m, "api");
    metrics_source(m, "idle");
    /* browse: 100 requests at 10..19 s: 98 x 200 (10 ms), 2 x 503 (100 ms) */
    for (int i = 0; i < 100; i++)
        req(m, browse, 10 * SIM_S + i * 100 * SIM_MS, i < 98 ? M_2XX : M_5XX, i < 98 ? 200 : 503,
            i < 98 ? 10 * SIM_MS : 100 * SIM_MS);
    /* api: 10 requests at 30 s, 5 connect timeouts */
    for (int i = 0; i < 10; i++)
        req(m, api, 30 * SIM_S, i < 5 ? M_2XX : M_CONNECT_TIMEOUT, i < 5 ? 200 : 0, 20 * SIM_MS);
    metrics_count(m, "drops.no-route", 31 * SIM_S, 4);

    scn_verdict_t v = eval(m, "browse.status_2xx_ratio >= 0.98", dur);
    ck_assert(v.pass);
    ck_assert_double_eq_tol(v.value, 0.98, 1e-12);
    ck_assert_str_eq(v.detail, "0.98 (98/100 requests in [0s, 60s))");
    v = eval(m, "browse.status_2xx_ratio > 0.98", dur);
    ck_assert(!v.pass);
    v = eval(m, "browse.status_5xx_ratio == 2%", dur);
    ck_assert(v.pass);
    v = eval(m, "browse.requests == 100", dur);
    ck_assert(v.pass);
    ck_assert_str_eq(v.detail, "100 of 100 requests in [0s, 60s)");
    v = eval(m, "client.requests == 110", dur);
    ck_assert(v.pass);
    v = eval(m, "client.completed == 105", dur);
    ck_assert(v.pass);
    v = eval(m, "client.failed_ratio < 0.05", dur);
    ck_assert(v.pass);
    ck_assert_double_eq_tol(v.value, 5.0 / 110, 1e-12);
    v = eval(m, "api.connect_timeout_ratio == 0.5", dur);
    ck_assert(v.pass);
    v = eval(m, "api.failed_ratio == 0.5 after 30s", dur);
    ck_assert(v.pass);
    /* the window: browse sent nothing after 20 s -> NaN, fails */
    v = eval(m, "browse.status_2xx_ratio >= 0 after 20s", dur);
    ck_assert(!v.pass);
    ck_assert(isnan(v.value));
    ck_assert_str_eq(v.detail, "no requests in window [20s, 60s)");
    v = eval(m, "browse.requests == 50 between 10s and 15s", dur);
    ck_assert_msg(v.pass, "%s", v.detail);
    v = eval(m, "idle.failed_ratio < 1", dur);
    ck_assert(!v.pass);
    v = eval(m, "nosuch.requests == 0", dur);       /* never recorded: zero */
    ck_assert(v.pass);
    /* latency: p50 10 ms, p99 100 ms (within the histogram's 1%) */
    v = eval(m, "browse.latency_p50 < 11ms", dur);
    ck_assert_msg(v.pass, "%s", v.detail);
    ck_assert_double_eq_tol(v.value, 0.010, 0.0001);
    v = eval(m, "browse.latency_p99 > 90ms", dur);
    ck_assert_msg(v.pass, "%s", v.detail);
    ck_assert_double_eq_tol(v.value, 0.100, 0.001);
    v = eval(m, "browse.latency_mean <= 0.0118", dur);
    ck_assert_msg(v.pass, "%s", v.detail);
    ck_assert_double_eq_tol(v.value, 0.0118, 0.0001);
    v = eval(m, "browse.latency_p90 < 1s after 30s", dur);
    ck_assert(!v.pass);
    ck_assert_str_eq(v.detail, "no completed requests in window [30s, 60s)");
    v = eval(m, "counter.drops.no-route == 4", dur);
    ck_assert(v.pass);
    ck_assert_str_eq(v.detail, "4 in [0s, 60s)");
    v = eval(m, "counter.drops.no-route == 0 before 30s", dur);
    ck_assert(v.pass);
    metrics_free(m);
}
END_TEST

START_TEST(run_check)
{
    scn_t *s = NULL;
    scn_diag_t d;
    const char *y =
        "name: chk\nduration: 20s\n"
        "nodes: { c: { type: host }, w: { type: host } }\n"
        "links: [ { between: [c, w] } ]\n"
        "traffic:\n  browse: { type: http-client, from: c, to: w, rate: 1/s }\n"
        "variants: { a: {}, b: {} }\n"
        "expect:\n"
        "  \"*\": [ \"browse.status_2xx_ratio >= 0.9\", \"browse.status_404_ratio == 0.1 after 10s\" ]\n"
        "  b: [ \"counter.drops >= 1\" ]\n";
    int rc = scn_load_string(y, "chk.yaml", &s, &d, NULL);
    ck_assert_msg(rc == 0, "%s:%d:%d: %s", d.file, d.line, d.col, d.msg);
    scn_run_t *r = NULL;
    ck_assert_int_eq(scn_run_new(s, 1, 1, &r, &d), 0);
    metrics_t *m = scn_run_metrics(r);
    int src = metrics_source(m, "browse");
    for (int i = 0; i < 20; i++)
        req(m, src, i * SIM_S, i == 15 ? M_4XX : M_2XX, i == 15 ? 404 : 200, SIM_MS);
    req(m, src, 5 * SIM_S, M_4XX, 404, SIM_MS);            /* before the window */
    scn_verdict_t *v = NULL;
    size_t n = scn_run_check(r, &v);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(v[0].variant, "b");
    ck_assert_str_eq(v[0].text, "browse.status_2xx_ratio >= 0.9");
    ck_assert_int_eq(v[0].pos.line, 9);
    ck_assert(v[0].pass);
    ck_assert_double_eq_tol(v[0].value, 19.0 / 21, 1e-12);
    ck_assert_msg(v[1].pass, "%s", v[1].detail);
    ck_assert_double_eq_tol(v[1].value, 0.1, 1e-12);       /* 1 of 10 requests at 10..19 s */
    ck_assert(!v[2].pass);                                   /* nothing dropped */
    ck_assert_str_eq(v[2].detail, "0 in [0s, 20s)");
    lb_free(v);
    scn_run_free(r);
    scn_free(s);
}
END_TEST

/* ---- names and addresses that must be unique (checked when the run is built) ------------ */

#define K8S_HDR "name: t\nduration: 10s\n"                                                    \
    "kubernetes:\n"                                                                        \
    "  - { apiVersion: v1, kind: Namespace, metadata: { name: web } }\n"                   \
    "  - { apiVersion: v1, kind: Service, metadata: { name: lb, namespace: web },\n"       \
    "      spec: { type: LoadBalancer, ports: [ { port: 80 } ] } }\n"                      \
    "nodes:\n  client: { type: host }\n"
#define VNET "cloud:\n  vnet: { type: vnet, attach: [client] }\n"
#define AKS2 "  aks: { type: k8s-cluster, vnet: vnet, pools: [ { name: user, count: 2 } ] }\n"
#define ILB "  ilb: { type: azure-internal-lb, cluster: aks, service: web/lb }\n"

/* Each collision names the second definition's position and where the first came from. */
static const struct bad_case bad_builds[] = {
    { K8S_HDR VNET AKS2
      "  aks2: { type: k8s-cluster, vnet: vnet, pod-cidr: 10.245.0.0/16, pools: [ { name: user, count: 1 } ] }\n",
      "t.yaml:12:76: k8s-cluster 'aks2' pool 'user' node 0: node name 'aks-user-0' is already taken by node 'aks-user-0' of k8s-cluster 'aks' (t.yaml:11:3); expected unique node names" },
    { K8S_HDR "  aks-user-1: { type: host }\n" VNET AKS2,
      "t.yaml:12:50: k8s-cluster 'aks' pool 'user' node 1: node name 'aks-user-1' is already taken by host 'aks-user-1' (t.yaml:9:3); expected unique node names" },
    { K8S_HDR VNET
      "  aks: { type: k8s-cluster, vnet: vnet, pools: [ { name: user, count: 1 }, { name: user, count: 1 } ] }\n",
      "t.yaml:11:76: k8s-cluster 'aks': pool name 'user' is already used by the pool at t.yaml:11:50; expected unique pool names" },
    { K8S_HDR VNET AKS2
      "  ilb: { type: azure-internal-lb, cluster: aks, service: web/lb, frontend-ip: 10.224.0.5 }\n",
      "t.yaml:12:79: azure-internal-lb 'ilb': frontend-ip 10.224.0.5 is already used in vnet 'vnet' by node 'aks-user-1' of k8s-cluster 'aks' (t.yaml:11:3); expected an address nothing else in 'vnet' has" },
    { K8S_HDR VNET AKS2 ILB
      "  ilb2: { type: azure-internal-lb, cluster: aks, service: web/lb }\n",
      "t.yaml:13:59: azure-internal-lb 'ilb2': Service web/lb (t.yaml:5:5) has a load balancer already: its address 10.224.0.6 is already used in vnet 'vnet' by azure-internal-lb 'ilb' (t.yaml:12:3); expected an address nothing else in 'vnet' has" },
    { "name: t\nduration: 10s\n"
      "kubernetes:\n"
      "  - { apiVersion: v1, kind: Service, metadata: { name: lb, namespace: web },\n"
      "      spec: { type: LoadBalancer, loadBalancerIP: 10.224.0.4, ports: [ { port: 80 } ] } }\n"
      "nodes:\n  client: { type: host }\n" VNET AKS2 ILB,
      "t.yaml:11:58: azure-internal-lb 'ilb': Service web/lb (t.yaml:4:5) loadBalancerIP 10.224.0.4 is already used in vnet 'vnet' by node 'aks-user-0' of k8s-cluster 'aks' (t.yaml:10:3); expected an address nothing else in 'vnet' has" },
    { K8S_HDR VNET AKS2
      "  aks2: { type: k8s-cluster, vnet: vnet, pools: [ { name: other, count: 1 } ] }\n",
      "t.yaml:12:3: k8s-cluster 'aks2': pod-cidr 10.244.0.0/16 overlaps 10.244.0.0/24 in vnet 'vnet', used by node 'aks-user-0' of k8s-cluster 'aks' (t.yaml:11:3); expected a range nothing else in 'vnet' uses" },
    { K8S_HDR VNET
      "  aks: { type: k8s-cluster, vnet: vnet, pod-cidr: 10.244.0.0/23, pools: [ { name: user, count: 3 } ] }\n",
      "t.yaml:11:51: k8s-cluster 'aks': pod-cidr 10.244.0.0/23 has a /24 for 2 nodes; the pools have 3 (expected a larger pod-cidr)" },
    { K8S_HDR VNET
      "  aks: { type: k8s-cluster, vnet: vnet, node-subnet: 10.224.0.0/29, pools: [ { name: user, count: 4 } ] }\n",
      "t.yaml:11:8: k8s-cluster 'aks': pool 'user' node 3: node-subnet 10.224.0.0/29 has no free address left (the first four and the last are reserved)" },
    { K8S_HDR VNET
      "  aks: { type: k8s-cluster, vnet: vnet, node-subnet: 10.224.0.0/29, pools: [ { name: user, count: 3 } ] }\n" ILB,
      "t.yaml:12:8: azure-internal-lb 'ilb': the node subnet 10.224.0.0/29 has no free address left for the frontend" },
    { K8S_HDR VNET AKS2 ILB
      "  gw1: { type: azure-app-gateway, vnet: vnet, backends: [ilb] }\n"
      "  gw2: { type: azure-app-gateway, vnet: vnet, backends: [ilb] }\n",
      "t.yaml:14:3: azure-app-gateway 'gw2': frontend-ip 20.50.0.10 is already used in vnet 'vnet' by azure-app-gateway 'gw1' (t.yaml:13:3); expected an address nothing else in 'vnet' has" },
    { K8S_HDR "  gw-1: { type: host }\n" VNET AKS2 ILB
      "  gw: { type: azure-app-gateway, vnet: vnet, backends: [ilb] }\n",
      "t.yaml:14:7: azure-app-gateway 'gw' instance 1: node name 'gw-1' is already taken by host 'gw-1' (t.yaml:9:3); expected unique node names" },
    { K8S_HDR VNET AKS2 ILB
      "  alb: { type: aws-alb, vnet: vnet, zones: [a=10.0.96.0/24], targets: [10.0.0.1], frontend-ip: 10.224.0.6 }\n",
      "t.yaml:13:96: aws-alb 'alb': frontend-ip 10.224.0.6 is already used in vnet 'vnet' by azure-internal-lb 'ilb' (t.yaml:12:3); expected an address nothing else in 'vnet' has" },
    { K8S_HDR VNET
      "  alb: { type: aws-alb, vnet: vnet, zones: [a=10.0.96.0/24, a=10.0.97.0/24], targets: [10.0.0.1] }\n",
      "t.yaml:11:61: zone 'a' is already given at t.yaml:11:45; expected each zone once" },
};

START_TEST(bad_builds_named)
{
    const struct bad_case *c = &bad_builds[_i];
    scn_t *s = NULL;
    scn_diag_t d;
    int rc = scn_load_string(c->yaml, "t.yaml", &s, &d, NULL);
    ck_assert_msg(rc == 0, "case %d: %s:%d:%d: %s", _i, d.file, d.line, d.col, d.msg);
    scn_run_t *r = NULL;
    memset(&d, 0x55, sizeof d);
    ck_assert_int_lt(scn_run_new(s, 0, 1, &r, &d), 0);
    ck_assert_ptr_null(r);
    char *got = diag_text(&d);
    ck_assert_msg(strcmp(got, c->want) == 0, "case %d:\n got: %s\nwant: %s", _i, got, c->want);
    lb_free(got);
    scn_free(s);
}
END_TEST

static uint32_t addr_of(scn_run_t *r, const char *node)
{
    net_node_t *n = scn_run_node(r, node);
    ck_assert_msg(n != NULL, "no node %s", node);
    return n->ifaces.v[0]->addr;
}

/* Addresses are allocated as the clouds do: first free in the subnet, after the four
 * reserved ones. A 97-node pool no longer meets the LB frontend (which takes the next free
 * address), and a second cluster in the same node subnet continues where the first ended. */
START_TEST(addresses_first_free)
{
    scn_t *s = NULL;
    const char *y = K8S_HDR VNET
        "  aks: { type: k8s-cluster, vnet: vnet, pools: [ { name: system, count: 1 }, { name: user, count: 97 } ] }\n"
        ILB
        "  aks2: { type: k8s-cluster, vnet: vnet, pod-cidr: 10.245.0.0/16, pools: [ { name: b, count: 2 } ] }\n";
    scn_run_t *r = load_run(y, "t.yaml", &s);
    ck_assert_uint_eq(addr_of(r, "aks-system-0"), ip("10.224.0.4"));
    ck_assert_uint_eq(addr_of(r, "aks-user-96"), ip("10.224.0.101"));
    net_fabric_t *fab = scn_run_node(r, "aks-user-96")->ifaces.v[0]->fabric;
    ck_assert_str_eq(net_fabric_holder(fab, ip("10.224.0.100"), 32, NULL, NULL), "aks-user-95");
    ck_assert_str_eq(net_fabric_holder(fab, ip("10.224.0.102"), 32, NULL, NULL), "ilb");
    ck_assert_uint_eq(addr_of(r, "aks-b-0"), ip("10.224.0.103"));
    ck_assert_uint_eq(addr_of(r, "aks-b-1"), ip("10.224.0.104"));
    /* node 97 of the first cluster owns pod range 10.244.97.0/24 */
    ck_assert_str_eq(net_fabric_holder(fab, ip("10.244.97.9"), 32, NULL, NULL), "aks-user-96");
    scn_run_free(r);
    scn_free(s);
}
END_TEST

/* all-links reaches the links no `links` entry names: here the only links are the veths
 * between the pods and their node, and kubelet's probes over them are all lost. */
START_TEST(all_links_reaches_veths)
{
    const char *y = K8S_HDR VNET
        "  aks: { type: k8s-cluster, vnet: vnet, pools: [ { name: user, count: 1 } ] }\n"
        "all-links: { loss: 100% }\n"
        "kubernetes-add:\n"
        "  - apiVersion: apps/v1\n"
        "    kind: Deployment\n"
        "    metadata: { name: web, namespace: web }\n"
        "    spec:\n"
        "      replicas: 2\n"
        "      selector: { matchLabels: { app: web } }\n"
        "      template:\n"
        "        metadata: { labels: { app: web } }\n"
        "        spec:\n"
        "          containers:\n"
        "            - name: web\n"
        "              image: nginx\n"
        "              readinessProbe: { tcpSocket: { port: 80 }, periodSeconds: 1 }\n";
    scn_t *s = NULL;
    scn_run_t *r = load_run(y, "t.yaml", &s);
    ck_assert_int_eq(scn_run_execute(r, NULL, NULL), 0);
    const char **reasons;
    const uint64_t *counts;
    size_t n = net_drop_reasons(scn_run_net(r), &reasons, &counts);
    uint64_t lost = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(reasons[i], "link-loss") == 0) lost = counts[i];
    ck_assert_uint_ge(lost, 2 * 10);            /* two pods, a probe a second for 10 s */
    scn_run_free(r);
    scn_free(s);
}
END_TEST

/* ---- teardown: no callback into a detached or freed sink ---------------------------------- */

typedef struct late_rec { int drops, requests, late; bool over; } late_rec_t;

static void late_drop(void *data, sim_time_t t, const char *where, const pkt_t *p,
                      const char *reason, const char *detail)
{
    (void)t; (void)where; (void)p; (void)reason; (void)detail;
    late_rec_t *rec = data;
    rec->drops++;
    rec->late += rec->over;
}

static void late_request(void *data, const m_request_t *q)
{
    (void)q;
    late_rec_t *rec = data;
    rec->requests++;
    rec->late += rec->over;
}

/* Keep-alive clients leave idle connections open at the end; freeing the run aborts them
 * and each abort sends an RST into a link that loses half its packets (the teardown
 * drops, about a hundred here). A detached sink hears nothing; one still attached when the
 * run is freed hears nothing of the teardown either (scn_run_free detaches it first). */
START_TEST(teardown_is_quiet)
{
    const char *y =
        "name: quiet\nduration: 5s\n"
        "nodes: { c: { type: host, count: 4 }, w: { type: host } }\n"
        "links: [ { between: [c, w], loss: 50% } ]\n"
        "apps: { site: { type: http-server, on: w, locations: [ { path: / } ] } }\n"
        "traffic:\n  browse: { type: http-client, from: c, to: w, rate: 50/s, keepalive: true }\n";
    scn_t *s = NULL;
    scn_diag_t d;
    ck_assert_int_eq(scn_load_string(y, "quiet.yaml", &s, &d, NULL), 0);
    for (int detach = 0; detach < 2; detach++) {
        scn_run_t *r = NULL;
        ck_assert_int_eq(scn_run_new(s, 0, 3, &r, &d), 0);
        late_rec_t a = {0}, b = {0};
        scn_sink_t sa = { .m = { .request = late_request, .data = &a }, .drop = late_drop,
                          .data = &a };
        scn_sink_t sb = { .m = { .request = late_request, .data = &b }, .drop = late_drop,
                          .data = &b };
        ck_assert_int_eq(scn_run_add_sink(r, &sa), 0);
        ck_assert_int_eq(scn_run_add_sink(r, &sb), 0);
        if (detach) {
            ck_assert_uint_eq(scn_run_remove_sink(r, &a), 1);
            ck_assert_uint_eq(scn_run_remove_sink(r, &a), 0);
        }
        ck_assert_int_eq(scn_run_execute(r, NULL, NULL), 0);
        ck_assert_int_gt(b.drops, 0);
        ck_assert_int_gt(b.requests, 0);
        ck_assert_int_eq(a.drops, detach ? 0 : b.drops);
        ck_assert_int_eq(a.requests, detach ? 0 : b.requests);
        a.over = b.over = true;
        scn_run_free(r);
        ck_assert_int_eq(a.late, 0);
        ck_assert_int_eq(b.late, 0);
    }
    scn_free(s);
}
END_TEST

Suite *suite_scenario(void)
{
    Suite *s = suite_create("scenario");
    TCase *tc = tcase_create("bad-input");
    tcase_add_unchecked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, bad_inputs, 0, (int)(sizeof bad_cases / sizeof *bad_cases));
    tcase_add_test(tc, bad_files_and_overrides);
    tcase_add_loop_test(tc, encodings, 0, (int)(sizeof enc_cases / sizeof *enc_cases));
    tcase_add_test(tc, include_not_a_file);
    tcase_add_test(tc, variants_share_tree);
    tcase_add_test(tc, alias_budget);
    tcase_add_test(tc, stop_request_interrupts_loading_and_building);
    suite_add_tcase(s, tc);
    tc = tcase_create("build");
    tcase_add_unchecked_fixture(tc, setup, NULL);
    tcase_add_test(tc, chain_builds);
    tcase_add_test(tc, routing_rules);
    tcase_add_test(tc, explicit_routing);
    tcase_add_test(tc, segment_builds);
    tcase_add_loop_test(tc, explicit_routing_errors, 0,
                        (int)(sizeof route_bad / sizeof *route_bad));
    tcase_add_test(tc, groups);
    tcase_add_test(tc, iptables_error_position);
    tcase_add_test(tc, variants);
    tcase_add_test(tc, registry);
    tcase_add_test(tc, tree_positions);
    tcase_add_test(tc, teardown_is_quiet);
    tcase_add_loop_test(tc, bad_builds_named, 0, (int)(sizeof bad_builds / sizeof *bad_builds));
    tcase_add_test(tc, addresses_first_free);
    tcase_add_test(tc, all_links_reaches_veths);
    suite_add_tcase(s, tc);
    tc = tcase_create("expect");
    tcase_add_unchecked_fixture(tc, setup, NULL);
    tcase_add_test(tc, expect_parse_forms);
    tcase_add_test(tc, expect_response_calls);
    tcase_add_test(tc, expect_eval_metrics);
    tcase_add_test(tc, run_check);
    suite_add_tcase(s, tc);
    return s;
}
