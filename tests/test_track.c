/*
 * test_track.c -- page tracking (docs/design.md §8), every case run on both backends:
 * suite track_sigsegv (libsigsegv) and track_uffd (userfaultfd; skipped on kernels
 * older than 6.7, required from there on).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "track_util.h"

#define PAGE 4096u

#define BOTH(name)                                                                              \
    static void name##_body(int backend);                                                      \
    Test(track_sigsegv, name) { name##_body(ARENA_TRACKER_SIGSEGV); }                          \
    Test(track_uffd, name)                                                                     \
    {                                                                                          \
        if (!kernel_has_uffd_wp_async())                                                       \
            cr_skip_test("kernel older than 6.7");                                             \
        name##_body(ARENA_TRACKER_UFFD);                                                       \
    }                                                                                          \
    static void name##_body(int backend)

static arena_view_t *tracked(arena_t **ap, int backend, size_t n, int what)
{
    arena_t *a = track_arena(backend, 0);
    cr_assert_not_null(a);
    cr_assert_eq(arena_page_size(a), PAGE);
    arena_view_t *v = track_view(a, n);
    cr_assert_not_null(v);
    cr_assert_eq(arena_track_start(v, what), 0);
    cr_assert_eq(arena_track_backend(v), backend);
    *ap = a;
    return v;
}

/* Deterministic pseudo-random pattern (xorshift). */
static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

BOTH(reports_exactly_the_written_pages)
{
    enum { N = 512 };
    arena_t *a;
    arena_view_t *v = tracked(&a, backend, N, ARENA_TRACK_WRITES);
    char *base = arena_view_base(v);
    unsigned char seen[N];
    bool wrote[N];
    for (int round = 0; round < 4; round++) {
        memset(wrote, 0, sizeof wrote);
        for (int i = 0; i < N / 3; i++) {
            size_t s = next_rand() % N;
            base[s * PAGE + next_rand() % PAGE] = (char)(round + 1);
            wrote[s] = true;
        }
        /* Reads never count as writes. */
        volatile char sink = 0;
        for (size_t s = 0; s < N; s += 7)
            sink += base[s * PAGE];
        (void)sink;
        memset(seen, 0, sizeof seen);
        cr_assert_geq(take_all(v, seen, 64), 0);
        for (size_t s = 0; s < N; s++)
            cr_assert_eq(seen[s], wrote[s] ? 1 : 0, "round %d slot %zu: reported %d times, written %d",
                         round, s, seen[s], wrote[s]);
    }
    memset(seen, 0, sizeof seen);
    cr_assert_eq(take_all(v, seen, 64), 0, "nothing written since the last take");
    cr_assert_eq(arena_track_stop(v), 0);
    arena_destroy(a);
}

BOTH(leftovers_stay_pending)
{
    enum { N = 64 };
    arena_t *a;
    arena_view_t *v = tracked(&a, backend, N, ARENA_TRACK_WRITES);
    char *base = arena_view_base(v);
    for (size_t s = 0; s < 10; s++)
        base[(s * 5) * PAGE] = 1;
    void *pages[3];
    size_t got, total = 0;
    unsigned char seen[N] = {0};
    int takes = 0;
    do {
        cr_assert_eq(arena_track_take(v, pages, 3, &got), 0);
        cr_assert_leq(got, 3);
        for (size_t i = 0; i < got; i++)
            seen[((char *)pages[i] - base) / PAGE]++;
        total += got;
        takes++;
    } while (got > 0);
    cr_assert_eq(total, 10);
    cr_assert_eq(takes, 5, "3 + 3 + 3 + 1, then nothing");
    for (size_t s = 0; s < N; s++)
        cr_assert_eq(seen[s], s % 5 == 0 && s < 50 ? 1 : 0);
    arena_destroy(a);
}

BOTH(rewrite_after_take_is_seen_again)
{
    arena_t *a;
    arena_view_t *v = tracked(&a, backend, 8, ARENA_TRACK_WRITES);
    char *base = arena_view_base(v);
    for (int round = 0; round < 5; round++) {
        base[3 * PAGE + round] = 1;
        unsigned char seen[8] = {0};
        cr_assert_eq(take_all(v, seen, 8), 1);
        cr_assert_eq(seen[3], 1);
    }
    arena_destroy(a);
}

struct writer {
    char *base;
    size_t first, n, stride;
    int rounds;
    atomic_int *go;
};

static void *write_pages(void *arg)
{
    struct writer *w = arg;
    while (!atomic_load(w->go))
        ;
    for (int r = 0; r < w->rounds; r++)
        for (size_t i = 0; i < w->n; i++)
            w->base[(w->first + i * w->stride) * PAGE + (size_t)r * 8] = (char)r;
    return NULL;
}

