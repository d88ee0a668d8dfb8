/* realsrv.c -- small misbehaving HTTP servers on 127.0.0.1 for tests/real.sh: what nginx
 * will not do on purpose. One process, one mode, poll(2), bounded in time.
 *
 *   realsrv port                       print a free TCP port on 127.0.0.1 and exit
 *   realsrv MODE PORTFILE [options]    listen on 127.0.0.1:0, write the port to PORTFILE
 *     silent    accept, read, never answer          (client: response timeout)
 *     reset     accept, read the request, RST       (client: reset)
 *     close     accept, read the request, FIN       (client: closed)
 *     garbage   answer bytes that are not HTTP      (client: bad response, other_error)
 *     ok        answer 200 at once
 *     slow      answer 200 after --delay MS
 *     stall     answer 200 at once, except from --stall-at MS to --stall-at + --stall-for
 *               MS after the first request: nothing is read or answered, then everything
 *               waiting is answered (a stalled target); with --stall-every MS, again every
 *               MS from the first stall's start
 *     full      listen with a backlog of 0, fill it with two connections of its own and
 *               never accept: the kernel drops further SYNs (connect timeout)
 *   Every connection accepted is counted as one line in PORTFILE.accepts (the tests check
 *   that nothing was sent when nothing may be), and every request is logged in
 *   PORTFILE.requests as "METHOD PATH host=HOST connection=VALUE length=N accept=VALUE
 *   x=X-HEADERS body=BODY": X-HEADERS are the request's x-* headers as "name:value" joined
 *   by ",", BODY the body's first bytes (a line is written once the body is complete).
 *   --max-time S   exit after S seconds (default 60): nothing outlives a test
 * Responses are HTTP/1.1 200 with "ok", the header X-Served-By: realsrv and keep-alive;
 * requests are read with their Content-Length bodies. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1024

enum { M_SILENT, M_RESET, M_CLOSE, M_GARBAGE, M_SLOW, M_STALL, M_FULL, M_OK };

typedef struct conn {
    int fd;
    char buf[8192];
    size_t len;
    int pending;            /* complete requests read, not answered yet */
    size_t body_left;       /* bytes of the current request's body still to skip */
    char line[1024];        /* the current request's log line, written after its body */
    char body[64];          /* its body's first bytes */
    size_t body_len;
    long long due;          /* slow: when the oldest pending request is answered */
} conn_t;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int listen_any(int *port, int backlog)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, backlog) ||
        getsockname(fd, (struct sockaddr *)&a, &al)) {
        perror("realsrv: listen");
        exit(1);
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static void drop(conn_t *c, bool rst)
{
    if (rst) {
        struct linger lg = {1, 0};          /* close() sends RST */
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(c->fd);
    c->fd = -1;
}

static void answer(conn_t *c, int n)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             "X-Served-By: realsrv\r\nContent-Length: 2\r\n\r\nok";
    for (int i = 0; i < n && c->fd >= 0; i++)
        if (write(c->fd, ok, sizeof ok - 1) < 0) drop(c, false);
    c->pending -= n;
}

static FILE *reqlog;

/* The value of header `name` in the header block hdr (NUL-terminated), into out. */
static void header(const char *hdr, const char *name, char *out, size_t n)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *p = strstr(hdr, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, nl) || p[2 + nl] != ':') continue;
        const char *v = p + 3 + nl;
        while (*v == ' ') v++;
        size_t k = strcspn(v, "\r\n");
        if (k >= n) k = n - 1;
        memcpy(out, v, k);
        out[k] = '\0';
        return;
    }
}

/* The request's x-* headers in hdr as "name:value,..." into out. */
static void x_headers(const char *hdr, char *out, size_t n)
{
    size_t k = 0;
    out[0] = '\0';
    for (const char *p = strstr(hdr, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, "x-", 2)) continue;
        size_t l = strcspn(p + 2, "\r\n");
        int w = snprintf(out + k, n - k, "%s%.*s", k ? "," : "", (int)l, p + 2);
        if (w < 0 || (size_t)w >= n - k) break;
        k += (size_t)w;
    }
    for (char *q = out; *q; q++)            /* "name: value" -> "name:value" */
        if (*q == ' ' && q > out && q[-1] == ':') memmove(q, q + 1, strlen(q));
}

