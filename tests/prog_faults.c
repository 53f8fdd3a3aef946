/*
 * prog_faults.c -- every system call the library makes, failed once (docs/design.md §9, .req.fault.no-data-loss).
 *
 * A fixed sequence (create, allocate, views, tracking, mark, collect, allocate and collect
 * again, destroy) is run once to count the calls it makes of each system call. Then, for
 * each system call s and each n up to that count, the sequence runs again in a fresh child
 * process with the n-th call of s failing. The child checks:
 *   - every call that failed returned a documented error code, and nothing crashed;
 *   - every object live before a step is intact afterwards (checksums), reachable through
 *     arena_forward after a collection, and seen the same through a MIRROR view;
 *   - with the fault disarmed, the arena still allocates and collects;
 *   - arena_destroy leaves no descriptor and no mapping behind.
 * Prints one summary line: injection points tried, survived, failed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena.h"
#include "os.h"

#define NOBJ 160
#define NEXTRA 24

struct obj {
    char *p;
    size_t size;
    uint32_t id;
    bool live; /* allocated and kept alive by every collection so far */
};

static struct obj objs[NOBJ + NEXTRA];
static int failures;
static int sequence_mover;
static const char *step = "";
static bool mirror_lags; /* the last collection failed: the mirror may be out of step */

static const char *sys_name[ARENA_SYS_COUNT] = {
    [ARENA_SYS_MEMFD_CREATE] = "memfd_create", [ARENA_SYS_OPEN] = "open",
    [ARENA_SYS_FTRUNCATE] = "ftruncate",       [ARENA_SYS_FALLOCATE] = "fallocate",
    [ARENA_SYS_MMAP] = "mmap",                 [ARENA_SYS_MUNMAP] = "munmap",
    [ARENA_SYS_MREMAP] = "mremap",             [ARENA_SYS_REMAP_FILE_PAGES] = "remap_file_pages",
    [ARENA_SYS_MPROTECT] = "mprotect",         [ARENA_SYS_FCNTL] = "fcntl",
    [ARENA_SYS_USERFAULTFD] = "userfaultfd",   [ARENA_SYS_IOCTL] = "ioctl",
    [ARENA_SYS_MADVISE] = "madvise",
};

/* The errno each call fails with: what the kernel really returns when it refuses. */
static const int sys_errno[ARENA_SYS_COUNT] = {
    [ARENA_SYS_MEMFD_CREATE] = EMFILE, [ARENA_SYS_OPEN] = EMFILE,
    [ARENA_SYS_FTRUNCATE] = ENOSPC,    [ARENA_SYS_FALLOCATE] = ENOSPC,
    [ARENA_SYS_MMAP] = ENOMEM,         [ARENA_SYS_MUNMAP] = ENOMEM,
    [ARENA_SYS_MREMAP] = ENOMEM,       [ARENA_SYS_REMAP_FILE_PAGES] = ENOMEM,
    [ARENA_SYS_MPROTECT] = ENOMEM,     [ARENA_SYS_FCNTL] = EPERM,
    [ARENA_SYS_USERFAULTFD] = EPERM,   [ARENA_SYS_IOCTL] = EINVAL,
    [ARENA_SYS_MADVISE] = ENOMEM,
};

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "  [%s] ", step);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    failures++;
}

/* An error a public call may return: an errno value or one of the ARENA_E* codes. */
static void check_code(const char *call, int err)
{
    if (err == 0)
        return;
    if (!(err < 0 && err > ARENA_ELIBRARY) && !(err <= ARENA_ENULL && err >= ARENA_EBROKEN))
        fail("%s returned %d, not an error code", call, err);
}

static unsigned char pattern(uint32_t id, size_t i)
{
    return (unsigned char)(id * 131u + i * 7u + (i >> 8));
}

static void fill(struct obj *o)
{
    for (size_t i = 0; i < o->size; i++)
        o->p[i] = (char)pattern(o->id, i);
}

static bool intact(const char *p, const struct obj *o)
{
    for (size_t i = 0; i < o->size; i++)
        if ((unsigned char)p[i] != pattern(o->id, i))
            return false;
    return true;
}