BOTH(many_threads_writing_at_once)
{
    enum { N = 1024, T = 4 };
    arena_t *a;
    arena_view_t *v = tracked(&a, backend, N, ARENA_TRACK_WRITES);
    char *base = arena_view_base(v);
    for (int round = 0; round < 3; round++) {
        atomic_int go = 0;
        pthread_t th[T];
        struct writer w[T];
        for (int i = 0; i < T; i++) {
            /* Interleaved and overlapping: threads fault on the same pages at once. */
            w[i] = (struct writer){base, (size_t)i / 2, N / 4, 2, 3, &go};
            cr_assert_eq(pthread_create(&th[i], NULL, write_pages, &w[i]), 0);
        }
        atomic_store(&go, 1);
        for (int i = 0; i < T; i++)
            pthread_join(th[i], NULL);
        unsigned char seen[N] = {0};
        cr_assert_geq(take_all(v, seen, 100), 0);
        for (size_t s = 0; s < N; s++) {
            bool written = s < N / 2;
            cr_assert_eq(seen[s], written ? 1 : 0, "round %d slot %zu", round, s);
        }
    }
    arena_destroy(a);
}

/* A take racing with writers never loses a write: whatever is written after a take
 * started shows up in that take or the next one. */
struct racer {
    char *base;
    size_t n;
    atomic_int *stop;
    atomic_ulong *written; /* bitmap of pages written at least once */
};

static void *race_writes(void *arg)
{
    struct racer *r = arg;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    while (!atomic_load(r->stop)) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t s = x % r->n;
        r->base[s * PAGE] = 1;
    }
    return NULL;
}

BOTH(takes_racing_with_writers)
{
    enum { N = 256, T = 3 };
    arena_t *a;
    arena_view_t *v = tracked(&a, backend, N, ARENA_TRACK_WRITES);
    char *base = arena_view_base(v);
    atomic_int stop = 0;
    pthread_t th[T];
    struct racer r = {base, N, &stop, NULL};
    for (int i = 0; i < T; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, race_writes, &r), 0);
    unsigned char seen[N];
    for (int i = 0; i < 200; i++) {
        memset(seen, 0, sizeof seen);
        cr_assert_geq(take_all(v, seen, 32), 0);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    memset(seen, 0, sizeof seen);
    cr_assert_geq(take_all(v, seen, 32), 0);
    /* Every page is now either reported or armed: one write to each is seen. */
    for (size_t s = 0; s < N; s++)
        base[s * PAGE + 1] = 2;
    memset(seen, 0, sizeof seen);
    cr_assert_eq(take_all(v, seen, 32), N);
    arena_destroy(a);
}

BOTH(two_arenas_track_independently)
{
    arena_t *a, *b;
    arena_view_t *va = tracked(&a, backend, 32, ARENA_TRACK_WRITES);
    arena_view_t *vb = tracked(&b, backend, 32, ARENA_TRACK_WRITES);
    char *pa = arena_view_base(va), *pb = arena_view_base(vb);
    pa[1 * PAGE] = 1;
    pb[2 * PAGE] = 1;
    pb[3 * PAGE] = 1;
    unsigned char sa[32] = {0}, sb[32] = {0};
    cr_assert_eq(take_all(va, sa, 8), 1);
    cr_assert_eq(sa[1], 1);
    cr_assert_eq(arena_track_stop(vb), 0);
    pa[5 * PAGE] = 1; /* a keeps tracking after b stopped */
    pb[7 * PAGE] = 1; /* b no longer faults */
    memset(sa, 0, sizeof sa);
    cr_assert_eq(take_all(va, sa, 8), 1);
    cr_assert_eq(sa[5], 1);
    size_t got;
    void *p[4];
    cr_assert_eq(arena_track_take(vb, p, 4, &got), ARENA_ESTATE);
    (void)sb;
    arena_destroy(b);
    pa[6 * PAGE] = 1;
    memset(sa, 0, sizeof sa);
    cr_assert_eq(take_all(va, sa, 8), 1);
    cr_assert_eq(sa[6], 1);
    arena_destroy(a);
}

BOTH(prepare_io_lets_read_write_into_a_tracked_page)
{
    arena_t *a;
    arena_view_t *v = tracked(&a, backend, 4, ARENA_TRACK_WRITES);
    char *base = arena_view_base(v);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(write(fds[1], "hello", 5), 5);
    if (backend == ARENA_TRACKER_SIGSEGV) {
        /* The kernel does not fault on our behalf: the page is read-only. */
        errno = 0;
        cr_assert_eq(read(fds[0], base + 2 * PAGE, 5), -1);
        cr_assert_eq(errno, EFAULT);
    }
    cr_assert_eq(arena_track_prepare_io(a, base + 2 * PAGE, 5), 0);
    cr_assert_eq(read(fds[0], base + 2 * PAGE, 5), 5);
    cr_assert_eq(memcmp(base + 2 * PAGE, "hello", 5), 0);
    unsigned char seen[4] = {0};
    cr_assert_eq(take_all(v, seen, 4), 1);
    cr_assert_eq(seen[2], 1);
    close(fds[0]);
    close(fds[1]);
    arena_destroy(a);
}

