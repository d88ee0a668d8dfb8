/* ktimer.c -- one socket whose kernel timers tests/kernel-timers.sh watches from inside the
 * network namespaces it built (never used outside them). One mode per process, every wait
 * bounded by MAXSEC:
 *
 *   ktimer connect IP PORT MAXSEC    blocking connect(); prints "<errno name> <seconds>"
 *                                    (how long until the kernel gave up, e.g. ETIMEDOUT 9.01)
 *   ktimer listen IP PORT MAXSEC     accepts connections and holds them open, never
 *                                    reading, writing or closing, until MAXSEC
 *   ktimer serve-close IP PORT MAXSEC  accepts connections and closes each at once (the
 *                                    server closes first: TIME_WAIT is the server's)
 *   ktimer send IP PORT MAXSEC       connects, prints "connected", waits for a line on
 *                                    stdin, sends 100 bytes and waits for the kernel to give
 *                                    up on them; prints "<errno name> <seconds since send>"
 *   ktimer close IP PORT MAXSEC      connects, prints "connected", waits for a line on
 *                                    stdin, then close()s (FIN_WAIT2 when the peer never
 *                                    closes) and sleeps until MAXSEC
 *   ktimer keepalive IP PORT MAXSEC  SO_KEEPALIVE without TCP_KEEPIDLE/INTVL/CNT (the
 *                                    netns's net.ipv4.tcp_keepalive_* decide), connects,
 *                                    prints "connected", then waits in recv() for the
 *                                    kernel to give up; prints "<errno name> <seconds
 *                                    since connect() returned>" */
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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *errname(int e)
{
    switch (e) {
    case ETIMEDOUT: return "ETIMEDOUT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNRESET: return "ECONNRESET";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ENETUNREACH: return "ENETUNREACH";
    case 0: return "OK";
    default: return "OTHER";
    }
}

static void wait_line(void)
{
    char buf[64];
    if (!fgets(buf, sizeof buf, stdin)) exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: ktimer connect|listen|serve-close|send|close|keepalive IP PORT MAXSEC\n");
        return 2;
    }
    const char *mode = argv[1];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3]))};
    if (inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1) {
        fprintf(stderr, "ktimer: bad address %s\n", argv[2]);
        return 2;
    }
    int maxsec = atoi(argv[4]);
    alarm((unsigned)maxsec + 1);                /* nothing outlives its test */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return perror("socket"), 1;
    if (!strcmp(mode, "listen") || !strcmp(mode, "serve-close")) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 64))
            return perror("listen"), 1;
        int held[64], n = 0;
        double end = now_s() + maxsec;
        while (now_s() < end) {
            struct pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, 100) > 0 && n < 64) {
                held[n] = accept(fd, NULL, NULL);
                if (mode[0] == 's' && held[n] >= 0) close(held[n]);
                else n++;
            }
        }
        (void)held;
        return 0;
    }
    bool ka = !strcmp(mode, "keepalive");
    if (ka) {
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one))
            return perror("SO_KEEPALIVE"), 1;
    }
    double t0 = now_s();
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    if (!strcmp(mode, "connect")) {
        printf("%s %.2f\n", errname(rc ? errno : 0), now_s() - t0);
        return 0;
    }
    if (rc) {
        printf("%s %.2f\n", errname(errno), now_s() - t0);
        return 1;
    }
    printf("connected\n");
    fflush(stdout);
    if (ka) {
        t0 = now_s();
        char b[16];
        ssize_t r = recv(fd, b, sizeof b, 0);
        printf("%s %.2f\n", errname(r < 0 ? errno : 0), now_s() - t0);
        return 0;
    }
    wait_line();
    if (!strcmp(mode, "close")) {
        close(fd);
        sleep((unsigned)maxsec);
        return 0;
    }
    char data[100];
    memset(data, 'x', sizeof data);
    t0 = now_s();
    if (send(fd, data, sizeof data, 0) != (ssize_t)sizeof data) return perror("send"), 1;
    char b[16];
    ssize_t r = recv(fd, b, sizeof b, 0);
    printf("%s %.2f\n", errname(r < 0 ? errno : 0), now_s() - t0);
    return 0;
}