static size_t size_of(uint32_t i, size_t ps)
{
    uint32_t r = i * 2654435761u;
    if (i == 10 || i == 11) /* a dead then a live 2 MiB run: the live one parks the dead one */
        return (size_t)2 << 20;
    if (i % 17 == 5)
        return ps * (2 + r % 3);  /* a run of pages */
    if (i % 41 == 7)
        return ps * 9 + 48;       /* a longer run */
    return 16 + (r >> 7) % 700;
}

static void alloc_objects(arena_t *a, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        struct obj *o = &objs[i];
        o->id = (uint32_t)i + 1;
        o->size = size_of((uint32_t)i, arena_page_size(a));
        errno = 0;
        o->p = arena_alloc(a, o->size);
        if (o->p == NULL) {
            if (errno != ENOMEM && errno != ENOSPC)
                fail("arena_alloc(%zu) = NULL with errno %d", o->size, errno);
            o->live = false;
            continue;
        }
        o->live = true;
        fill(o);
    }
}

static void verify(arena_t *a, arena_view_t *mirror, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct obj *o = &objs[i];
        if (!o->live)
            continue;
        if (!intact(o->p, o)) {
            fail("object %u (%zu bytes at %p) corrupted", o->id, o->size, (void *)o->p);
            o->live = false;
            continue;
        }
        if (arena_object(a, o->p) != o->p)
            fail("arena_object(%p) is not the object start", (void *)o->p);
        if (mirror != NULL) {
            char *m = arena_view_addr(mirror, o->p);
            /* NULL: out of step after a failed collection (arena_collect), but never wrong. */
            if (m == NULL && mirror_lags)
                continue;
            if (m == NULL || !intact(m, o))
                fail("object %u differs through the mirror (%p)", o->id, (void *)m);
        }
    }
}

/* Mark the live objects whose index passes keep(i); the others die. Then collect and
 * follow the forwarding. Live objects must be reachable and intact whether or not the
 * collection reported an error. */
static int mark_collect(arena_t *a, arena_view_t *mirror, size_t n, bool (*keep)(size_t))
{
    for (size_t i = 0; i < n; i++) {
        struct obj *o = &objs[i];
        if (!o->live)
            continue;
        if (!keep(i)) {
            o->live = false;
            continue;
        }
        int err = (i % 23 == 3) ? arena_pin(a, o->p + o->size / 2) : arena_mark(a, o->p);
        if (err != 0)
            fail("mark/pin of a live object: %d", err);
    }
    int err = arena_collect(a, NULL);
    check_code("arena_collect", err > 0 ? -err : err); /* > 0: completed, met that kernel error */
    mirror_lags = err != 0;
    for (size_t i = 0; i < n; i++) {
        struct obj *o = &objs[i];
        if (!o->live)
            continue;
        char *to = arena_forward(a, o->p);
        if (to == NULL) {
            fail("live object %u forwards to NULL (collect %d)", o->id, err);
            o->live = false;
            continue;
        }
        if (i % 23 == 3 && to != o->p)
            fail("pinned object %u moved", o->id);
        o->p = to;
    }
    verify(a, mirror, n);
    return err;
}

static bool keep_odd(size_t i) { return i % 2 == 1 || i % 23 == 3; }
static bool keep_all(size_t i) { (void)i; return true; }

/* Meshing (.req.mesh.what): four pages of 64-byte objects, one in four pinned at a different
 * offset on each page so that the pages' live granules are disjoint; the collection meshes
 * the four into one file page (three meshes, each one mapping call: a fault in any of
 * them stops meshing there), and either way every pinned object keeps its address and
 * bytes. The next collection (step "after") lets them die, which unmaps the meshed slots. */
