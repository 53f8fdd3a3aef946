/*
 * bench_compact.c -- the compaction pause and the first-touch cost after it, per live
 * page, for live pages in runs of 1, 16 and 512 pages and in 2 MiB-aligned runs,
 * against a memcpy compactor that moves the same live pages in the same run.
 *
 * The heap is built from page-sized objects; which ones survive is decided by the
 * slot (page index from the 2 MiB-aligned heap base), so the arena and the memcpy
 * baseline see the same layout. The memcpy compactor copies every live page to its
 * compacted position in a fresh anonymous buffer (faulting the to-space in, as a
 * copying collector does) and then touches every live page, as the arena run does.
 * pause_vs_warm_copy compares the same pause with memcpy into a to-space that is already
 * resident and written, as a copying collector that reuses its semispace has.
 */
#include "bench.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define TWO_MIB ((size_t)2 << 20)

struct pattern {
    const char *name;
    size_t run;    /* live pages per run; 0 = one 2 MiB block */
    size_t gap;    /* dead pages between runs; 0 = one 2 MiB block */
};

static const struct pattern patterns[] = {
    {"run1", 1, 1},
    {"run16", 16, 16},
    {"run512", 512, 257},  /* odd gap: targets do not agree with sources modulo 2 MiB */
    {"run2m", 0, 0},       /* 2 MiB-aligned blocks, every other one live */
};

enum { M_PAUSE, M_TOUCH, M_TOTAL, M_NMETRICS };
static const char *metric_names[M_NMETRICS] = {"pause_per_live_page", "touch_per_live_page",
                                               "pause_touch_per_live_page"};

/* Collection stats kept from the last repetition. */
struct counts {
    size_t page;
    double live_pages, runs_remapped, runs_mremap_2m, runs_copied, pages_remapped, pages_copied,
        pages_in_place, vmas_after, pages_slid, pages_parked;
};

static bool slot_live(const struct pattern *p, size_t slot, size_t page)
{
    if (p->run == 0) {
        size_t per_block = TWO_MIB / page;
        return (slot / per_block) % 2 == 0;
    }
    if (slot == 0)
        return false; /* shift the runs off the 2 MiB grid */
    return (slot - 1) % (p->run + p->gap) < p->run;
}

/* Write one word into every OS page of [p, p+len): the first touch after a move. */
static void touch_pages(char *p, size_t len, size_t os_page, uint64_t tag)
{
    for (size_t off = 0; off < len; off += os_page)
        *(volatile uint64_t *)(p + off) += tag;
}

/* One arena repetition: returns 0 and fills out[] (ns totals) and counts, or an error note. */
static int run_arena(const struct bench_opts *o, const struct pattern *p, double out[M_NMETRICS],
                     struct counts *c, char *why, size_t whylen)
{
    arena_t *a = NULL;
    arena_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.reserve = o->heap * 4 + 4 * TWO_MIB;
    int err = arena_create(&a, &cfg);
    if (err) {
        snprintf(why, whylen, "arena_create: %s", arena_have_strerror(err));
        return -1;
    }
    size_t page = arena_page_size(a), os_page = (size_t)sysconf(_SC_PAGESIZE);
    size_t n = o->heap / page;
    char *base = arena_view_base(arena_heap_view(a));
    char **objs = malloc(n * sizeof *objs);
    uint64_t *ids = malloc(n * sizeof *ids);
    size_t live = 0;
    int rc = -1;
    for (size_t i = 0; i < n; i++) {
        objs[i] = arena_alloc(a, page);
        if (!objs[i]) {
            snprintf(why, whylen, "arena_alloc(page) failed at page %zu", i);
            goto out;
        }
        if ((size_t)(objs[i] - base) % page) {
            snprintf(why, whylen, "page-sized objects are not page aligned");
            goto out;
        }
        touch_pages(objs[i], page, os_page, 1);
        *(uint64_t *)objs[i] = i;
    }
    for (size_t i = 0; i < n; i++) {
        if (slot_live(p, (size_t)(objs[i] - base) / page, page)) {
            arena_mark(a, objs[i]);
            ids[live] = i;
            objs[live++] = objs[i];
        }
    }
    arena_collect_stats_t st;
    memset(&st, 0, sizeof st);
    uint64_t t0 = bench_now_ns();
    err = arena_collect(a, &st);
    uint64_t t1 = bench_now_ns();
    if (err < 0) {
        snprintf(why, whylen, "arena_collect: %s", arena_have_strerror(err));
        goto out;
    }
    for (size_t i = 0; i < live; i++) {
        objs[i] = arena_forward(a, objs[i]);
        /* A figure only counts when the live pages survived: reading the first word
         * would fault them in, so check the address here and the word after timing. */
        if (!objs[i] || !arena_contains(a, objs[i])) {
            snprintf(why, whylen, "live page %zu of %zu forwarded to %p", i, live, (void *)objs[i]);
            goto out;
        }
    }
    uint64_t t2 = bench_now_ns();
    for (size_t i = 0; i < live; i++)
        touch_pages(objs[i], page, os_page, 1);
    uint64_t t3 = bench_now_ns();
    for (size_t i = 0; i < live; i++) {
        if (*(uint64_t *)objs[i] != ids[i] + 1) {
            snprintf(why, whylen, "live page %zu (object %" PRIu64 ") lost its content", i, ids[i]);
            goto out;
        }
    }
    out[M_PAUSE] = (double)(t1 - t0);
    out[M_TOUCH] = (double)(t3 - t2);
    out[M_TOTAL] = out[M_PAUSE] + out[M_TOUCH];
    *c = (struct counts){page,
                         (double)live,
                         (double)st.runs_remapped,
                         (double)st.runs_mremap_2m,
                         (double)st.runs_copied,
                         (double)st.pages_remapped,
                         (double)st.pages_copied,
                         (double)st.pages_in_place,
                         (double)st.vmas_after,
                         (double)st.pages_slid,
                         (double)st.pages_parked};
    rc = 0;
out:
    free(ids);
    free(objs);
    arena_destroy(a);
    return rc;
}