static void log_request(conn_t *c)
{
    fprintf(reqlog, "%s body=%.*s\n", c->line, (int)c->body_len, c->body);
    fflush(reqlog);
}

/* Counts the complete requests in c->buf (headers and Content-Length body), logs them and
 * drops them from the buffer. */
static int take_requests(conn_t *c)
{
    int n = 0;
    for (;;) {
        if (c->body_left) {
            size_t k = c->body_left < c->len ? c->body_left : c->len;
            size_t room = sizeof c->body - c->body_len, t = k < room ? k : room;
            memcpy(c->body + c->body_len, c->buf, t);
            c->body_len += t;
            memmove(c->buf, c->buf + k, c->len - k);
            c->len -= k;
            c->body_left -= k;
            if (c->body_left) break;
            log_request(c);
            n++;
            continue;
        }
        c->buf[c->len] = '\0';
        char *end = strstr(c->buf, "\r\n\r\n");
        if (!end) break;
        end[2] = '\0';
        char host[256], conn[64], len[32], accept[64], line[512], xh[256];
        x_headers(c->buf, xh, sizeof xh);
        header(c->buf, "Host", host, sizeof host);
        header(c->buf, "Accept", accept, sizeof accept);
        header(c->buf, "Connection", conn, sizeof conn);
        header(c->buf, "Content-Length", len, sizeof len);
        size_t k = strcspn(c->buf, "\r\n");
        if (k >= sizeof line) k = sizeof line - 1;
        memcpy(line, c->buf, k);
        line[k] = '\0';
        char *proto = strrchr(line, ' ');
        if (proto) *proto = '\0';
        snprintf(c->line, sizeof c->line, "%s host=%s connection=%s length=%s accept=%s x=%s",
                 line, host, conn, *len ? len : "0", accept, xh);
        c->body_len = 0;
        size_t used = (size_t)(end + 4 - c->buf);
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
        c->body_left = (size_t)atol(len);
        if (!c->body_left) {
            log_request(c);
            n++;
        }
    }
    if (c->len >= sizeof c->buf - 1) c->len = 0;     /* an absurd header: forget it */
    return n;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "port")) {
        int port, fd = listen_any(&port, 1);
        close(fd);
        printf("%d\n", port);
        return 0;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: realsrv port | realsrv MODE PORTFILE [--delay MS] "
                "[--stall-at MS --stall-for MS] [--max-time S]\n");
        return 2;
    }
    static const char *const modes[] = {"silent", "reset", "close", "garbage", "slow", "stall",
                                        "full", "ok"};
    int mode = -1;
    for (int i = 0; i < 8; i++)
        if (!strcmp(argv[1], modes[i])) mode = i;
    if (mode < 0) {
        fprintf(stderr, "realsrv: unknown mode %s\n", argv[1]);
        return 2;
    }
    long delay = 0, stall_at = 0, stall_for = 0, stall_every = 0, max_time = 60;
    for (int i = 3; i + 1 < argc; i += 2) {
        long v = atol(argv[i + 1]);
        if (!strcmp(argv[i], "--delay")) delay = v;
        else if (!strcmp(argv[i], "--stall-at")) stall_at = v;
        else if (!strcmp(argv[i], "--stall-for")) stall_for = v;
        else if (!strcmp(argv[i], "--stall-every")) stall_every = v;
        else if (!strcmp(argv[i], "--max-time")) max_time = v;
    }
    int port, lfd = listen_any(&port, mode == M_FULL ? 0 : 512);
    int fill[2] = {-1, -1};
    if (mode == M_FULL) {               /* the accept queue full: SYNs are dropped */
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        for (int i = 0; i < 2; i++) {
            fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            if (connect(fill[i], (struct sockaddr *)&a, sizeof a) && errno != EINPROGRESS)
                perror("realsrv: fill");
        }
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    char acc_path[4096];
    snprintf(acc_path, sizeof acc_path, "%s.accepts", argv[2]);
    FILE *acc = fopen(acc_path, "w");
    snprintf(acc_path, sizeof acc_path, "%s.requests", argv[2]);
    reqlog = fopen(acc_path, "w");
    if (!acc || !reqlog) {
        perror(acc_path);
        return 1;
    }
    FILE *pf = fopen(argv[2], "w");
    if (!pf) {
        perror(argv[2]);
        return 1;
    }
    fprintf(pf, "%d\n", port);
    fclose(pf);
    static conn_t conns[MAX_CONNS];
    for (int i = 0; i < MAX_CONNS; i++) conns[i].fd = -1;
    long long t0 = now_ms(), first = -1;
    static struct pollfd pfd[MAX_CONNS + 1];
    while (now_ms() - t0 < max_time * 1000) {
        long long now = now_ms();
        long long into = first >= 0 ? now - first - stall_at : -1;   /* into the stalls */
        if (into > 0 && stall_every > 0) into %= stall_every;
        bool stalled = mode == M_STALL && into >= 0 && into < stall_for;
        /* answers that are due */
        for (int i = 0; i < MAX_CONNS; i++) {
            conn_t *c = &conns[i];
            if (c->fd < 0 || !c->pending) continue;
            if (mode == M_OK) answer(c, c->pending);
            if (mode == M_SLOW && now >= c->due) answer(c, 1), c->due = now + delay;
            if (mode == M_STALL && !stalled) answer(c, c->pending);
        }
        int n = 0;
        pfd[n++] = (struct pollfd){lfd, mode == M_FULL ? 0 : POLLIN, 0};
        int idx[MAX_CONNS];
        for (int i = 0; i < MAX_CONNS; i++)
            if (conns[i].fd >= 0 && !stalled) {
                idx[n - 1] = i;
                pfd[n++] = (struct pollfd){conns[i].fd, POLLIN, 0};
            }
        int wait = 10;
        if (poll(pfd, (nfds_t)n, wait) < 0 && errno != EINTR) break;
        if (pfd[0].revents & POLLIN) {
            int fd = accept(lfd, NULL, NULL);
            if (fd >= 0) {
                fprintf(acc, "accepted\n");
                fflush(acc);
            }
            int k = 0;
            while (fd >= 0 && k < MAX_CONNS && conns[k].fd >= 0) k++;
            if (fd >= 0 && k < MAX_CONNS) {
                conns[k].fd = fd;
                conns[k].len = 0;
                conns[k].pending = 0;
            } else if (fd >= 0) {
                close(fd);
            }
        }
        for (int j = 1; j < n; j++) {
            if (!(pfd[j].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            conn_t *c = &conns[idx[j - 1]];
            ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
            if (r <= 0) {
                drop(c, false);
                continue;
            }
            c->len += (size_t)r;
            int reqs = take_requests(c);
            if (!reqs) continue;
            if (first < 0) first = now_ms();
            switch (mode) {
            case M_SILENT: break;
            case M_RESET: drop(c, true); break;
            case M_CLOSE: drop(c, false); break;
            case M_GARBAGE:
                if (write(c->fd, "NOT HTTP AT ALL\r\n\r\n", 19) < 0) {}
                drop(c, false);
                break;
            case M_SLOW:
                if (!c->pending) c->due = now_ms() + delay;
                c->pending += reqs;
                break;
            case M_OK:
                c->pending += reqs;
                answer(c, c->pending);
                break;
            case M_STALL:
                c->pending += reqs;
                break;
            }
        }
    }
    if (fill[0] >= 0) close(fill[0]);
    if (fill[1] >= 0) close(fill[1]);
    fclose(acc);
    fclose(reqlog);
    return 0;
}