#define MESH_PAGES 4
#define MESH_OBJS (MESH_PAGES * 64)
static bool mesh_kept(size_t i) { return i % MESH_PAGES == (i / 64) % MESH_PAGES; }
static void mesh_step(arena_t *a, arena_view_t *mirror)
{
    char *m[MESH_OBJS], *p = NULL;
    for (int tries = 0; tries < 64 && (p == NULL || (uintptr_t)p % 4096 != 0); tries++)
        p = arena_alloc(a, 64);
    if (p == NULL || (uintptr_t)p % 4096 != 0)
        return; /* allocation refused under the fault: checked by the other steps */
    m[0] = p;
    for (size_t i = 1; i < MESH_OBJS; i++)
        if ((m[i] = arena_alloc(a, 64)) != m[i - 1] + 64)
            return;
    for (size_t i = 0; i < MESH_OBJS; i++) {
        memset(m[i], (int)(i * 7 + 1), 64);
        if (mesh_kept(i) && arena_pin(a, m[i]) != 0)
            fail("pin of a mesh object");
    }
    bool clean = !arena__fault_fired();
    mark_collect(a, mirror, NOBJ, keep_all);
    /* Without a fault the four pages are meshed: one file page is shown at four slots. */
    arena_view_t *hv = arena_heap_view(a);
    size_t fp = arena_view_file_page(hv, (size_t)(m[64] - (char *)arena_view_base(hv)) / 4096), shown = 0;
    for (size_t s = 0; s < arena_view_slots(hv) && fp != ARENA_NO_PAGE; s++)
        shown += arena_view_file_page(hv, s) == fp;
    if (clean && !arena__fault_fired() && shown < MESH_PAGES)
        fail("four disjoint pinned pages were not meshed into one file page (%zu slots show it)", shown);
    for (size_t i = 0; i < MESH_OBJS; i++) {
        if (!mesh_kept(i))
            continue;
        if (arena_forward(a, m[i]) != m[i])
            fail("pinned mesh object %zu moved or was lost", i);
        for (size_t b = 0; b < 64; b++)
            if ((unsigned char)m[i][b] != (unsigned char)(i * 7 + 1)) {
                fail("mesh object %zu byte %zu changed", i, b);
                break;
            }
    }
}

/* File pages shown through a LINEAR view equal the heap pages showing them. */
static void check_linear(arena_t *a, arena_view_t *linear)
{
    arena_view_t *heap = arena_heap_view(a);
    size_t ps = arena_page_size(a), nlin = arena_view_slots(linear);
    char *hb = arena_view_base(heap), *lb = arena_view_base(linear);
    for (size_t s = 0; s < 64; s++) {
        size_t f = arena_view_file_page(heap, s);
        if (f != ARENA_NO_PAGE && f < nlin && memcmp(hb + s * ps, lb + f * ps, ps) != 0)
            fail("LINEAR view page %zu differs from heap slot %zu", f, s);
    }
}

static int armed_sys = -1;

static bool munmap_refused(void)
{
    return armed_sys == ARENA_SYS_MUNMAP && arena__fault_fired();
}

static size_t count_fds(void)
{
    size_t n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* Mappings of the process, without malloc's [heap], which grows on its own. Under ASan the
 * sanitizer's allocator maps and unmaps on its own too, so there only the mappings of the
 * arena's backing file are counted (the plain build, which CI also runs, counts them all). */
static bool counted_mapping(const char *line)
{
#ifdef UNDER_ASAN
    return strstr(line, "memfd:arena") != NULL || strstr(line, "(deleted)") != NULL;
#else
    return strstr(line, "[heap]") == NULL;
#endif
}

static size_t count_maps(void)
{
    size_t n = 0;
    char line[512];
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL)
        n += counted_mapping(line) && strchr(line, '\n') != NULL;
    fclose(f);
    return n;
}

/* Views over pages of our own: map, write through, protect, unmap. */
static void own_view(arena_t *a)
{
    size_t first;
    arena_view_t *v;
    step = "file+view";
    int err = arena_file_alloc(a, 4, &first);
    check_code("arena_file_alloc", err);
    if (err != 0)
        return;
    err = arena_view_open(a, ARENA_VIEW_EMPTY, 8, ARENA_PROT_READ | ARENA_PROT_WRITE, 0, &v);
    check_code("arena_view_open(EMPTY)", err);
    if (err == 0) {
        size_t ps = arena_page_size(a);
        err = arena_view_map(v, 0, first, 4);
        check_code("arena_view_map", err);
        if (err == 0) {
            memset(arena_view_base(v), 0x77, 4 * ps);
            size_t table[4] = {first + 3, first + 2, ARENA_NO_PAGE, first};
            err = arena_view_apply(v, 4, table, 4);
            check_code("arena_view_apply", err);
            if (err == 0 && ((unsigned char *)arena_view_base(v))[4 * ps] != 0x77)
                fail("apply: the same file page shows different bytes");
            if (err != 0) {
                for (size_t i = 0; i < 4; i++)
                    if (arena_view_file_page(v, 4 + i) != ARENA_NO_PAGE)
                        fail("apply failed (%d) but slot %zu changed", err, 4 + i);
            }
            check_code("arena_view_protect", arena_view_protect(v, 1, 2, ARENA_PROT_READ));
            check_code("arena_view_unmap", arena_view_unmap(v, 0, 2));
        }
        check_code("arena_view_close", arena_view_close(v));
    }
    check_code("arena_file_free", arena_file_free(a, first, 4));
}

