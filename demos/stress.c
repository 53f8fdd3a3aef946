/*
 * arena-stress -- mutator threads allocate, fill, keep, drop and rewrite objects of
 * mixed sizes while a collector stops them at a barrier, marks from the kept set,
 * collects, forwards every kept reference and verifies every survivor byte by byte.
 *
 *   arena-stress [--threads N] [--seconds S | --ops N] [--seed N] [--heap SIZE]
 *                [--page-size SIZE] [--mover NAME] [--tracker NAME] [--track] [--mirror]
 *                [--shuffle] [--cycle-ops N] [--keep N] [--baseline malloc]
 *
 * Every object carries a header (id, size, generation, check) and a body derived from
 * the check, so any byte lost, moved wrongly or overwritten is found. --track also
 * checks that every page written since the last take is reported by arena_track_take;
 * --mirror checks that a mirror view shows exactly what the heap shows. --shuffle turns on
 * cfg.shuffle (shuffle vectors, seeded from --seed) and meshing. The first
 * corruption ends the run with exit status 1, naming the object and the cycle.
 *
 * Determinism: the mutators draw from per-thread generators seeded from --seed and do
 * a fixed number of operations per cycle, so with --threads 1 (and --ops) a seed gives
 * the same run, and the same "digest" of the survivors at the end.
 *
 * --baseline malloc runs the same pattern on malloc/free instead, without collections (the
 * cycles still verify the survivors); its summary line is comparable with an arena run's
 * (throughput, peak memory) when both are given the same options.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "bench/bench_have.h"

/* ------------------------------------------------------------------ options ---- */
/* A bad command line: the message, then exit 64 (1 is a failed run, 2 a refused layout). */
__attribute__((format(printf, 1, 2), noreturn))
static void usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("arena-stress: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see --help)\n", stderr);
    va_end(ap);
    exit(64);
}

static struct {
    int threads;
    double seconds;          /* 0 = run by --ops */
    uint64_t ops;            /* total mutator operations; 0 = run by --seconds */
    uint64_t seed;
    size_t heap;             /* reservation */
    size_t page_size;
    int mover, tracker;
    bool track, mirror, shuffle, malloc_baseline;
    uint64_t cycle_ops;      /* operations per thread between collections */
    size_t keep;             /* most references each thread keeps */
} opt = {.threads = 2, .seconds = 0, .ops = 0, .seed = 1, .heap = (size_t)1 << 30,
         .cycle_ops = 20000, .keep = 4096};

/* ------------------------------------------------------------------ objects ---- */
/* Object layout: header, then size - sizeof header bytes of body words. Sizes are
 * multiples of 8 and at least 32. */
struct obj_hdr {
    uint64_t id;
    uint32_t size;
    uint32_t gen;
    uint64_t check;
};

struct ref {
    char *p;
    uint64_t id;
    uint32_t size;
    uint32_t gen;
    uint64_t born;           /* cycle in which it was allocated */
    bool pinned;             /* pinned in the current collection: must not move */
};

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rnd(uint64_t *state)
{
    return mix(*state += 0x9e3779b97f4a7c15ull);
}

static uint64_t obj_check(uint64_t id, uint32_t size, uint32_t gen)
{
    return mix(id * 0x9e3779b97f4a7c15ull ^ ((uint64_t)size << 32 | gen) ^ opt.seed);
}

static void obj_fill(char *p, uint64_t id, uint32_t size, uint32_t gen)
{
    struct obj_hdr h = {id, size, gen, obj_check(id, size, gen)};
    memcpy(p, &h, sizeof h);
    uint64_t *w = (uint64_t *)(p + sizeof h);
    for (size_t k = 0; k < (size - sizeof h) / 8; k++)
        w[k] = mix(h.check + k);
}