/* The memcpy compactor on the same layout. */
static int run_memcpy(const struct bench_opts *o, const struct pattern *p, size_t page, bool warm,
                      double out[M_NMETRICS])
{
    size_t os_page = (size_t)sysconf(_SC_PAGESIZE);
    size_t n = o->heap / page, len = n * page;
    char *raw = mmap(NULL, len + TWO_MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *dst = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED || dst == MAP_FAILED)
        return -1;
    char *src = (char *)(((uintptr_t)raw + TWO_MIB - 1) & ~(uintptr_t)(TWO_MIB - 1));
    for (size_t i = 0; i < n; i++) {
        touch_pages(src + i * page, page, os_page, 1);
        *(uint64_t *)(src + i * page) = i;
    }
    /* A warm to-space: resident and written, as a copying collector's reused semispace. */
    if (warm)
        touch_pages(dst, len, os_page, 1);
    uint64_t t0 = bench_now_ns();
    size_t to = 0;
    for (size_t i = 0; i < n;) {
        if (!slot_live(p, i, page)) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && slot_live(p, j, page))
            j++;
        memcpy(dst + to * page, src + i * page, (j - i) * page);
        to += j - i;
        i = j;
    }
    uint64_t t1 = bench_now_ns();
    touch_pages(dst, to * page, os_page, 1);
    uint64_t t2 = bench_now_ns();
    out[M_PAUSE] = (double)(t1 - t0);
    out[M_TOUCH] = (double)(t2 - t1);
    out[M_TOTAL] = out[M_PAUSE] + out[M_TOUCH];
    munmap(raw, len + TWO_MIB);
    munmap(dst, len);
    return 0;
}

static void one_pattern(const struct bench_opts *o, const struct pattern *p)
{
    char bench[64], why[256];
    snprintf(bench, sizeof bench, "compact.%s", p->name);
    int reps = o->repeat;
    double *vals = calloc((size_t)reps * M_NMETRICS * 2, sizeof *vals);
    double *base = vals + (size_t)reps * M_NMETRICS;
    double *warm = calloc((size_t)reps, sizeof *warm);
    struct counts c = {0};
    for (int r = 0; r < reps; r++) {
        double a[M_NMETRICS], m[M_NMETRICS];
        bench_progress("%s arena %d/%d", bench, r + 1, reps);
        if (run_arena(o, p, a, &c, why, sizeof why)) {
            bench_note(bench, "failed", why);
            free(vals);
            return;
        }
        bench_progress("%s memcpy %d/%d", bench, r + 1, reps);
        double w[M_NMETRICS];
        if (run_memcpy(o, p, c.page, false, m) || run_memcpy(o, p, c.page, true, w)) {
            bench_note(bench, "failed", "mmap of the memcpy baseline failed");
            free(vals);
            free(warm);
            return;
        }
        warm[r] = w[M_PAUSE] / c.live_pages;
        for (int k = 0; k < M_NMETRICS; k++) {
            vals[k * reps + r] = a[k] / c.live_pages;
            base[k * reps + r] = m[k] / c.live_pages;
        }
    }
    for (int k = 0; k < M_NMETRICS; k++)
        bench_row(bench, metric_names[k], bench_median(vals + k * reps, reps), "ns",
                  bench_median(base + k * reps, reps));
    /* The same pause against memcpy into a resident, warm to-space. */
    bench_row(bench, "pause_vs_warm_copy", bench_median(vals + M_PAUSE * reps, reps), "ns",
              bench_median(warm, reps));
    free(warm);
    /* How the pages moved (last repetition); the baseline copies every live page. */
    bench_row(bench, "live_pages", c.live_pages, "pages", NAN);
    bench_row(bench, "pages_copied", c.pages_copied, "pages", c.live_pages);
    bench_row(bench, "pages_remapped", c.pages_remapped, "pages", c.live_pages);
    bench_row(bench, "pages_in_place", c.pages_in_place, "pages", c.live_pages);
    bench_row(bench, "pages_slid", c.pages_slid, "pages", c.live_pages);
    bench_row(bench, "pages_parked", c.pages_parked, "pages", c.live_pages);
    bench_row(bench, "runs_remapped", c.runs_remapped, "runs", NAN);
    bench_row(bench, "runs_mremap_2m", c.runs_mremap_2m, "runs", NAN);
    bench_row(bench, "runs_copied", c.runs_copied, "runs", NAN);
    bench_row(bench, "vmas_after", c.vmas_after, "vmas", NAN);
    free(vals);
}

int bench_compact(const struct bench_opts *o)
{
    if (!bench_need("compact", "the heap (arena_alloc/mark/collect/forward)", bench_have_heap()))
        return 0;
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++)
        one_pattern(o, &patterns[i]);
    return 0;
}
