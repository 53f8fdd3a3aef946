/*
 * mesh.c -- meshing of pinned pages (docs/design.md §7, .req.mesh.what to .req.mesh.budget).
 *
 * Mesh (Powers, Tench, Berger and McGregor, "Mesh: compacting memory management for C/C++
 * applications", PLDI 2019): two sparse pages whose live objects occupy disjoint offsets
 * can share one physical page. Here every heap page is a file page, so meshing page U into
 * page T copies U's live objects into T's file page at the same offsets and then shows
 * T's file page at U's slot too: every object keeps its address, and U's file page is
 * released. The collector meshes only pages that cannot move (pinned ones): a page that
 * may move is compacted more cheaply by copying its live bytes.
 *
 * A meshed slot carries ARENA__PAGE_MESHED. It stays where it is in every later
 * collection (arena__mesh_prepare pins it) until it is the last slot showing its file
 * page; a meshed slot whose objects all died is unmapped, never retained (a retained slot
 * is written by the allocator, which would overwrite the objects of the slots that share
 * its file page), and the file page goes when its last slot does.
 */
#include "heap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* One file page shown by the heap and the slots that show it. */
struct unit {
    size_t fp, slot, nslots;   /* slot: the lowest slot showing fp */
    uint64_t *occ;             /* granules occupied by live objects of every slot */
    size_t used;               /* popcount of occ */
    struct unit *prev, *next;  /* in the open targets of class cls */
    unsigned cls;
};

struct by_fp {
    size_t fp, slot;
};

static int cmp_fp(const void *x, const void *y)
{
    const struct by_fp *a = x, *b = y;
    return a->fp != b->fp ? (a->fp < b->fp ? -1 : 1) : (a->slot < b->slot ? -1 : a->slot > b->slot);
}

static bool meshed(const struct arena__page *pg)
{
    return pg->kind == ARENA__PAGE_SMALL && (pg->flags & ARENA__PAGE_MESHED);
}

/* The meshed slots below top, sorted by file page; NULL with *n = 0 when there are none. */
static struct by_fp *meshed_slots(const arena_t *a, size_t *n, int *err)
{
    const struct arena__heap *h = a->heap;
    size_t count = 0;
    for (size_t s = 0; s < h->top; s++)
        count += meshed(&h->pages[s]);
    *n = 0;
    *err = 0;
    if (count == 0)
        return NULL;
    struct by_fp *v = malloc(count * sizeof *v);
    if (v == NULL) {
        *err = ARENA_ENOMEM;
        return NULL;
    }
    for (size_t s = 0; s < h->top; s++)
        if (meshed(&h->pages[s]))
            v[(*n)++] = (struct by_fp){h->pages[s].file_page, s};
    qsort(v, *n, sizeof *v, cmp_fp);
    return v;
}

int arena__mesh_prepare(arena_t *a, void (*free_fp)(void *, size_t), void *ctx, size_t *freed)
{
    struct arena__heap *h = a->heap;
    size_t n;
    int err;
    *freed = 0;
    struct by_fp *v = meshed_slots(a, &n, &err);
    if (err != 0) {
        /* Without the list every meshed slot stays pinned, dead or alive: nothing is lost,
         * nothing is reused. */
        for (size_t s = 0; s < h->top; s++)
            if (meshed(&h->pages[s]))
                h->pages[s].pinned = 1;
        return err;
    }
    for (size_t i = 0; i < n;) {
        size_t j = i, alive = 0;
        while (j < n && v[j].fp == v[i].fp)
            alive += h->pages[v[j++].slot].live != 0;
        for (size_t k = i; k < j; k++) {
            struct arena__page *pg = &h->pages[v[k].slot];
            if (pg->live != 0) {
                pg->pinned = 1;          /* .req.mesh.all-or-nothing: a meshed page stays where it is */
                if (alive == 1)
                    pg->flags &= (uint16_t)~ARENA__PAGE_MESHED; /* alone again: movable */
            } else {
                /* .req.mesh.placement: unmapped at the end of the collection (STALE), never retained. */
                for (size_t w = v[k].slot * h->words; w < (v[k].slot + 1) * h->words; w++)
                    *freed += (size_t)__builtin_popcountll(h->starts[w]);
                arena__heap_discard(a, v[k].slot, 1);
            }
        }
        if (alive == 0)
            free_fp(ctx, v[i].fp);
        i = j;
    }
    free(v);
    return 0;
}