/* NULL when p holds the object r describes, else what is wrong with it. */
static const char *obj_verify(const char *p, const struct ref *r, size_t *bad_offset)
{
    struct obj_hdr h;
    memcpy(&h, p, sizeof h);
    *bad_offset = 0;
    if (h.id != r->id)
        return "header id differs";
    if (h.size != r->size)
        return "header size differs";
    if (h.gen != r->gen)
        return "header generation differs (a rewrite was lost)";
    if (h.check != obj_check(h.id, h.size, h.gen))
        return "header check differs";
    const uint64_t *w = (const uint64_t *)(p + sizeof h);
    for (size_t k = 0; k < (r->size - sizeof h) / 8; k++) {
        if (w[k] != mix(h.check + k)) {
            *bad_offset = sizeof h + k * 8;
            return "body differs";
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ state ---- */
struct mutator {
    int index;
    pthread_t thread;
    uint64_t rng;
    struct ref *kept;
    size_t nkept;
    uint64_t next_id;
    /* --track: objects rewritten this phase that were there at the last take */
    struct ref *written;
    size_t nwritten, wcap;
    /* counters, read by the collector at the barrier */
    uint64_t ops, allocs, bytes_allocated, rewrites, verified_objects, verified_bytes;
    int alloc_errno;         /* nonzero: an allocation failed this phase */
};

static arena_t *arena;
static arena_view_t *mirror;
static size_t page_size;
static struct mutator *mutators;
static pthread_barrier_t phase_start, phase_end;
static bool stopping;        /* written by the collector between the barriers only */
static uint64_t cycle;       /* likewise */

static void corruption(const char *who, const struct ref *r, const char *p, const char *what,
                       size_t offset)
{
    fprintf(stderr,
            "arena-stress: CORRUPTION in cycle %" PRIu64 " (%s): object id=%" PRIu64
            " (thread %" PRIu64 ") address=%p size=%" PRIu32 " gen=%" PRIu32
            ": %s at offset %zu\n",
            cycle, who, r->id, r->id >> 48, (const void *)p, r->size, r->gen, what, offset);
    fflush(stderr);
    _exit(1);
}

static void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("arena-stress: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    _exit(1);
}

/* The library lacks what the mode needs: exit 77, which ctest reports as skipped. */
static void skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("arena-stress: skipped: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(77);
}

/* ------------------------------------------------------------------ mutators ---- */
static uint32_t pick_size(uint64_t *rng)
{
    uint64_t r = rnd(rng) % 100;
    if (r < 90)
        return 32 + 8 * (uint32_t)(rnd(rng) % 60);                       /* 32..504 */
    if (r < 99)
        return 512 + 8 * (uint32_t)(rnd(rng) % ((page_size - 512) / 8 + 1)); /* ..page */
    return (uint32_t)page_size + 8 * (uint32_t)(rnd(rng) % (3 * page_size / 8)); /* large */
}

static void *obj_alloc(size_t size)
{
    return opt.malloc_baseline ? malloc(size) : arena_alloc(arena, size);
}

/* A reference is dropped: garbage for the arena, freed at once under malloc. */
static void drop(struct ref *r)
{
    if (opt.malloc_baseline)
        free(r->p);
}

static void record_write(struct mutator *m, const struct ref *r)
{
    if (!opt.track || r->born == cycle)
        return;
    if (m->nwritten == m->wcap) {
        m->wcap = m->wcap ? 2 * m->wcap : 1024;
        m->written = realloc(m->written, m->wcap * sizeof *m->written);
        if (!m->written)
            fatal("out of memory");
    }
    m->written[m->nwritten++] = *r;
}

static void op_alloc(struct mutator *m)
{
    uint32_t size = pick_size(&m->rng);
    bool keep = rnd(&m->rng) % 2;
    size_t slot = (size_t)(rnd(&m->rng) % opt.keep);
    char *p = obj_alloc(size);
    if (!p) {
        m->alloc_errno = errno ? errno : ENOMEM;
        return;
    }
    struct ref r = {p, m->next_id++, size, 0, cycle, false};
    obj_fill(p, r.id, size, 0);
    m->allocs++;
    m->bytes_allocated += size;
    if (!keep) {
        drop(&r);
    } else if (m->nkept < opt.keep) {
        m->kept[m->nkept++] = r;
    } else {
        drop(&m->kept[slot]);
        m->kept[slot] = r;
    }
}

static void op_verify(struct mutator *m, struct ref *r)
{
    size_t off;
    const char *what = obj_verify(r->p, r, &off);
    if (what)
        corruption("mutator read", r, r->p, what, off);
    /* Only this thread writes this object, so its mirror image must match now too. */
    if (mirror) {
        const char *mp = arena_view_addr(mirror, r->p);
        if (!mp || memcmp(mp, r->p, r->size) != 0)
            corruption("mirror view, mutator read", r, r->p,
                       mp ? "mirror content differs" : "no mirror address", 0);
    }
    m->verified_objects++;
    m->verified_bytes += r->size;
}

static void mutator_phase(struct mutator *m)
{
    m->alloc_errno = 0;
    for (uint64_t i = 0; i < opt.cycle_ops && !m->alloc_errno; i++) {
        uint64_t r = rnd(&m->rng) % 100;
        size_t k = m->nkept ? (size_t)(rnd(&m->rng) % m->nkept) : 0;
        m->ops++;
        if (r < 70 || m->nkept == 0) {
            op_alloc(m);
        } else if (r < 85) {
            drop(&m->kept[k]);
            m->kept[k] = m->kept[--m->nkept];
        } else if (r < 95) {
            op_verify(m, &m->kept[k]);
        } else if (m->kept[k].size <= 512) {
            struct ref *ref = &m->kept[k];
            op_verify(m, ref);
            ref->gen++;
            obj_fill(ref->p, ref->id, ref->size, ref->gen);
            m->rewrites++;
            record_write(m, ref);
        }
    }
}

static void *mutator_main(void *arg)
{
    struct mutator *m = arg;
    for (;;) {
        pthread_barrier_wait(&phase_start);
        if (stopping)
            return NULL;
        mutator_phase(m);
        pthread_barrier_wait(&phase_end);
    }
}

/* ------------------------------------------------------------------ collector ---- */
static int cmp_ptr(const void *x, const void *y)
{
    uintptr_t a = (uintptr_t) * (void *const *)x, b = (uintptr_t) * (void *const *)y;
    return (a > b) - (a < b);
}

static bool page_reported(void *const *pages, size_t n, const char *addr)
{
    void *page = (void *)((uintptr_t)addr & ~(uintptr_t)(page_size - 1));
    return bsearch(&page, pages, n, sizeof *pages, cmp_ptr) != NULL;
}

/* Every page written since the last take (when: which take, for the error message). */
static void **take_all(size_t *count, const char *when)
{
    arena_view_t *heap = arena_heap_view(arena);
    size_t cap = 4096, n = 0;
    void **pages = malloc(cap * sizeof *pages);
    for (;;) {
        size_t got = 0;
        int err = arena_track_take(heap, pages + n, cap - n, &got);
        if (err)
            fatal("arena_track_take %s in cycle %" PRIu64 " failed: %s", when, cycle,
                  arena_have_strerror(err));
        n += got;
        if (n < cap)
            break;
        cap *= 2;
        pages = realloc(pages, cap * sizeof *pages);
        if (!pages)
            fatal("out of memory");
    }
    qsort(pages, n, sizeof *pages, cmp_ptr);
    *count = n;
    return pages;
}

/* --track: every rewritten object's first and last page must have been reported. */
static void check_tracking(void)
{
    size_t n;
    void **pages = take_all(&n, "before the collection");
    for (int t = 0; t < opt.threads; t++) {
        struct mutator *m = &mutators[t];
        for (size_t i = 0; i < m->nwritten; i++) {
            struct ref *r = &m->written[i];
            if (!page_reported(pages, n, r->p) || !page_reported(pages, n, r->p + r->size - 1))
                corruption("tracking missed a written page", r, r->p, "page not reported", 0);
        }
        m->nwritten = 0;
    }
    free(pages);
}

static uint64_t pinned_total, collections, collect_ns, max_pause_ns;
static size_t max_vmas;
static arena_collect_stats_t totals;

static void mark_all(uint64_t *rng)
{
    for (int t = 0; t < opt.threads; t++) {
        struct mutator *m = &mutators[t];
        for (size_t i = 0; i < m->nkept; i++) {
            struct ref *r = &m->kept[i];
            /* About 1 % are pinned: they must stay where they are. */
            bool pin = rnd(rng) % 100 == 0;
            int err = pin ? arena_pin(arena, r->p) : arena_mark(arena, r->p);
            if (err)
                corruption(pin ? "arena_pin refused" : "arena_mark refused", r, r->p,
                           arena_have_strerror(err), 0);
            r->pinned = pin;
            pinned_total += pin;
        }
    }
}

static void forward_and_verify(void)
{
    for (int t = 0; t < opt.threads; t++) {
        struct mutator *m = &mutators[t];
        for (size_t i = 0; i < m->nkept; i++) {
            struct ref *r = &m->kept[i];
            char *now = arena_forward(arena, r->p);
            if (!now)
                corruption("arena_forward lost a marked object", r, r->p, "forwarded to NULL", 0);
            if (r->pinned && now != r->p)
                corruption("a pinned object moved", r, now, "address changed", 0);
            r->pinned = false;
            r->p = now;
            size_t off;
            const char *what = obj_verify(now, r, &off);
            if (what)
                corruption("after collection", r, now, what, off);
            if (arena_object(arena, now) != now || arena_object_size(arena, now) < r->size)
                corruption("after collection", r, now, "arena_object/arena_object_size disagree", 0);
            if (mirror) {
                const char *mp = arena_view_addr(mirror, now);
                if (!mp || memcmp(mp, now, r->size) != 0)
                    corruption("mirror view", r, now, mp ? "mirror content differs" : "no mirror address", 0);
            }
            m->verified_objects++;
            m->verified_bytes += r->size;
        }
    }
}

static void verify_only(void)
{
    for (int t = 0; t < opt.threads; t++) {
        struct mutator *m = &mutators[t];
        for (size_t i = 0; i < m->nkept; i++)
            op_verify(m, &m->kept[i]);
    }
}

static size_t count_vmas(void)
{
    FILE *f = fopen("/proc/self/maps", "re");
    size_t n = 0;
    int c;
    if (!f)
        return 0;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void collect_cycle(uint64_t *rng)
{
    if (opt.malloc_baseline) {
        verify_only();
        return;
    }
    if (opt.track)
        check_tracking();
    mark_all(rng);
    arena_collect_stats_t st;
    memset(&st, 0, sizeof st);
    uint64_t t0 = now_ns();
    int err = arena_collect(arena, &st);
    uint64_t dt = now_ns() - t0;
    if (err < 0)
        fatal("arena_collect failed in cycle %" PRIu64 ": %s", cycle, arena_have_strerror(err));
    collections++;
    collect_ns += dt;
    if (dt > max_pause_ns)
        max_pause_ns = dt;
    totals.objects_freed += st.objects_freed;
    totals.pages_released += st.pages_released;
    totals.pages_remapped += st.pages_remapped;
    totals.pages_copied += st.pages_copied;
    totals.objects_evacuated += st.objects_evacuated;
    forward_and_verify();
    if (opt.track) {
        size_t n; /* the collection's own writes are not the mutators' */
        free(take_all(&n, "after the collection"));
    }
}

/* ------------------------------------------------------------------ reporting ---- */
static size_t status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    size_t v = 0, len = strlen(key);
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, len) && line[len] == ':')
            v = strtoull(line + len + 1, NULL, 10);
    fclose(f);
    return v;
}

static void sum(uint64_t *ops, uint64_t *vbytes, uint64_t *vobjs)
{
    *ops = *vbytes = *vobjs = 0;
    for (int t = 0; t < opt.threads; t++) {
        *ops += mutators[t].ops;
        *vbytes += mutators[t].verified_bytes;
        *vobjs += mutators[t].verified_objects;
    }
}

static void progress(uint64_t start, bool final)
{
    static int tty = -1;
    static uint64_t last;
    uint64_t now = now_ns();
    if (tty < 0)
        tty = isatty(STDERR_FILENO);
    if (!tty || (!final && now - last < 250000000u))
        return; /* progress is for a person watching a terminal; logs get the summary */
    last = now;
    uint64_t ops, vbytes, vobjs;
    sum(&ops, &vbytes, &vobjs);
    double s = (double)(now - start) / 1e9;
    fprintf(stderr, "\r\033[K%.1fs cycle %" PRIu64 " ops %" PRIu64 " (%.0f/s) verified %.1f MiB%s", s,
            cycle, ops, ops / s, vbytes / 1048576.0, final ? "\n" : "");
}

static uint64_t digest(void)
{
    uint64_t d = 0;
    for (int t = 0; t < opt.threads; t++)
        for (size_t i = 0; i < mutators[t].nkept; i++)
            d = mix(d ^ mutators[t].kept[i].id ^ (uint64_t)mutators[t].kept[i].gen << 40);
    return d;
}

static void summary(uint64_t start)
{
    uint64_t ops, vbytes, vobjs, allocs = 0, rewrites = 0;
    sum(&ops, &vbytes, &vobjs);
    for (int t = 0; t < opt.threads; t++) {
        allocs += mutators[t].allocs;
        rewrites += mutators[t].rewrites;
    }
    double s = (double)(now_ns() - start) / 1e9;
    int backend = opt.track ? arena_track_backend(arena_heap_view(arena)) : -1;
    printf("arena-stress: %s threads=%d seed=%" PRIu64 " page=%zu%s%s\n",
           opt.malloc_baseline ? "baseline=malloc" : "arena", opt.threads, opt.seed, page_size,
           backend == ARENA_TRACKER_UFFD      ? " track=uffd"
           : backend == ARENA_TRACKER_SIGSEGV ? " track=sigsegv"
                                              : "",
           opt.mirror ? " mirror" : "");
    printf("  time %.2f s, operations %" PRIu64 " (%.0f/s), allocations %" PRIu64 ", rewrites %" PRIu64 "\n",
           s, ops, ops / s, allocs, rewrites);
    printf("  cycles %" PRIu64 ", collections %" PRIu64 " (pause mean %.3f ms, max %.3f ms), pinned %" PRIu64 "\n",
           cycle, collections, collections ? collect_ns / 1e6 / collections : 0.0, max_pause_ns / 1e6,
           pinned_total);
    if (!opt.malloc_baseline)
        printf("  freed %zu objects, released %zu pages, remapped %zu, copied %zu, evacuated %zu objects\n",
               totals.objects_freed, totals.pages_released, totals.pages_remapped, totals.pages_copied,
               totals.objects_evacuated);
    printf("  verified %" PRIu64 " objects, %" PRIu64 " bytes\n", vobjs, vbytes);
    printf("  peak resident %.1f MiB, VMAs %zu (max %zu)\n", status_kib("VmHWM") / 1024.0, count_vmas(),
           max_vmas);
    printf("  digest %016" PRIx64 "\n", digest());
}

/* ------------------------------------------------------------------ options ---- */
static size_t parse_size(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 0);
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    end += strspn(end, "iB");
    if (*end || end == s)
        usage_error("not a size: '%s' (examples: 4096, 256K, 1G)", s);
    return (size_t)v;
}

