/*
 * prog_memcap.c -- bounded memory (issue 12, item 1): a request for more backing file than the
 * machine has, or than is left, fails at once and commits nothing; the default cap comes from
 * the machine and the memory cgroup.
 *
 * Never run unbounded: the cases run in a child inside a memory cgroup (v1) this program
 * creates under /sys/fs/cgroup/memory with a 256 MiB limit, and removes afterwards. Without
 * the fix the child is killed by the cgroup's OOM killer (the machine is never at risk); with
 * it, every case returns an error and the cgroup's peak usage grows by less than 64 MiB.
 * Where no cgroup can be created the test is skipped (exit 77) with a message.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"

#define LIMIT ((size_t)256 << 20)
#define GROWTH_MAX ((size_t)64 << 20)

static char cg[256];
static int failures;

static int write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t w = write(fd, text, strlen(text));
    int saved = errno;
    close(fd);
    errno = saved;
    return w == (ssize_t)strlen(text) ? 0 : -1;
}

static size_t read_num(const char *dir, const char *name)
{
    char path[512], buf[64] = {0};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    return r > 0 ? (size_t)strtoull(buf, NULL, 10) : 0;
}

static size_t shmem_kb(void)
{
    char buf[8192] = {0};
    int fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    char *p = r > 0 ? strstr(buf, "\nShmem:") : NULL;
    return p ? (size_t)strtoull(p + 7, NULL, 10) : 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#define CHECK(cond, ...)                                                                          \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                           \
            printf(__VA_ARGS__);                                                                  \
            printf("\n");                                                                         \
            failures++;                                                                           \
        }                                                                                         \
    } while (0)

/* Run one refused request: it must fail with ENOMEM or ENOSPC, and the cgroup's peak usage
 * must grow by less than GROWTH_MAX. */
#define REFUSED(what, call_err)                                                                   \
    do {                                                                                          \
        write_file(cg, "memory.max_usage_in_bytes", "0");                                        \
        size_t base = read_num(cg, "memory.usage_in_bytes"), shm = shmem_kb();                   \
        double t0 = now_s();                                                                      \
        int e_ = (call_err);                                                                      \
        double dt = now_s() - t0;                                                                 \
        size_t peak = read_num(cg, "memory.max_usage_in_bytes");                                 \
        size_t grew = peak > base ? peak - base : 0;                                              \
        printf("%-44s -> %-28s in %.3f s, cgroup peak +%zu KiB, Shmem %+ld KiB\n", what,          \
               arena_strerror(e_), dt, grew >> 10, (long)shmem_kb() - (long)shm);                 \
        CHECK(e_ == ARENA_ENOMEM || e_ == ARENA_ENOSPC, "%s: expected ENOMEM or ENOSPC, got %d", what, e_);   \
        CHECK(grew < GROWTH_MAX, "%s: the cgroup's usage grew by %zu MiB", what, grew >> 20);     \
    } while (0)

static int alloc_err(arena_t *a, size_t size)
{
    errno = 0;
    void *p = arena_alloc(a, size);
    return p ? 0 : -errno; /* the library's sign for the same error */
}