static void tracking(arena_t *a, size_t n)
{
    arena_view_t *heap = arena_heap_view(a);
    step = "track";
    int err = arena_track_start(heap, ARENA_TRACK_WRITES);
    check_code("arena_track_start", err);
    if (err != 0)
        return;
    for (size_t i = 0; i < n; i += 5)
        if (objs[i].live)
            objs[i].p[0] = (char)pattern(objs[i].id, 0);
    void *pages[256];
    size_t count = 0;
    check_code("arena_track_take", arena_track_take(heap, pages, 256, &count));
    check_code("arena_track_stop", arena_track_stop(heap));
}

/* The whole sequence. Returns nonzero when the arena could not even be created. */
static int sequence(void)
{
    arena_config_t cfg;
    arena_t *a = NULL;
    arena_view_t *mirror = NULL, *linear = NULL;
    size_t fds = count_fds(), maps = count_maps();
    arena_config_init(&cfg);
    cfg.reserve = (size_t)256 << 20;
    cfg.copy_below = 2;
    cfg.mover = sequence_mover;
    cfg.mesh = ARENA_MESH_ON; /* mesh_step */

    step = "create";
    int err = arena_create(&a, &cfg);
    check_code("arena_create", err);
    if (err != 0)
        goto leaks;
    step = "alloc";
    alloc_objects(a, 0, NOBJ);
    verify(a, NULL, NOBJ);

    step = "views";
    err = arena_view_open(a, ARENA_VIEW_MIRROR, 0, ARENA_PROT_READ | ARENA_PROT_WRITE, 0, &mirror);
    check_code("arena_view_open(MIRROR)", err);
    if (err != 0)
        mirror = NULL;
    err = arena_view_open(a, ARENA_VIEW_LINEAR, 4, ARENA_PROT_READ, 0, &linear);
    check_code("arena_view_open(LINEAR)", err);
    if (err != 0)
        linear = NULL;
    verify(a, mirror, NOBJ);
    if (linear != NULL)
        check_linear(a, linear);
    own_view(a);
    tracking(a, NOBJ);
    verify(a, mirror, NOBJ);

    step = "collect";
    mark_collect(a, mirror, NOBJ, keep_odd);
    if (linear != NULL)
        check_linear(a, linear);
    step = "mesh";
    mesh_step(a, mirror);

    /* Once the fault has fired, the arena must work again. A fault still pending fires in
     * these last steps instead, and is checked like any other. */
    step = "after";
    bool recovered = arena__fault_fired();
    alloc_objects(a, NOBJ, NOBJ + NEXTRA);
    for (size_t i = NOBJ; i < NOBJ + NEXTRA && recovered; i++)
        if (!objs[i].live)
            fail("allocation after the fault failed");
    if (mark_collect(a, mirror, NOBJ + NEXTRA, keep_all) != 0 && recovered)
        fail("collection after the fault failed");

    step = "destroy";
    if (linear != NULL)
        check_code("arena_view_close(LINEAR)", arena_view_close(linear));
    if (mirror != NULL)
        check_code("arena_view_close(MIRROR)", arena_view_close(mirror));
    recovered = arena__fault_fired();
    arena_destroy(a);
    /* munmap refused inside arena_destroy leaves a mapping nobody can free: allowed. */
    if (!recovered && arena__fault_fired())
        maps = count_maps();
leaks:
    /* The kernel refuses munmap only when it would split a mapping past vm.max_map_count;
     * a refused munmap of a whole temporary range leaks that range, and nothing can be done. */
    if (munmap_refused())
        maps = count_maps();
    if (count_fds() != fds)
        fail("descriptors: %zu before, %zu after destroy", fds, count_fds());
    if (count_maps() != maps)
        fail("mappings: %zu before, %zu after destroy", maps, count_maps());
    return a == NULL;
}

