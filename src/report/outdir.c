/* outdir.c -- one writer per results folder: a POSIX record lock on DIR/.lock, held for
 * the life of the process (the kernel drops it however the process ends), so that two
 * sims never replace each other's summary.json, plots and report.html. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "report.h"

int rep_dir_lock(const char *dir, int wait_s, volatile sig_atomic_t *stop, int *out,
                 char *err, size_t errlen)
{
    *out = -1;
    if (err && errlen) err[0] = '\0';
    char path[4200];
    snprintf(path, sizeof path, "%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        lb_errf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return LB_EIO;
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int lk = fcntl(fd, F_SETLK, &fl);
    for (int waited = 0; lk != 0 && (errno == EACCES || errno == EAGAIN) && waited < wait_s &&
                         !(stop && *stop); waited++) {
        if (!waited)
            fprintf(stderr, "sim: %s is in use by another sim; waiting up to %d s for it\n",
                    dir, wait_s);
        sleep(1);
        lk = fcntl(fd, F_SETLK, &fl);
    }
    if (lk != 0 && stop && *stop) {
        close(fd);
        return LB_ESTATE;
    }
    if (lk == 0) {
        char pid[32];
        int l = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
        if (ftruncate(fd, 0) || pwrite(fd, pid, (size_t)l, 0) != l) {}   /* for people */
        *out = fd;
        return 0;
    }
    int e = errno;
    if (e == EACCES || e == EAGAIN) {
        struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        long holder = fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK ? (long)q.l_pid : 0;
        close(fd);
        if (holder > 0)
            lb_errf(err, errlen, "%s is in use by pid %ld (another sim writing its results "
                    "there)", dir, holder);
        else
            lb_errf(err, errlen, "%s is in use by another sim", dir);
        return LB_EEXIST;
    }
    /* a file system without record locks: go on, unguarded, and say so */
    lb_errf(err, errlen, "warning: cannot lock %s (%s): another sim writing to %s at the same "
            "time would replace these results", path, strerror(e), dir);
    *out = fd;
    return 0;
}
