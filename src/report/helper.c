/* helper.c -- a helper program as a child process (include/helper.h): stdin, stdout and
 * stderr are pipes served by one poll loop, so neither side can deadlock on a full pipe;
 * SIGPIPE is blocked while writing (a helper that dies early gives EPIPE, not a dead
 * simulator); a deadline and a stop flag kill its whole process group. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "helper.h"
#include "lb.h"

/* Error output kept for the message. */
#define HELPER_ERR_KEEP 2048
/* How often the loop looks at the stop flag when nothing else wakes it. */
#define HELPER_STOP_POLL_MS 200

bool rep_helper_find(const char *name, char *buf, size_t len)
{
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    while (*path) {
        const char *e = strchr(path, ':');
        size_t dl = e ? (size_t)(e - path) : strlen(path);
        int w = snprintf(buf, len, "%.*s/%s", (int)dl, dl ? path : ".", name);
        struct stat st;
        if (w > 0 && (size_t)w < len && !stat(buf, &st) && S_ISREG(st.st_mode) &&
            !access(buf, X_OK))
            return true;
        path += dl + (e ? 1 : 0);
    }
    if (len) buf[0] = '\0';
    return false;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The error output as one line: non-empty lines joined by " / ", control bytes blanked. */
static void one_line(char *out, size_t len, const char *in)
{
    size_t k = 0;
    out[0] = '\0';
    while (*in && k + 1 < len) {
        size_t n = strcspn(in, "\n");
        size_t a = strspn(in, " \t\r");
        if (a < n) {
            int w = snprintf(out + k, len - k, "%s%.*s", k ? " / " : "", (int)(n - a), in + a);
            if (w < 0) break;
            k = (size_t)w + k >= len ? len - 1 : k + (size_t)w;
        }
        in += n + (in[n] ? 1 : 0);
    }
    for (size_t i = 0; out[i]; i++)
        if ((unsigned char)out[i] < 0x20) out[i] = ' ';
}

static void close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

int rep_helper_run(const char *prog, const char *const argv[], const char *in, size_t inlen,
                   char **out, size_t *outlen, const rep_helper_opts_t *o, char *err,
                   size_t errlen)
{
    *out = NULL;
    *outlen = 0;
    const char *name = argv[0];
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC)) {
        lb_errf(err, errlen, "cannot start %s: %s", name, strerror(errno));
        for (int i = 0; i < 2; i++) close_fd(&pin[i]), close_fd(&pout[i]), close_fd(&perr[i]);
        return LB_EIO;
    }
    pid_t pid = fork();
    if (pid == 0) {
        /* the child: async-signal-safe calls only */
        setpgid(0, 0);
        if (dup2(pin[0], 0) < 0 || dup2(pout[1], 1) < 0 || dup2(perr[1], 2) < 0) _exit(126);
        execv(prog, (char *const *)argv);
        _exit(127);
    }
    if (pid > 0) setpgid(pid, pid);             /* whichever of the two runs first */
    close_fd(&pin[0]);
    close_fd(&pout[1]);
    close_fd(&perr[1]);
    if (pid < 0) {
        lb_errf(err, errlen, "cannot start %s: %s", name, strerror(errno));
        close_fd(&pin[1]);
        close_fd(&pout[0]);
        close_fd(&perr[0]);
        return LB_EIO;
    }
    fcntl(pin[1], F_SETFL, fcntl(pin[1], F_GETFL) | O_NONBLOCK);
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);

    double timeout_s = o && o->timeout_s > 0 ? o->timeout_s : REP_HELPER_TIMEOUT_S;
    int64_t deadline = mono_ms() + (int64_t)(timeout_s * 1000);
    LB_VEC(char) obuf = {0};
    char ebuf[HELPER_ERR_KEEP + 1];
    size_t elen = 0, off = 0;
    int rc = 0;
    if (inlen == 0) close_fd(&pin[1]);
    char buf[65536];
    while (pout[0] >= 0 || perr[0] >= 0) {
        bool stopped = o && o->stop && *o->stop;
        int64_t left = deadline - mono_ms();
        if (stopped || left <= 0) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            if (stopped) lb_errf(err, errlen, "%s: interrupted", name);
            else lb_errf(err, errlen, "%s did not finish in %g s", name, timeout_s);
            rc = stopped ? LB_ESTATE : LB_ETIMEDOUT;
            break;
        }
        if (o && o->stop && left > HELPER_STOP_POLL_MS) left = HELPER_STOP_POLL_MS;
        struct pollfd pf[3] = {{pout[0], POLLIN, 0}, {perr[0], POLLIN, 0}, {pin[1], POLLOUT, 0}};
        if (poll(pf, 3, (int)left) < 0) {           /* negative fds are ignored */
            if (errno == EINTR) continue;
            lb_errf(err, errlen, "waiting for %s: %s", name, strerror(errno));
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            rc = LB_EIO;
            break;
        }
        if (pin[1] >= 0 && pf[2].revents) {
            ssize_t w = write(pin[1], in + off, inlen - off);
            if (w > 0) off += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || off == inlen) close_fd(&pin[1]);
        }
        if (pout[0] >= 0 && pf[0].revents) {
            ssize_t r = read(pout[0], buf, sizeof buf);
            if (r > 0) {
                if (obuf.n + (size_t)r > REP_HELPER_MAX_OUTPUT) {
                    kill(-pid, SIGKILL);
                    kill(pid, SIGKILL);
                    lb_errf(err, errlen, "%s wrote more than %u bytes", name,
                            REP_HELPER_MAX_OUTPUT);
                    rc = LB_ENOMEM;
                    break;
                }
                lb_vec_reserve(&obuf, obuf.n + (size_t)r + 1);
                memcpy(obuf.v + obuf.n, buf, (size_t)r);
                obuf.n += (size_t)r;
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                close_fd(&pout[0]);
            }
        }
        if (perr[0] >= 0 && pf[1].revents) {
            ssize_t r = read(perr[0], buf, sizeof buf);
            if (r > 0) {
                size_t keep = (size_t)r < HELPER_ERR_KEEP - elen ? (size_t)r : HELPER_ERR_KEEP - elen;
                memcpy(ebuf + elen, buf, keep);
                elen += keep;
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                close_fd(&perr[0]);
            }
        }
    }
    ebuf[elen] = '\0';
    close_fd(&pin[1]);
    close_fd(&pout[0]);
    close_fd(&perr[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (!was_pending) {                         /* forget an EPIPE's SIGPIPE */
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) > 0) {}
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || off != inlen)) {
        char msg[512];
        one_line(msg, sizeof msg, ebuf);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
            lb_errf(err, errlen, "cannot run %s", prog);
        else if (WIFSIGNALED(status))
            lb_errf(err, errlen, "%s killed by signal %d%s%s", name, WTERMSIG(status),
                    msg[0] ? ": " : "", msg);
        else
            lb_errf(err, errlen, "%s failed: %s", name, msg[0] ? msg : "no message");
        rc = LB_EIO;
    }
    if (rc) {
        lb_vec_free(&obuf);
        return rc;
    }
    lb_vec_reserve(&obuf, obuf.n + 1);
    obuf.v[obuf.n] = '\0';
    *out = obuf.v;
    *outlen = obuf.n;
    return 0;
}
