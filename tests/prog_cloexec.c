/* prog_cloexec.c -- an exec'd child inherits no arena descriptor, and no file is left
 * behind (docs/design.md .req.backing.memfd). A plain program: fork() inside Criterion hangs it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core.h"
#include "view.h"
#include "fixtures.h"

static int failures;

#define CHECK(cond, ...)                                \
    do {                                                \
        if (!(cond)) {                                  \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);               \
            fputc('\n', stderr);                        \
            failures++;                                 \
        }                                               \
    } while (0)

/* Descriptors open in this process whose target names an arena backing: a memfd named
 * "arena" or a file inside dir. */
static int arena_fds(const char *dir)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[300], target[512];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, target, sizeof target - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        if (strstr(target, "memfd:arena") || strncmp(target, dir, strlen(dir)) == 0) {
            fprintf(stderr, "  open: %s -> %s\n", path, target);
            n++;
        }
    }
    closedir(d);
    return n;
}

static int child(int argc, char **argv)
{
    const char *dir = argv[2];
    int bad = 0;
    for (int i = 3; i < argc; i++) {
        int fd = atoi(argv[i]);
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) {
            fprintf(stderr, "FAIL child: descriptor %d was inherited\n", fd);
            bad++;
        }
    }
    int open_ones = arena_fds(dir);
    if (open_ones != 0) {
        fprintf(stderr, "FAIL child: %d arena descriptors open\n", open_ones);
        bad++;
    }
    return bad ? 1 : 0;
}

static arena_t *make(int backing, const char *dir)
{
    arena_t *a = TEST_ARENA(.backing = backing, .dir = dir, .reserve = 16 << 20);
    CHECK(a != NULL, "arena_create(%d)", backing);
    if (a) {
        size_t first;
        CHECK(arena_file_alloc(a, 8, &first) == 0, "file_alloc");
        arena_view_t *v = NULL;
        CHECK(arena_view_open(a, ARENA_VIEW_EMPTY, 8, ARENA_PROT_READ | ARENA_PROT_WRITE, 0, &v) == 0, "view");
        if (v)
            CHECK(arena_view_map(v, 0, first, 8) == 0, "map");
        char *obj = arena_alloc(a, 64);
        if (obj)
            strcpy(obj, "data");
    }
    return a;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "child") == 0)
        return child(argc, argv);

    char dir[] = "/tmp/arena-cloexec-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    arena_t *memfd = make(ARENA_BACKING_MEMFD, dir);
    arena_t *tmpfile = make(ARENA_BACKING_TMPFILE, dir);
    if (!memfd || !tmpfile)
        return 1;
    CHECK(arena_fds(dir) == 2, "the parent holds exactly the two backings");

    char fd1[16], fd2[16];
    snprintf(fd1, sizeof fd1, "%d", arena__backing_fd(memfd->backing));
    snprintf(fd2, sizeof fd2, "%d", arena__backing_fd(tmpfile->backing));
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", argv[0], "child", dir, fd1, fd2, (char *)NULL);
        _exit(127);
    }
    CHECK(pid > 0, "fork: %s", strerror(errno));
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child saw arena descriptors (status %d)", status);

    arena_destroy(memfd);
    arena_destroy(tmpfile);
    CHECK(arena_fds(dir) == 0, "destroy closed every descriptor");
    DIR *d = opendir(dir);
    int entries = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d)
        closedir(d);
    CHECK(entries == 0, "%d files left in %s", entries, dir);
    CHECK(rmdir(dir) == 0, "rmdir %s: %s", dir, strerror(errno));
    if (failures == 0)
        printf("prog_cloexec: ok\n");
    return failures ? 1 : 0;
}