BOTH(newly_mapped_pages_count_as_touched)
{
    arena_t *a;
    arena_view_t *v = tracked(&a, backend, 16, ARENA_TRACK_WRITES);
    char *base = arena_view_base(v);
    size_t first;
    cr_assert_eq(arena_file_alloc(a, 2, &first), 0);
    cr_assert_eq(arena_view_map(v, 4, first, 2), 0);
    unsigned char seen[16] = {0};
    cr_assert_eq(take_all(v, seen, 16), 2);
    cr_assert_eq(seen[4] + seen[5], 2);
    /* ...and are tracked from then on. */
    base[5 * PAGE] = 3;
    memset(seen, 0, sizeof seen);
    cr_assert_eq(take_all(v, seen, 16), 1);
    cr_assert_eq(seen[5], 1);
    arena_destroy(a);
}

BOTH(heap_view_tracks_objects)
{
    arena_t *a = track_arena(backend, 0);
    cr_assert_not_null(a);
    enum { K = 40 };
    char *obj[K];
    for (int i = 0; i < K; i++) {
        obj[i] = arena_alloc(a, PAGE); /* one page each */
        cr_assert_not_null(obj[i]);
    }
    arena_view_t *h = arena_heap_view(a);
    cr_assert_eq(arena_track_start(h, ARENA_TRACK_WRITES), 0);
    void *pages[K * 2];
    size_t got;
    cr_assert_eq(arena_track_take(h, pages, K * 2, &got), 0);
    cr_assert_eq(got, 0);
    for (int i = 0; i < K; i += 3)
        obj[i][100] = 1;
    cr_assert_eq(arena_track_take(h, pages, K * 2, &got), 0);
    cr_assert_eq(got, (K + 2) / 3);
    for (size_t j = 0; j < got; j++) {
        bool found = false;
        for (int i = 0; i < K; i += 3)
            found |= (char *)pages[j] <= obj[i] && obj[i] < (char *)pages[j] + PAGE;
        cr_assert(found, "reported page %p holds no written object", pages[j]);
    }
    cr_assert_eq(arena_track_stop(h), 0);
    arena_destroy(a);
}

BOTH(api_errors)
{
    arena_t *a;
    arena_view_t *v = tracked(&a, backend, 4, ARENA_TRACK_WRITES);
    size_t got = 7;
    void *p[1];
    cr_assert_eq(arena_track_start(v, ARENA_TRACK_WRITES), ARENA_EBUSY);
    cr_assert_eq(arena_track_start(NULL, ARENA_TRACK_WRITES), ARENA_ENULL);
    cr_assert_eq(arena_track_take(v, NULL, 1, &got), ARENA_ENULL);
    cr_assert_eq(arena_track_take(v, p, 1, NULL), ARENA_ENULL);
    cr_assert_eq(arena_track_stop(v), 0);
    cr_assert_eq(arena_track_stop(v), ARENA_ESTATE);
    cr_assert_eq(arena_track_take(v, p, 1, &got), ARENA_ESTATE);
    cr_assert_eq(got, 0);
    cr_assert_eq(arena_track_backend(v), -1);
    cr_assert_eq(arena_track_start(v, 0), ARENA_ECONFIG);
    cr_assert_eq(arena_track_start(v, 8), ARENA_ECONFIG);
    /* Restarting works, and closing a tracked view stops it. */
    cr_assert_eq(arena_track_start(v, ARENA_TRACK_WRITES), 0);
    cr_assert_eq(arena_view_close(v), 0);
    arena_destroy(a);
}

/* ------------------------------------------------------------- access --- */

Test(track_sigsegv, access_tracking_reports_reads)
{
    enum { N = 32 };
    arena_t *a;
    arena_view_t *v = tracked(&a, ARENA_TRACKER_SIGSEGV, N, ARENA_TRACK_ACCESS);
    char *base = arena_view_base(v);
    volatile char sink = 0;
    sink += base[3 * PAGE];
    sink += base[9 * PAGE + 5];
    base[20 * PAGE] = 1;
    (void)sink;
    unsigned char seen[N] = {0};
    cr_assert_eq(take_all(v, seen, N), 3);
    cr_assert(seen[3] && seen[9] && seen[20]);
    arena_destroy(a);
}

Test(track_uffd, access_tracking_is_not_offered)
{
    if (!kernel_has_uffd_wp_async())
        cr_skip_test("kernel older than 6.7");
    arena_t *a = track_arena(ARENA_TRACKER_UFFD, 0);
    arena_view_t *v = track_view(a, 4);
    cr_assert_eq(arena_track_start(v, ARENA_TRACK_ACCESS), ARENA_ENOTSUP);
    arena_destroy(a);
    /* AUTO picks libsigsegv for access tracking. */
    a = track_arena(ARENA_TRACKER_AUTO, 0);
    v = track_view(a, 4);
    cr_assert_eq(arena_track_start(v, ARENA_TRACK_ACCESS), 0);
    cr_assert_eq(arena_track_backend(v), ARENA_TRACKER_SIGSEGV);
    arena_destroy(a);
}

Test(track_uffd, auto_prefers_userfaultfd)
{
    if (!kernel_has_uffd_wp_async())
        cr_skip_test("kernel older than 6.7");
    arena_t *a = track_arena(ARENA_TRACKER_AUTO, 0);
    arena_view_t *v = track_view(a, 4);
    cr_assert_eq(arena_track_start(v, ARENA_TRACK_WRITES), 0);
    cr_assert_eq(arena_track_backend(v), ARENA_TRACKER_UFFD);
    arena_destroy(a);
}