static int parse_name(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i]))
            return i;
    usage_error("unknown name '%s'", s);
}

static void usage(FILE *f)
{
    fputs("usage: arena-stress [--threads N] [--seconds S | --ops N] [--seed N] [--heap SIZE]\n"
         "                    [--page-size SIZE] [--mover auto|remap_file_pages|mmap_fixed|mremap|copy]\n"
         "                    [--tracker auto|sigsegv|uffd] [--track] [--mirror] [--shuffle]\n"
         "                    [--cycle-ops N] [--keep N] [--baseline malloc]\n"
         "defaults: 2 threads, 10 seconds, seed 1, heap 1G, OS page, 20000 ops per thread per cycle,\n"
         "4096 kept references per thread\n"
          "exit status: 0 every survivor verified, 1 corruption or an error, 64 a bad command line\n", f);
}

static void parse(int argc, char **argv)
{
    static const char *const movers[] = {"auto", "remap_file_pages", "mmap_fixed", "mremap", "copy"};
    static const char *const trackers[] = {"auto", "sigsegv", "uffd"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool has = v != NULL;
        if (!strcmp(a, "--track")) opt.track = true;
        else if (!strcmp(a, "--mirror")) opt.mirror = true;
        else if (!strcmp(a, "--shuffle")) opt.shuffle = true;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); exit(0); }
        else if (!has) usage_error("unknown option or missing value: %s", a);
        else if (!strcmp(a, "--threads")) opt.threads = atoi(v), i++;
        else if (!strcmp(a, "--seconds")) opt.seconds = atof(v), i++;
        else if (!strcmp(a, "--ops")) opt.ops = strtoull(v, NULL, 0), i++;
        else if (!strcmp(a, "--seed")) opt.seed = strtoull(v, NULL, 0), i++;
        else if (!strcmp(a, "--heap")) opt.heap = parse_size(v), i++;
        else if (!strcmp(a, "--page-size")) opt.page_size = parse_size(v), i++;
        else if (!strcmp(a, "--mover")) opt.mover = parse_name(v, movers, 5), i++;
        else if (!strcmp(a, "--tracker")) opt.tracker = parse_name(v, trackers, 3), i++;
        else if (!strcmp(a, "--cycle-ops")) opt.cycle_ops = strtoull(v, NULL, 0), i++;
        else if (!strcmp(a, "--keep")) opt.keep = parse_size(v), i++;
        else if (!strcmp(a, "--baseline")) {
            if (strcmp(v, "malloc"))
                usage_error("--baseline knows only malloc");
            opt.malloc_baseline = true;
            i++;
        } else usage_error("unknown option: %s", a);
    }
    if (opt.threads < 1 || opt.threads > 256 || opt.cycle_ops == 0 || opt.keep == 0)
        usage_error("--threads must be 1..256, --cycle-ops and --keep positive");
    if (opt.seconds && opt.ops)
        usage_error("--seconds and --ops: give one of them (a run ends by time or by count)");
    if (!opt.seconds && !opt.ops)
        opt.seconds = 10;
    if (opt.ops && opt.ops / (uint64_t)opt.threads < opt.cycle_ops)
        opt.cycle_ops = opt.ops / (uint64_t)opt.threads ? opt.ops / (uint64_t)opt.threads : 1;
    if (opt.malloc_baseline && (opt.track || opt.mirror || opt.shuffle))
        usage_error("--baseline malloc has no tracking, mirror or shuffle");
    if (opt.shuffle && opt.page_size > ARENA_SHUFFLE_MAX_PAGE)
        usage_error("--shuffle needs pages of at most %zu bytes (ARENA_SHUFFLE_MAX_PAGE)",
                    (size_t)ARENA_SHUFFLE_MAX_PAGE);
}