/* Run the sequence in a child with (sys, nth) armed. Child exit status: 0 = the fault
 * fired and everything held, 3 = the fault did not fire, 1 = a check failed. */
static int run_child(int sys, unsigned long nth, unsigned long *calls)
{
    int pfd[2];
    if (pipe(pfd) != 0)
        return -1;
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        alarm(60);
        armed_sys = sys;
        if (sys >= 0)
            arena__fault_arm(sys, nth, sys_errno[sys]);
        unsigned long base[ARENA_SYS_COUNT];
        for (int s = 0; s < ARENA_SYS_COUNT; s++)
            base[s] = arena__fault_calls(s);
        sequence();
        int fired = arena__fault_fired();
        unsigned long used[ARENA_SYS_COUNT];
        for (int s = 0; s < ARENA_SYS_COUNT; s++)
            used[s] = arena__fault_calls(s) - base[s];
        if (write(pfd[1], used, sizeof used) != (ssize_t)sizeof used)
            _exit(1);
        _exit(failures ? 1 : (sys < 0 || fired) ? 0 : 3);
    }
    close(pfd[1]);
    int status = 0;
    unsigned long scratch[ARENA_SYS_COUNT];
    if (calls == NULL)
        calls = scratch;
    if (read(pfd[0], calls, sizeof scratch) != (ssize_t)sizeof scratch)
        memset(calls, 0, sizeof scratch);
    close(pfd[0]);
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
    int movers[] = {ARENA_MOVE_AUTO, ARENA_MOVE_REMAP_FILE_PAGES, ARENA_MOVE_MREMAP};
    size_t nmovers = argc > 1 ? (size_t)atoi(argv[1]) : sizeof movers / sizeof movers[0];
    if (argc == 5) {
        /* Reproduce one point in this process: prog_faults 1 MOVER SYS N */
        sequence();
        sequence_mover = atoi(argv[2]);
        arena__fault_arm(atoi(argv[3]), strtoul(argv[4], NULL, 10), sys_errno[atoi(argv[3])]);
        sequence();
        return failures != 0;
    }
    unsigned long tried = 0, survived = 0, failed = 0, unreached = 0;

    /* Warm up: whatever the library probes once per process is probed here, in the parent,
     * so every child makes the same calls as the counting run. */
    sequence();
    if (failures != 0) {
        fprintf(stderr, "faults: the sequence fails without any fault injected\n");
        return 1;
    }
    for (size_t m = 0; m < nmovers && m < sizeof movers / sizeof movers[0]; m++) {
        unsigned long calls[ARENA_SYS_COUNT];
        sequence_mover = movers[m];
        if (run_child(-1, 0, calls) != 0) {
            fprintf(stderr, "faults: mover %d: the counting run failed\n", movers[m]);
            return 1;
        }
        for (int s = 0; s < ARENA_SYS_COUNT; s++) {
            for (unsigned long n = 1; n <= calls[s]; n++) {
                int rc = run_child(s, n, NULL);
                if (rc == 3) {
                    unreached++;
                    continue;
                }
                tried++;
                if (rc == 0) {
                    survived++;
                } else {
                    failed++;
                    fprintf(stderr, "faults: mover %d, %s call %lu/%lu failing: %s %d\n", movers[m],
                            sys_name[s], n, calls[s], rc > 128 ? "signal" : "exit",
                            rc > 128 ? rc - 128 : rc);
                }
            }
        }
        printf("faults: mover %d: calls per sequence:", movers[m]);
        for (int s = 0; s < ARENA_SYS_COUNT; s++)
            if (calls[s] != 0)
                printf(" %s=%lu", sys_name[s], calls[s]);
        printf("\n");
    }
    printf("faults: %lu injection points tried, %lu survived, %lu failed (%lu not reached)\n", tried,
           survived, failed, unreached);
    return failed != 0;
}