/* -------------------------------------------------------- coarsening --- */

Test(track_sigsegv, coarsens_under_a_small_budget)
{
    enum { N = 4096 };
    arena_t *a = track_arena(ARENA_TRACKER_SIGSEGV, 400);
    cr_assert_not_null(a);
    arena_view_t *v = track_view(a, N);
    cr_assert_not_null(v);
    cr_assert_eq(arena_track_start(v, ARENA_TRACK_WRITES), 0);
    char *base = arena_view_base(v);
    for (size_t s = 0; s < N; s += 2)
        base[s * PAGE] = 1;
    unsigned char seen[N] = {0};
    long n = take_all(v, seen, 512);
    cr_assert_geq(n, N / 2);
    for (size_t s = 0; s < N; s += 2)
        cr_assert_eq(seen[s], 1, "written slot %zu missed", s);
    arena_stats_t st;
    cr_assert_eq(arena_stats(a, &st), 0);
    cr_assert_leq(st.vmas, st.vma_budget);
    /* After the take every page is armed again and single pages are tracked again. */
    base[7 * PAGE] = 1;
    memset(seen, 0, sizeof seen);
    cr_assert_eq(take_all(v, seen, 512), 1);
    cr_assert_eq(seen[7], 1);
    arena_destroy(a);
}

/* ---------------------------------------------------- chaining faults --- */

static sigjmp_buf jump;
static volatile sig_atomic_t prior_calls;
static void *volatile prior_addr;

static void prior_handler(int sig, siginfo_t *info, void *ctx)
{
    (void)sig;
    (void)ctx;
    prior_calls++;
    prior_addr = info->si_addr;
    siglongjmp(jump, 1);
}

Test(track_sigsegv, foreign_faults_reach_the_prior_handler)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = prior_handler;
    sa.sa_flags = SA_SIGINFO;
    cr_assert_eq(sigaction(SIGSEGV, &sa, NULL), 0);
    arena_t *a;
    arena_view_t *v = tracked(&a, ARENA_TRACKER_SIGSEGV, 4, ARENA_TRACK_WRITES);
    char *base = arena_view_base(v);
    char *guard = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(guard, MAP_FAILED);
    for (int i = 0; i < 3; i++) {
        if (sigsetjmp(jump, 1) == 0) {
            *(volatile char *)(guard + 8) = 1;
            cr_assert_fail("the write to a PROT_NONE page went through");
        }
        cr_assert_eq(prior_calls, i + 1);
        cr_assert_eq(prior_addr, guard + 8);
        /* Tracking goes on between foreign faults. */
        base[PAGE] = (char)i;
        unsigned char seen[4] = {0};
        cr_assert_eq(take_all(v, seen, 4), 1);
        cr_assert_eq(seen[1], 1);
    }
    arena_destroy(a);
}

Test(track_sigsegv, foreign_fault_without_prior_handler_kills, .signal = SIGSEGV)
{
    arena_t *a;
    arena_view_t *v = tracked(&a, ARENA_TRACKER_SIGSEGV, 4, ARENA_TRACK_WRITES);
    ((char *)arena_view_base(v))[0] = 1;
    *(volatile char *)(uintptr_t)arena_page_size(a) = 1; /* the first page: never mapped */
}

Test(track_sigsegv, write_to_an_unmapped_slot_of_a_tracked_view_kills, .signal = SIGSEGV)
{
    arena_t *a;
    arena_view_t *v = tracked(&a, ARENA_TRACKER_SIGSEGV, 8, ARENA_TRACK_WRITES);
    cr_assert_eq(arena_view_unmap(v, 6, 2), 0);
    ((char *)arena_view_base(v))[6 * PAGE] = 1;
}

/* ------------------------------------------------------- collections --- */

/* .req.track.moves: pages a collection slides keep their state: written survivors are reported at
 * their new place, and (libsigsegv, which keeps the state exactly) clean ones are not;
 * the moved pages stay tracked. */
BOTH(moved_pages_keep_their_state)
{
    enum { K = 96 };
    arena_t *a = track_arena(backend, 0);
    cr_assert_not_null(a);
    char *obj[K];
    for (int i = 0; i < K; i++) {
        obj[i] = arena_alloc(a, PAGE);
        cr_assert_not_null(obj[i]);
        obj[i][0] = (char)i;
    }
    arena_view_t *h = arena_heap_view(a);
    cr_assert_eq(arena_track_start(h, ARENA_TRACK_WRITES), 0);
    /* Survivors: every third object; written survivors: every sixth. The dead ones in
     * between make the survivors slide down. */
    for (int i = 0; i < K; i += 6)
        obj[i][8] = 1;
    for (int i = 1; i < K; i += 6)
        obj[i][8] = 1; /* written, then dies */
    for (int i = 0; i < K; i += 3)
        cr_assert_eq(arena_mark(a, obj[i]), 0);
    arena_collect_stats_t st;
    cr_assert_eq(arena_collect(a, &st), 0);
    char *now[K];
    int moved = 0;
    for (int i = 0; i < K; i += 3) {
        now[i] = arena_forward(a, obj[i]);
        cr_assert_not_null(now[i]);
        cr_assert_eq(now[i][0], (char)i);
        moved += now[i] != obj[i];
    }
    cr_assert_gt(moved, 0, "the collection moved nothing: the test proves nothing");
    void *pages[4 * K];
    size_t got;
    cr_assert_eq(arena_track_take(h, pages, 4 * K, &got), 0);
    for (int i = 0; i < K; i += 3) {
        bool reported = false;
        for (size_t j = 0; j < got; j++)
            reported |= (char *)pages[j] == now[i];
        if (i % 6 == 0)
            cr_assert(reported, "written survivor %d (now %p) not reported", i, (void *)now[i]);
        else if (backend == ARENA_TRACKER_SIGSEGV && st.objects_evacuated == 0)
            cr_assert(!reported, "clean survivor %d reported after moving", i);
    }
    /* Still tracked at the new place. */
    now[3][16] = 1;
    cr_assert_eq(arena_track_take(h, pages, 4 * K, &got), 0);
    cr_assert_eq(got, 1);
    cr_assert_eq((char *)pages[0], now[3]);
    arena_destroy(a);
}