static int child(void)
{
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    if (write_file(cg, "cgroup.procs", pid) != 0) {
        printf("cannot join the cgroup: %s\n", strerror(errno));
        return 3;
    }
    arena_t *a;
    CHECK(arena_create(&a, NULL) == 0, "arena_create");
    arena_stats_t st;
    CHECK(arena_stats(a, &st) == 0, "arena_stats");
    printf("default cap: max_file = %zu MiB (cgroup limit %zu MiB)\n", st.max_file >> 20, LIMIT >> 20);
    CHECK(st.max_file > 0 && st.max_file <= LIMIT, "the default cap %zu exceeds the cgroup limit", st.max_file);
    size_t first, ps = arena_page_size(a);

    REFUSED("arena_file_alloc(2^40 pages)", arena_file_alloc(a, (size_t)1 << 40, &first));
    REFUSED("arena_file_alloc(the whole cap)", arena_file_alloc(a, st.max_file / ps, &first));
    REFUSED("arena_alloc(the whole reservation)", alloc_err(a, st.reserve));
    REFUSED("arena_alloc(1 GiB)", alloc_err(a, (size_t)1 << 30));
    CHECK(arena_stats(a, &st) == 0 && st.file_bytes < GROWTH_MAX, "file_bytes %zu after refusals", st.file_bytes);
    /* The arena still works. */
    void *p = arena_alloc(a, 100);
    CHECK(p != NULL, "a small allocation after the refusals");
    /* A legitimate request larger than one fallocate step but within what is left works. */
    size_t n = ((size_t)96 << 20) / ps;
    int err = arena_file_alloc(a, n, &first);
    CHECK(err == 0, "arena_file_alloc(96 MiB) inside a 256 MiB cgroup: %s", arena_strerror(err));
    if (err == 0) {
        CHECK(arena_stats(a, &st) == 0 && st.file_bytes >= n * ps, "96 MiB committed: file_bytes %zu", st.file_bytes);
        CHECK(arena_file_free(a, first, n) == 0, "arena_file_free");
    }
    /* A heap that grows chunk by chunk up to the cgroup's limit ends in an error, not in the
     * cgroup's OOM killer: every commit leaves headroom for the rest of the process. */
    size_t objects = 0;
    while (objects < 1024 && arena_alloc(a, (size_t)1 << 20))
        objects++;
    int fill_err = -errno;
    printf("filled with %zu objects of 1 MiB, then %s\n", objects, arena_strerror(fill_err));
    CHECK(objects > 0 && objects < 1024, "%zu objects of 1 MiB in a 256 MiB cgroup", objects);
    CHECK(fill_err == ARENA_ENOMEM || fill_err == ARENA_ENOSPC, "filling the heap ended with %d", fill_err);
    void *small = malloc((size_t)4 << 20);
    CHECK(small != NULL, "malloc of 4 MiB after the heap was refused");
    if (small)
        memset(small, 1, (size_t)4 << 20); /* the headroom is real: touching it does not kill us */
    free(small);
    arena_destroy(a);

    /* A cap configured above the machine: what is left still bounds one request. */
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.max_file = (size_t)1 << 40;
    CHECK(arena_create(&a, &cfg) == 0, "arena_create with max_file 1 TiB");
    CHECK(arena_stats(a, &st) == 0 && st.max_file == cfg.max_file, "configured cap reported: %zu", st.max_file);
    REFUSED("max_file 1 TiB: arena_file_alloc(4 GiB)", arena_file_alloc(a, ((size_t)4 << 30) / ps, &first));
    REFUSED("max_file 1 TiB: arena_alloc(2 GiB)", alloc_err(a, (size_t)2 << 30));
    arena_destroy(a);
    return failures ? 1 : 0;
}

static void remove_cgroup(void)
{
    for (int i = 0; i < 50; i++) {
        if (rmdir(cg) == 0 || errno == ENOENT)
            return;
        usleep(20000);
    }
    printf("warning: could not remove %s: %s\n", cg, strerror(errno));
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(cg, sizeof cg, "/sys/fs/cgroup/memory/arena-memcap-%d-%ld", (int)getpid(), (long)time(NULL));
    if (mkdir(cg, 0755) != 0) {
        printf("skipped: cannot create a memory cgroup (%s: %s); this test never runs unbounded\n", cg,
               strerror(errno));
        return 77;
    }
    char limit[32];
    snprintf(limit, sizeof limit, "%zu", LIMIT);
    if (write_file(cg, "memory.limit_in_bytes", limit) != 0 || read_num(cg, "memory.limit_in_bytes") != LIMIT) {
        printf("skipped: cannot set %s/memory.limit_in_bytes: %s\n", cg, strerror(errno));
        remove_cgroup();
        return 77;
    }
    (void)write_file(cg, "memory.memsw.limit_in_bytes", limit); /* no swap either, where accounted */
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        remove_cgroup();
        return 1;
    }
    if (pid == 0) {
        int rc = child();
        fflush(stdout);
        _exit(rc);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    size_t ooms = read_num(cg, "memory.failcnt");
    remove_cgroup();
    if (WIFSIGNALED(status)) {
        printf("FAIL: the child was killed by signal %d (memory.failcnt %zu): a request was not bounded\n",
               WTERMSIG(status), ooms);
        return 1;
    }
    if (WEXITSTATUS(status) == 3)
        return 77;
    printf(WEXITSTATUS(status) == 0 ? "passed\n" : "FAILED\n");
    return WEXITSTATUS(status) == 0 ? 0 : 1;
}
