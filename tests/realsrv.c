/* realsrv.c -- small misbehaving HTTP servers on 127.0.0.1 for tests/real.sh: what nginx
 * will not do on purpose. One process, one mode, poll(2), bounded in time.
 *
 *   realsrv port                       print a free TCP port on 127.0.0.1 and exit
 *   realsrv MODE PORTFILE [options]    listen on 127.0.0.1:0, write the port to PORTFILE
 *     silent    accept, read, never answer          (client: response timeout)
 *     reset     accept, read the request, RST       (client: reset)
 *     close     accept, read the request, FIN       (client: closed)
 *     garbage   answer bytes that are not HTTP      (client: bad response, other_error)
 *     slow      answer 200 after --delay MS
 *     stall     answer 200 at once, except from --stall-at MS to --stall-at + --stall-for
 *               MS after the first request: nothing is read or answered, then everything
 *               waiting is answered (a stalled target)
 *   --max-time S   exit after S seconds (default 60): nothing outlives a test
 * Responses are HTTP/1.1 200 with "ok" and keep-alive; requests are read up to the blank
 * line (the tests send no bodies). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1024

enum { M_SILENT, M_RESET, M_CLOSE, M_GARBAGE, M_SLOW, M_STALL };

typedef struct conn {
    int fd;
    char buf[8192];
    size_t len;
    int pending;            /* complete requests read, not answered yet */
    long long due;          /* slow: when the oldest pending request is answered */
} conn_t;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 512) ||
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
                             "Content-Length: 2\r\n\r\nok";
    for (int i = 0; i < n && c->fd >= 0; i++)
        if (write(c->fd, ok, sizeof ok - 1) < 0) drop(c, false);
    c->pending -= n;
}

/* Counts the complete requests in c->buf and drops them from it. */
static int take_requests(conn_t *c)
{
    int n = 0;
    char *end;
    c->buf[c->len] = '\0';
    while ((end = strstr(c->buf, "\r\n\r\n"))) {
        size_t used = (size_t)(end + 4 - c->buf);
        memmove(c->buf, c->buf + used, c->len - used + 1);
        c->len -= used;
        n++;
    }
    if (c->len >= sizeof c->buf - 1) c->len = 0;     /* an absurd header: forget it */
    return n;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "port")) {
        int port, fd = listen_any(&port);
        close(fd);
        printf("%d\n", port);
        return 0;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: realsrv port | realsrv MODE PORTFILE [--delay MS] "
                "[--stall-at MS --stall-for MS] [--max-time S]\n");
        return 2;
    }
    static const char *const modes[] = {"silent", "reset", "close", "garbage", "slow", "stall"};
    int mode = -1;
    for (int i = 0; i < 6; i++)
        if (!strcmp(argv[1], modes[i])) mode = i;
    if (mode < 0) {
        fprintf(stderr, "realsrv: unknown mode %s\n", argv[1]);
        return 2;
    }
    long delay = 0, stall_at = 0, stall_for = 0, max_time = 60;
    for (int i = 3; i + 1 < argc; i += 2) {
        long v = atol(argv[i + 1]);
        if (!strcmp(argv[i], "--delay")) delay = v;
        else if (!strcmp(argv[i], "--stall-at")) stall_at = v;
        else if (!strcmp(argv[i], "--stall-for")) stall_for = v;
        else if (!strcmp(argv[i], "--max-time")) max_time = v;
    }
    int port, lfd = listen_any(&port);
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
        bool stalled = mode == M_STALL && first >= 0 && now >= first + stall_at &&
                       now < first + stall_at + stall_for;
        /* answers that are due */
        for (int i = 0; i < MAX_CONNS; i++) {
            conn_t *c = &conns[i];
            if (c->fd < 0 || !c->pending) continue;
            if (mode == M_SLOW && now >= c->due) answer(c, 1), c->due = now + delay;
            if (mode == M_STALL && !stalled) answer(c, c->pending);
        }
        int n = 0;
        pfd[n++] = (struct pollfd){lfd, POLLIN, 0};
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
            case M_STALL:
                c->pending += reqs;
                break;
            }
        }
    }
    return 0;
}