/* ---------------------------------------------- refused system calls (.req.track.api, .req.fault.no-data-loss) -- */
#include "os.h"

enum { NOBJ = 64 };

static uint64_t sum_of(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* Live objects spread over many heap pages, with their checksums. */
static arena_t *heap_with_objects(int backend, unsigned char **objs, size_t *sizes, uint64_t *sums)
{
    arena_t *a = track_arena(backend, 0);
    cr_assert_not_null(a);
    for (int i = 0; i < NOBJ; i++) {
        sizes[i] = 16 + (size_t)(next_rand() % (3 * PAGE));
        objs[i] = arena_alloc(a, sizes[i]);
        cr_assert_not_null(objs[i]);
        cr_assert_eq(arena_pin(a, objs[i]), 0);
        for (size_t j = 0; j < sizes[i]; j++)
            objs[i][j] = (unsigned char)next_rand();
        sums[i] = sum_of(objs[i], sizes[i]);
    }
    return a;
}

/* Objects intact, every one writable and readable, and a fresh allocation works. */
static void heap_usable(arena_t *a, unsigned char **objs, size_t *sizes, uint64_t *sums, int n)
{
    for (int i = 0; i < NOBJ; i++) {
        cr_assert_eq(sum_of(objs[i], sizes[i]), sums[i], "call %d: object %d changed", n, i);
        objs[i][0] ^= 0x5a; /* a write into every object's page must go through */
        objs[i][0] ^= 0x5a;
    }
    unsigned char *p = arena_alloc(a, 2 * PAGE);
    cr_assert_not_null(p, "call %d: allocation after the failure", n);
    memset(p, 7, 2 * PAGE);
    cr_assert_eq(p[2 * PAGE - 1], 7);
}

/* Walk the refused call over every mprotect (libsigsegv) or ioctl (userfaultfd) a start
 * makes: each failure must leave the heap view as it was, untracked. */
static void start_all_or_nothing(int backend, int sys)
{
    unsigned char *objs[NOBJ];
    size_t sizes[NOBJ];
    uint64_t sums[NOBJ];
    arena_t *a = heap_with_objects(backend, objs, sizes, sums);
    arena_view_t *h = arena_heap_view(a);
    int n;
    for (n = 1; n < 10000; n++) {
        arena__fault_arm(sys, (unsigned long)n, ENOMEM);
        int err = arena_track_start(h, ARENA_TRACK_WRITES);
        bool fired = arena__fault_fired();
        arena__fault_disarm_all();
        if (!fired) {
            cr_assert_eq(err, 0, "call %d: %s", n, arena_strerror(err));
            break;
        }
        cr_assert_neq(err, 0, "call %d refused, start succeeded", n);
        cr_assert_eq(arena_track_backend(h), -1, "call %d: still tracking", n);
        heap_usable(a, objs, sizes, sums, n);
    }
    cr_assert_gt(n, 1, "start made no such call: the test tests nothing");
    /* Tracking still works after all that. */
    objs[3][0] ^= 1;
    void *pages[256];
    size_t count = 0;
    cr_assert_eq(arena_track_take(h, pages, 256, &count), 0);
    bool found = false;
    for (size_t i = 0; i < count; i++)
        found |= (char *)pages[i] == (char *)((uintptr_t)objs[3] & ~(uintptr_t)(PAGE - 1));
    cr_assert(found);
    cr_assert_eq(arena_track_stop(h), 0);
    arena_destroy(a);
}

Test(track_sigsegv, start_is_all_or_nothing_when_mprotect_is_refused)
{
    start_all_or_nothing(ARENA_TRACKER_SIGSEGV, ARENA_SYS_MPROTECT);
}

Test(track_uffd, start_is_all_or_nothing_when_ioctl_is_refused)
{
    if (!kernel_has_uffd_wp_async())
        cr_skip_test("kernel older than 6.7");
    start_all_or_nothing(ARENA_TRACKER_UFFD, ARENA_SYS_IOCTL);
}

/* Every page armed, half of them touched: a refused mprotect fails the stop and changes
 * nothing (tracking goes on, the touched pages are still reported); then it stops. */
Test(track_sigsegv, stop_is_all_or_nothing_when_mprotect_is_refused)
{
    enum { N = 256 };
    for (int n = 1;; n++) {
        arena_t *a;
        arena_view_t *v = tracked(&a, ARENA_TRACKER_SIGSEGV, N, ARENA_TRACK_WRITES);
        char *base = arena_view_base(v);
        for (size_t s = 0; s < N; s += 2)
            base[s * PAGE] = 1;
        arena__fault_arm(ARENA_SYS_MPROTECT, (unsigned long)n, ENOMEM);
        int err = arena_track_stop(v);
        bool fired = arena__fault_fired();
        arena__fault_disarm_all();
        if (!fired) {
            cr_assert_eq(err, 0);
            cr_assert_gt(n, 1);
            for (size_t s = 0; s < N; s++)
                base[s * PAGE] = 3; /* all open */
            arena_destroy(a);
            break;
        }
        cr_assert_neq(err, 0);
        cr_assert_eq(arena_track_backend(v), ARENA_TRACKER_SIGSEGV);
        for (size_t s = 1; s < N; s += 4)
            base[s * PAGE] = 2; /* armed ones fault and are recorded */
        unsigned char seen[N];
        memset(seen, 0, sizeof seen);
        cr_assert_eq(take_all(v, seen, 64), (long)(N / 2 + N / 4));
        for (size_t s = 0; s < N; s++)
            cr_assert_eq(seen[s], (s % 2 == 0 || s % 4 == 1) ? 1 : 0, "call %d slot %zu", n, s);
        cr_assert_eq(arena_track_stop(v), 0);
        arena_destroy(a);
    }
}

/* A take whose re-arming is refused loses nothing: what it reports is re-armed, the rest
 * stays pending and comes with the next take. */
BOTH(take_loses_nothing_when_rearming_is_refused)
{
    enum { N = 256 };
    int sys = backend == ARENA_TRACKER_UFFD ? ARENA_SYS_IOCTL : ARENA_SYS_MPROTECT;
    for (int n = 1; n < 64; n++) {
        arena_t *a;
        arena_view_t *v = tracked(&a, backend, N, ARENA_TRACK_WRITES);
        char *base = arena_view_base(v);
        for (size_t s = 0; s < N; s += 3)
            base[s * PAGE] = 1;
        void *pages[N];
        size_t count = 0;
        arena__fault_arm(sys, (unsigned long)n, ENOMEM);
        int err = arena_track_take(v, pages, N, &count);
        bool fired = arena__fault_fired();
        arena__fault_disarm_all();
        unsigned char seen[N];
        memset(seen, 0, sizeof seen);
        for (size_t i = 0; i < count; i++)
            seen[((char *)pages[i] - base) / PAGE]++;
        if (!fired)
            cr_assert_eq(err, 0);
        /* Reported pages are armed again: a write to them is seen by the next take. */
        for (size_t i = 0; i < count; i++)
            ((char *)pages[i])[1] = 2;
        unsigned char again[N];
        memset(again, 0, sizeof again);
        cr_assert_geq(take_all(v, again, 64), 0);
        for (size_t s = 0; s < N; s++) {
            if (s % 3 == 0)
                cr_assert_geq(seen[s] + again[s], 1, "call %d: written slot %zu lost", n, s);
            if (seen[s])
                cr_assert_eq(again[s], 1, "call %d: re-armed slot %zu not seen again", n, s);
        }
        arena_destroy(a);
        if (!fired)
            break;
    }
}

/* ------------------------------------------------- coarse groups (.req.track.coarsening) -- */

/* A big view with a small part in use (like the 64 GiB heap view): the coarse groups are
 * sized from the part in use, so sparse writes do not report every page in use. */
Test(track_sigsegv, coarse_groups_follow_the_part_in_use)
{
    enum { USED = 2048, STEP = 8 };
    arena_t *a = track_arena(ARENA_TRACKER_SIGSEGV, 400);
    cr_assert_not_null(a);
    size_t first;
    arena_view_t *v = NULL;
    cr_assert_eq(arena_file_alloc(a, USED, &first), 0);
    cr_assert_eq(arena_view_open(a, ARENA_VIEW_EMPTY, (size_t)1 << 20, ARENA_PROT_READ | ARENA_PROT_WRITE, 0, &v), 0);
    cr_assert_eq(arena_view_map(v, 0, first, USED), 0);
    cr_assert_eq(arena_track_start(v, ARENA_TRACK_WRITES), 0);
    char *base = arena_view_base(v);
    for (size_t s = 0; s < USED; s += STEP)
        base[s * PAGE] = 1;
    unsigned char *seen = calloc((size_t)1 << 20, 1);
    long n = take_all(v, seen, 512);
    for (size_t s = 0; s < USED; s += STEP)
        cr_assert_eq(seen[s], 1, "written slot %zu missed", s);
    cr_assert_lt(n, USED, "%ld of %d pages in use reported for %d written", n, USED, USED / STEP);
    free(seen);
    arena_destroy(a);
}

/* ------------------------------------- per-slot protection (.req.track.slot-protection) -- */

/* A slot made read-only on a tracked view stays read-only: tracking neither opens it for
 * writing nor reports it for the faults the program itself meets there. */
Test(track_sigsegv, slot_protection_is_kept, .signal = SIGSEGV)
{
    arena_t *a;
    arena_view_t *v = tracked(&a, ARENA_TRACKER_SIGSEGV, 16, ARENA_TRACK_WRITES);
    char *base = arena_view_base(v);
    cr_assert_eq(arena_view_protect(v, 3, 1, ARENA_PROT_READ), 0);
    base[2 * PAGE] = 1;
    void *pages[16];
    size_t count = 0;
    cr_assert_eq(arena_track_take(v, pages, 16, &count), 0); /* reports 2, and 3 (new protection) */
    cr_assert_eq(count, 2);
    base[2 * PAGE] = 2;                  /* tracked page: opened again */
    (void)*(volatile char *)(base + 3 * PAGE); /* readable */
    *(volatile char *)(base + 3 * PAGE) = 1;   /* read-only: the program's own fault */
}

/* Pages given a more open protection are tracked relative to it. */
BOTH(tracking_follows_a_changed_slot_protection)
{
    arena_t *a;
    arena_view_t *v = tracked(&a, backend, 16, ARENA_TRACK_WRITES);
    char *base = arena_view_base(v);
    cr_assert_eq(arena_view_protect(v, 4, 2, ARENA_PROT_READ), 0);
    void *pages[16];
    size_t count = 0;
    cr_assert_eq(arena_track_take(v, pages, 16, &count), 0);
    cr_assert_eq(arena_view_protect(v, 4, 2, ARENA_PROT_READ | ARENA_PROT_WRITE), 0);
    cr_assert_eq(arena_track_take(v, pages, 16, &count), 0);
    base[5 * PAGE] = 1; /* writable again, and tracked */
    cr_assert_eq(arena_track_take(v, pages, 16, &count), 0);
    cr_assert_eq(count, 1);
    cr_assert_eq(pages[0], base + 5 * PAGE);
    arena_destroy(a);
}

/* ------------------------------------- ARENA_TRACK_OLD: the old generation only -- */

/* A cell: one reference, a tag, padding. The young collections below treat every field of
 * a cell on a reported page as a root (the remembered set of heap_gen.c). */
struct cell {
    struct cell *next;
    uint64_t tag;
    char pad[48];
};

struct remset {
    struct cell **old;          /* every old cell the test knows */
    size_t nold;
    void **pages;               /* the pages the take reported */
    size_t npages;
    struct cell **root;
};

static void scan_cell(arena_ss_t *ss, void *obj, size_t size, void *closure)
{
    (void)size, (void)closure;
    cr_assert_eq(arena_fix(ss, (void **)&((struct cell *)obj)->next), 0);
}

static void roots_remset(arena_ss_t *ss, void *closure)
{
    struct remset *r = closure;
    cr_assert_eq(arena_fix(ss, (void **)r->root), 0);
    for (size_t i = 0; i < r->nold; i++)
        for (size_t j = 0; j < r->npages; j++)
            if ((char *)r->old[i] >= (char *)r->pages[j] && (char *)r->old[i] < (char *)r->pages[j] + PAGE)
                cr_assert_eq(arena_fix(ss, (void **)&r->old[i]->next), 0);
}

static bool reported(void **pages, size_t n, const void *p)
{
    for (size_t i = 0; i < n; i++)
        if ((const char *)p >= (char *)pages[i] && (const char *)p < (char *)pages[i] + PAGE)
            return true;
    return false;
}

static struct cell *new_cell(arena_t *a, uint64_t tag, struct cell *next)
{
    struct cell *c = arena_alloc(a, sizeof *c);
    cr_assert_not_null(c);
    c->tag = tag;
    c->next = next;
    return c;
}

static uint64_t faults_of(arena_t *a)
{
    arena_stats_t s;
    cr_assert_eq(arena_stats(a, &s), 0);
    return s.track_faults;
}

BOTH(old_tracking_reports_only_old_pages_and_keeps_young_objects)
{
    arena_t *a = track_arena(backend, 0);
    cr_assert_not_null(a);
    arena_view_t *h = arena_heap_view(a);
    arena_view_t *mirror = track_view(a, 4);
    cr_assert_not_null(mirror);
    cr_assert_eq(arena_track_start(mirror, ARENA_TRACK_WRITES | ARENA_TRACK_OLD), ARENA_ECONFIG);
    cr_assert_eq(arena_track_start(h, ARENA_TRACK_OLD), ARENA_ECONFIG);
    cr_assert_eq(arena_track_start(h, ARENA_TRACK_ACCESS | ARENA_TRACK_OLD), ARENA_ECONFIG);
    cr_assert_eq(arena_track_start(h, ARENA_TRACK_WRITES | ARENA_TRACK_OLD), 0);
    cr_assert_eq(arena_track_backend(h), backend);

    /* A chain of cells and a large object, made old by a young collection. */
    struct cell *root = NULL;
    for (uint64_t i = 0; i < 200; i++)
        root = new_cell(a, i, root);
    struct cell *large = arena_alloc(a, 3 * PAGE);
    cr_assert_not_null(large);
    large->next = NULL;
    large->tag = 7777;
    root->next->next = large; /* cut the chain: cells below the third die */
    struct remset r = {.root = &root};
    arena_format_t fmt = {scan_cell, roots_remset, &r};
    cr_assert_eq(arena_trace_collect(a, &fmt, ARENA_TRACE_YOUNG, NULL), 0);
    cr_assert_eq(root->tag, 199);
    cr_assert_eq(root->next->next->tag, 7777);
    large = root->next->next;
    struct cell *old[3] = {root, root->next, large};
    r.old = old;
    r.nold = 3;

    /* The collection made their pages old: the next take reports them, then they are clean. */
    void *pages[64];
    size_t got;
    cr_assert_eq(arena_track_take(h, pages, 64, &got), 0);
    for (int i = 0; i < 3; i++)
        cr_assert(reported(pages, got, old[i]), "a page made old was not reported");
    cr_assert_eq(arena_track_take(h, pages, 64, &got), 0);
    cr_assert_eq(got, 0);

    /* Young objects: written freely, never reported; with libsigsegv not one fault. */
    uint64_t faults = faults_of(a);
    struct cell *young = NULL;
    for (uint64_t i = 0; i < 300; i++)
        young = new_cell(a, 1000 + i, young);
    cr_assert_eq(arena_track_take(h, pages, 64, &got), 0);
    cr_assert_eq(got, 0, "%zu young pages reported", got);
    if (backend == ARENA_TRACKER_SIGSEGV)
        cr_assert_eq(faults_of(a), faults, "young pages were armed");

    /* Old-to-young stores: the barrier reports the old pages written, only those, and the
     * young collection keeps what the written fields name. */
    large->next = young;                                  /* large (old) -> young chain */
    ((struct cell *)((char *)large + 2 * PAGE))->tag = 1; /* its last page */
    root->tag = 99;                                       /* a small old object */
    cr_assert_eq(arena_track_take(h, pages, 64, &got), 0);
    cr_assert(reported(pages, got, root));
    cr_assert(reported(pages, got, large));
    cr_assert(reported(pages, got, (char *)large + 2 * PAGE));
    for (size_t i = 0; i < got; i++) {
        char *p = pages[i];
        cr_assert(reported(&pages[i], 1, root) || reported(&pages[i], 1, root->next) ||
                      (p >= (char *)large && p < (char *)large + 3 * PAGE),
                  "page %p reported: no old object was written there", (void *)p);
    }
    r.pages = pages;
    r.npages = got;
    cr_assert_eq(arena_trace_collect(a, &fmt, ARENA_TRACE_YOUNG, NULL), 0);
    cr_assert_eq(large->tag, 7777);
    uint64_t n = 0;
    for (struct cell *c = large->next; c != NULL; c = c->next, n++) {
        cr_assert_eq(arena_object(a, c), (void *)c, "a young cell named by an old one was freed");
        cr_assert_eq(c->tag, 1000 + 299 - n);
    }
    cr_assert_eq(n, 300);
    arena_destroy(a);
}

/* .req.track.peek: a peek reports what the next take will, and changes nothing. */
BOTH(peek_reports_what_take_will_and_rearms_nothing)
{
    enum { N = 16 };
    arena_t *a;
    arena_view_t *v = tracked(&a, backend, N, ARENA_TRACK_WRITES);
    char *base = arena_view_base(v);
    void *peeked[N], *taken[N];
    size_t np, nt;
    for (int i = 0; i < N; i += 3)
        base[(size_t)i * PAGE] = 1;
    cr_assert_eq(arena_track_peek(v, peeked, 2, &np), 0);
    cr_assert_eq(np, 6, "peek counts every touched page, stores the first max");
    cr_assert_eq(arena_track_peek(v, peeked, N, &np), 0);
    cr_assert_eq(np, 6);
    for (size_t i = 0; i < np; i++)
        cr_assert_eq(peeked[i], base + 3 * i * PAGE, "in address order");
    uint64_t faults = faults_of(a);
    for (int i = 0; i < N; i += 3)
        base[(size_t)i * PAGE + 8] = 2; /* a collector fixing fields: no new fault */
    if (backend == ARENA_TRACKER_SIGSEGV)
        cr_assert_eq(faults_of(a), faults, "a peek re-armed pages");
    cr_assert_eq(arena_track_take(v, taken, N, &nt), 0);
    cr_assert_eq(nt, np);
    for (size_t i = 0; i < nt; i++)
        cr_assert_eq(taken[i], peeked[i]);
    cr_assert_eq(arena_track_peek(v, peeked, N, &np), 0);
    cr_assert_eq(np, 0, "the take re-armed what the peek showed");
    size_t count = 7;
    cr_assert_eq(arena_track_peek(v, NULL, 1, &count), ARENA_ENULL);
    cr_assert_eq(arena_track_peek(NULL, peeked, N, &count), ARENA_ENULL);
    cr_assert_eq(arena_track_stop(v), 0);
    cr_assert_eq(arena_track_peek(v, peeked, N, &count), ARENA_ESTATE);
    arena_destroy(a);
}