/* ------------------------------------------------------------------ the pass -- */

static void occupancy(const arena_t *a, size_t slot, uint64_t *occ)
{
    const struct arena__heap *h = a->heap;
    size_t first = slot * h->granules, limit = first + h->granules;
    for (size_t bit = arena__bit_next(h->starts, first, limit); bit != (size_t)-1;
         bit = arena__bit_next(h->starts, bit + 1, limit)) {
        size_t end = arena__bit_next(h->ends, bit, limit);
        if (end == (size_t)-1)
            end = limit - 1;
        for (size_t g = bit; g <= end; g++)
            occ[(g - first) >> 6] |= (uint64_t)1 << ((g - first) & 63);
    }
}

static bool disjoint(const uint64_t *x, const uint64_t *y, size_t words)
{
    for (size_t w = 0; w < words; w++)
        if (x[w] & y[w])
            return false;
    return true;
}

static size_t popcount(const uint64_t *x, size_t words)
{
    size_t n = 0;
    for (size_t w = 0; w < words; w++)
        n += (size_t)__builtin_popcountll(x[w]);
    return n;
}

/* Copy u's live granules into t's file page (through t's slot), at the same offsets. */
static void copy_live(const arena_t *a, const struct unit *u, const struct unit *t)
{
    size_t granules = a->heap->granules;
    char *from = arena__view_slot_addr(a->heap_view, u->slot);
    char *to = arena__view_slot_addr(a->heap_view, t->slot);
    for (size_t g = 0; g < granules;) {
        if (!((u->occ[g >> 6] >> (g & 63)) & 1)) {
            g++;
            continue;
        }
        size_t e = g + 1;
        while (e < granules && ((u->occ[e >> 6] >> (e & 63)) & 1))
            e++;
        memcpy(to + g * ARENA__GRANULE, from + g * ARENA__GRANULE, (e - g) * ARENA__GRANULE);
        g = e;
    }
}

/* .req.mesh.what: mesh u (one slot) into t. All or nothing: the copy lands only in granules no
 * object of t's file page occupies, and the one mapping call either shows t's file page
 * at u's slot or leaves u's slot as it was (view.c restores); only then do the tables
 * change. */
static int mesh_one(arena_t *a, struct unit *u, struct unit *t, size_t words)
{
    struct arena__heap *h = a->heap;
    copy_live(a, u, t);
    int err = arena__view_set_run(a->heap_view, u->slot, t->fp, 1, ARENA_MOVE_MMAP_FIXED);
    if (err != 0)
        return err;
    h->pages[u->slot].file_page = (uint32_t)t->fp;
    h->pages[u->slot].flags |= ARENA__PAGE_MESHED;
    h->pages[t->slot].flags |= ARENA__PAGE_MESHED;
    for (size_t w = 0; w < words; w++)
        t->occ[w] |= u->occ[w];
    t->used += u->used;
    t->nslots++;
    return 0;
}

/* Disjointness tests per page before it gives up and becomes a target itself: bounds the
 * pass at pages x MESH_PROBES bitmap tests however many targets are open. */
#define MESH_PROBES 512

/* Open targets by occupancy: class c holds the file pages with c/16 to (c+1)/16 of their
 * granules occupied, each list oldest first. */
#define MESH_CLASSES 17

struct targets {
    struct unit *head[MESH_CLASSES], *tail[MESH_CLASSES];
};

static bool full(const struct arena__heap *h, const struct unit *u)
{
    return u->used > h->granules - h->granules / 16;
}

static unsigned occ_class(const struct arena__heap *h, size_t used)
{
    return (unsigned)(used * (MESH_CLASSES - 1) / h->granules);
}

static void target_add(const struct arena__heap *h, struct targets *ts, struct unit *t)
{
    unsigned c = occ_class(h, t->used);
    t->cls = c;
    t->next = NULL;
    t->prev = ts->tail[c];
    if (ts->tail[c] != NULL)
        ts->tail[c]->next = t;
    else
        ts->head[c] = t;
    ts->tail[c] = t;
}