static void open_arena(void)
{
    if (!ARENA_HAVE(arena_create) || !ARENA_HAVE(arena_alloc) || !ARENA_HAVE(arena_collect) ||
        !ARENA_HAVE(arena_forward) || !ARENA_HAVE(arena_mark) || !ARENA_HAVE(arena_pin) ||
        !ARENA_HAVE(arena_object) || !ARENA_HAVE(arena_object_size))
        skip("this build of the library has no heap yet (arena_alloc/collect/forward missing)");
    arena_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.reserve = opt.heap;
    cfg.page_size = opt.page_size;
    cfg.mover = opt.mover;
    cfg.tracker = opt.tracker;
    if (opt.shuffle) {
        cfg.shuffle = ARENA_SHUFFLE_ON;
        cfg.shuffle_seed = opt.seed;
        cfg.mesh = ARENA_MESH_ON;
    }
    int err = arena_create(&arena, &cfg);
    if (err)
        fatal("arena_create: %s", arena_have_strerror(err));
    page_size = arena_page_size(arena);
    if (opt.mirror) {
        if (!ARENA_HAVE(arena_view_open) || !ARENA_HAVE(arena_view_addr))
            skip("--mirror: this build of the library has no views");
        err = arena_view_open(arena, ARENA_VIEW_MIRROR, 0, ARENA_PROT_READ, 0, &mirror);
        if (err == ARENA_ENOTSUP)
            skip("arena_view_open(MIRROR): %s", arena_have_strerror(err));
        if (err)
            fatal("arena_view_open(MIRROR): %s", arena_have_strerror(err));
    }
    if (opt.track) {
        if (!ARENA_HAVE(arena_track_start) || !ARENA_HAVE(arena_track_take) ||
            !ARENA_HAVE(arena_track_backend))
            skip("--track: this build of the library has no tracking");
        err = arena_track_start(arena_heap_view(arena), ARENA_TRACK_WRITES);
        if (err == ARENA_ENOTSUP)
            skip("arena_track_start: %s", arena_have_strerror(err));
        if (err)
            fatal("arena_track_start: %s", arena_have_strerror(err));
    }
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    if (opt.malloc_baseline)
        page_size = (size_t)sysconf(_SC_PAGESIZE);
    else
        open_arena();
    mutators = calloc((size_t)opt.threads, sizeof *mutators);
    pthread_barrier_init(&phase_start, NULL, (unsigned)opt.threads + 1);
    pthread_barrier_init(&phase_end, NULL, (unsigned)opt.threads + 1);
    for (int t = 0; t < opt.threads; t++) {
        struct mutator *m = &mutators[t];
        m->index = t;
        m->rng = mix(opt.seed ^ mix((uint64_t)t + 1));
        m->next_id = (uint64_t)t << 48;
        m->kept = calloc(opt.keep, sizeof *m->kept);
        if (!m->kept || pthread_create(&m->thread, NULL, mutator_main, m))
            fatal("cannot start thread %d", t);
    }
    uint64_t start = now_ns(), collector_rng = mix(opt.seed ^ 0xc011ec7);
    int failed_in_a_row = 0;
    for (;;) {
        pthread_barrier_wait(&phase_start);
        pthread_barrier_wait(&phase_end);
        cycle++;
        int alloc_errno = 0;
        for (int t = 0; t < opt.threads; t++)
            if (mutators[t].alloc_errno)
                alloc_errno = mutators[t].alloc_errno;
        /* A failed allocation ends the phase early; twice in a row means the heap is
         * full of live data (or the library leaks pages), not merely of garbage. */
        failed_in_a_row = alloc_errno ? failed_in_a_row + 1 : 0;
        if (failed_in_a_row >= 2)
            fatal("allocation keeps failing after collections in cycle %" PRIu64 ": %s", cycle,
                  strerror(alloc_errno));
        collect_cycle(&collector_rng);
        size_t vmas = count_vmas();
        if (vmas > max_vmas)
            max_vmas = vmas;
        progress(start, false);
        uint64_t ops, vb, vo;
        sum(&ops, &vb, &vo);
        if ((opt.ops && ops >= opt.ops) ||
            (!opt.ops && (double)(now_ns() - start) / 1e9 >= opt.seconds))
            break;
    }
    stopping = true;
    pthread_barrier_wait(&phase_start);
    for (int t = 0; t < opt.threads; t++)
        pthread_join(mutators[t].thread, NULL);
    progress(start, true);
    summary(start);
    for (int t = 0; t < opt.threads; t++) {
        if (opt.malloc_baseline)
            for (size_t i = 0; i < mutators[t].nkept; i++)
                free(mutators[t].kept[i].p);
        free(mutators[t].kept);
        free(mutators[t].written);
    }
    free(mutators);
    pthread_barrier_destroy(&phase_start);
    pthread_barrier_destroy(&phase_end);
    if (mirror)
        arena_view_close(mirror);
    if (arena)
        arena_destroy(arena);
    return 0;
}
