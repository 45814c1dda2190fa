/* A failing disk for the end-to-end tests (server/tests/disk_faults.rs), loaded with LD_PRELOAD.
 *
 * While the file named by FAULTFS_TRIGGER exists, write(), fsync() and fdatasync() on any descriptor whose path
 * starts with FAULTFS_DIR fail: ENOSPC for a write (a full disk), EIO for a sync (a failing one). Everything else,
 * and everything while the trigger is absent, goes to the C library unchanged. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failing(int fd) {
    const char *trigger = getenv("FAULTFS_TRIGGER");
    const char *dir = getenv("FAULTFS_DIR");
    struct stat st;
    char link[64], path[4096];
    ssize_t n;
    if (trigger == NULL || dir == NULL || stat(trigger, &st) != 0)
        return 0;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    n = readlink(link, path, sizeof path - 1);
    if (n <= 0)
        return 0;
    path[n] = '\0';
    return strncmp(path, dir, strlen(dir)) == 0;
}

ssize_t write(int fd, const void *buf, size_t count) {
    static ssize_t (*real)(int, const void *, size_t);
    if (real == NULL)
        real = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    if (failing(fd)) {
        errno = ENOSPC;
        return -1;
    }
    return real(fd, buf, count);
}

/* fsync() and fdatasync() differ only in the C library function they pass on to. */
static int sync_or_fail(int fd, int (**real)(int), const char *name) {
    if (*real == NULL)
        *real = (int (*)(int))dlsym(RTLD_NEXT, name);
    if (failing(fd)) {
        errno = EIO;
        return -1;
    }
    return (*real)(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    return sync_or_fail(fd, &real, "fdatasync");
}

int fsync(int fd) {
    static int (*real)(int);
    return sync_or_fail(fd, &real, "fsync");
}