static void target_remove(struct targets *ts, struct unit *t)
{
    unsigned c = t->cls;
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        ts->head[c] = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    else
        ts->tail[c] = t->prev;
}

/* Best fit by class: the oldest open target of the fullest class that still has room for
 * u and no granule in common with it; NULL when none is found within MESH_PROBES tests.
 * Filling the fullest targets first leaves the emptier ones for the denser pages
 * (docs/design.md §7 compares it with first fit and with Mesh's pairing). */
static struct unit *best_fit(const struct arena__heap *h, const struct targets *ts, const struct unit *u)
{
    size_t probes = 0;
    for (unsigned c = occ_class(h, h->granules - u->used) + 1; c-- > 0;)
        for (struct unit *t = ts->head[c]; t != NULL; t = t->next) {
            if (t->used + u->used > h->granules)
                continue;   /* only in the fullest class: a test that needs no bitmap */
            if (disjoint(t->occ, u->occ, h->words))
                return t;
            if (++probes == MESH_PROBES)
                return NULL;
        }
    return NULL;
}

int arena__mesh_pass(arena_t *a, unsigned max_percent, size_t vma_margin, size_t follow,
                     void (*free_fp)(void *, size_t), void *ctx, size_t *meshed_out)
{
    struct arena__heap *h = a->heap;
    size_t words = h->words, limit = h->granules * max_percent / 100, n_units = 0;
    *meshed_out = 0;
    /* Candidates: small pages that stay where they are (pinned, or meshed already),
     * grouped by file page. */
    size_t count = 0;
    for (size_t s = 0; s < h->top; s++)
        count += h->pages[s].kind == ARENA__PAGE_SMALL && h->pages[s].pinned;
    if (count < 2)
        return 0;
    struct by_fp *v = malloc(count * sizeof *v);
    struct unit *units = malloc(count * sizeof *units);
    uint64_t *occ = calloc(count * words, sizeof *occ);
    if (v == NULL || units == NULL || occ == NULL) {
        free(v), free(units), free(occ);
        return ARENA_ENOMEM; /* nothing meshed, nothing changed */
    }
    size_t k = 0;
    for (size_t s = 0; s < h->top; s++)
        if (h->pages[s].kind == ARENA__PAGE_SMALL && h->pages[s].pinned)
            v[k++] = (struct by_fp){h->pages[s].file_page, s};
    qsort(v, count, sizeof *v, cmp_fp);
    for (size_t i = 0; i < count;) {
        struct unit *u = &units[n_units];
        *u = (struct unit){.fp = v[i].fp, .slot = v[i].slot, .occ = occ + n_units * words};
        for (; i < count && v[i].fp == u->fp; i++, u->nslots++)
            occupancy(a, v[i].slot, u->occ);
        u->used = popcount(u->occ, words);
        n_units++;
    }
    free(v);
    struct targets ts = {0};
    int err = 0;
    for (size_t i = 0; i < n_units && err == 0; i++) {
        struct unit *u = &units[i];
        if (full(h, u))
            continue;   /* neither meshed nor a target */
        struct unit *t = u->nslots == 1 && u->used <= limit ? best_fit(h, &ts, u) : NULL;
        if (t == NULL) {
            target_add(h, &ts, u);
            continue;
        }
        /* .req.mesh.budget: each meshed slot may split a mapping in two more, here and in
         * every mirror that follows it at the end of the collection; keep those and the
         * margin the rest of the collection needs. */
        if (arena__budget_check(&a->budget, vma_margin + 2 + (*meshed_out + 1) * follow) != 0)
            break;
        int e = mesh_one(a, u, t, words);
        if (e == ARENA_EVMA)
            break;
        if (e != 0) {
            err = e;   /* u stays as it was; the kernel refused: stop meshing */
            break;
        }
        free_fp(ctx, u->fp);
        (*meshed_out)++;
        target_remove(&ts, t);
        if (!full(h, t))
            target_add(h, &ts, t);   /* in its new class; a full one is no longer a target */
    }
    free(units);
    free(occ);
    return err;
}
