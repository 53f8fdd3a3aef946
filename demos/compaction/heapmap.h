/*
 * heapmap.h -- the SVG figure arena-compaction writes: one heap before a collection, and for
 * each compactor what happened to every page and where every page's contents came from.
 */
#ifndef ARENA_DEMOS_HEAPMAP_H
#define ARENA_DEMOS_HEAPMAP_H

#include <stdio.h>

#include "arena.h"

/* What a heap slot is in the figure. Ordered by precedence: a page that holds objects of
 * several kinds shows the highest (an evacuated object outranks a page move). */
enum hm_class {
    HM_NO_PAGE,   /* the address shows no file page */
    HM_VACATED,   /* after: the address showed a page, whose file page was remapped away */
    HM_DEAD,      /* before: a page with no survivor */
    HM_EMPTY,     /* after: a page that holds no live data, kept resident for reuse */
    HM_IN_PLACE,  /* a live page that stayed where it was */
    HM_REMAPPED,  /* a live page moved by remapping: the same file page at a new address */
    HM_COPIED,    /* a live page copied into a fresh file page */
    HM_EVACUATED, /* live objects copied one by one out of a sparse page */
    HM_CLASSES
};

/* One collection as the figure shows it; slots are heap pages from the heap's start. */
struct hm_run {
    const char *name;            /* "remapping", "copying" */
    const char *mover;           /* "auto", "copy" */
    size_t slots;
    float *live_before;          /* per slot: live fraction 0..1 before; < 0 no page */
    unsigned char *fate;         /* per slot, before: what happened to the page (enum hm_class) */
    unsigned char *origin;       /* per slot, after: where its contents came from */
    arena_collect_stats_t st;
    arena_stats_t before, after, trimmed; /* trimmed: after arena_trim(a, 0) */
    size_t bad;                  /* survivors that failed verification */
};

struct hm_heap {
    size_t heap_bytes, page_size, objects;
    double survive;              /* asked for, 0..1 */
    unsigned long long seed;
};

/* slots rounded up to whole rows of the figure (the rest of the last row then shows what
 * those addresses hold, instead of blank paper). */
size_t hm_round_slots(size_t slots);

/* Write the whole SVG document for runs[0] (remapping) and runs[1] (copying) of the same heap
 * shape. The "before" panel is drawn from runs[0]. Returns 0, or -1 with errno on a write error. */
int hm_write_svg(FILE *f, const struct hm_heap *heap, const struct hm_run runs[2]);

#endif
