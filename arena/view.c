/*
 * view.c -- views: a virtual range whose every slot shows one file page or nothing
 * (docs/design.md §5).
 *
 * .req.view.reservation  A view is a 2 MiB-aligned reservation; its slot table says what each slot shows.
 * .req.view.vma-count  The view counts its mappings itself: maximal runs of slots showing consecutive
 *       file pages with equal protection, plus runs of empty slots. The count is kept in
 *       O(changed slots) and checked against the arena's budget BEFORE anything changes:
 *       a refused operation returns ARENA_EVMA and leaves the view as it was.
 * .req.view.all-or-nothing  Every operation is all-or-nothing: when the kernel refuses a step, the slots
 *       already changed are put back.
 * .req.view.undo-frees-first  An undo needs no resource it may not get: it unmaps whole mappings first
 *       (at the mapping limit the kernel still allows an munmap that splits nothing, but no
 *       mmap at all), then maps the old contents, so the process never holds more mappings
 *       than before or after. No reserve of mappings is kept for it. An undo the kernel
 *       still refuses marks the view broken (ARENA_EBROKEN; the arena for the heap's view).
 * .req.view.one-call-per-run  One system call per maximal run of changed slots showing consecutive file pages,
 *       never one per page.
 * .req.view.registry  Views can be found by address without a lock and from a signal handler: a
 *       process-wide table of (base, end, view) sorted by base, searched in O(log views),
 *       replaced as a whole through an atomic pointer, old tables freed after a grace
 *       period; no limit on the number of views. It is the SIGSEGV tracker's only lookup
 *       (arena__view_visit); a view's tracker is given up after a grace period too.
 * .req.view.close-keeps-handle  A closed view keeps its handle (calls on it return ARENA_ECLOSED) until the arena
 *       is destroyed; its address range is given back at once.
 *
 * Layer 3 (docs/design.md §2): calls map.c, backing.c and os.c; tells the tracker of
 * changes only through the registered struct arena__view_hooks.
 */
#include "view.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>


struct arena_view {
    arena_t *arena;
    char *base;            /* slot 0; 2 MiB aligned */
    size_t nslots;
    int layout;            /* enum arena_view_layout */
    int prot;              /* ARENA_PROT_* of the view */
    int flags;             /* ARENA_VIEW_PRIVATE */
    int mover;             /* enum arena_mover */
    bool closed;
    bool is_heap;
    /* Slot table, lazily committed anonymous memory (untouched = zero), so it is stored
     * complemented: slot_enc[i] == ~file_page, 0 = the slot shows nothing. */
    uint32_t *slot_enc;    /* never ARENA__VIEW_REC_STALE: file pages are below UINT32_MAX - 1 */
    /* Per-slot protection, NULL until arena_view_protect first differs from the view's:
     * slot_prot[i] ^ prot is the slot's ARENA_PROT_*. */
    uint8_t *slot_prot;
    size_t vmas;           /* mappings accounted (to the arena's budget too): maximal runs of
                              slots showing consecutive file pages with equal protection, plus
                              runs of empty slots */
    size_t shown;          /* slots showing a file page */
    size_t high;           /* 1 + the highest slot that ever showed a file page */
    bool registered;       /* in the process-wide registry of views */
    bool broken;           /* an undo was refused: the slots are half changed (ARENA_EBROKEN) */
    bool out_of_step;      /* MIRROR: the last collection could not update it (.req.fault.no-data-loss) */
    struct arena__track *track;   /* the tracker's, NULL when not tracking */
    struct arena_view *next;      /* in arena->views */
};

/* ------------------------------------------------------------------- hooks -- */
static _Atomic(const struct arena__view_hooks *) hooks;

void arena__view_set_hooks(const struct arena__view_hooks *h)
{
    atomic_store(&hooks, h);
}

static void hook_closing(arena_view_t *v)
{
    const struct arena__view_hooks *h = atomic_load(&hooks);
    if (h && h->closing)
        h->closing(v);
}

static void hook_remapping(arena_view_t *v, size_t slot, size_t n)
{
    const struct arena__view_hooks *h = atomic_load(&hooks);
    if (h && h->remapping)
        h->remapping(v, slot, n);
}

static void hook_moved(arena_view_t *v, size_t dst, size_t src, size_t n)
{
    const struct arena__view_hooks *h = atomic_load(&hooks);
    if (h && h->moved)
        h->moved(v, dst, src, n);
}

/* ------------------------------------------------------------- accessors -- */
char *arena__view_base(const arena_view_t *v)
{
    return v->base;
}

size_t arena__view_nslots(const arena_view_t *v)
{
    return v->nslots;
}

char *arena__view_slot_addr(const arena_view_t *v, size_t slot)
{
    return v->base + slot * v->arena->page_size;
}

size_t arena__view_page(const arena_view_t *v, size_t slot)
{
    uint32_t e = v->slot_enc[slot];
    return e ? (size_t)~e : ARENA_NO_PAGE;
}

int arena__view_slot_prot(const arena_view_t *v, size_t slot)
{
    return v->slot_prot ? (v->slot_prot[slot] ^ v->prot) : v->prot;
}

int arena__view_prot(const arena_view_t *v)
{
    return v->prot;
}

int arena__view_flags(const arena_view_t *v)
{
    return v->flags;
}

arena_t *arena__view_arena(const arena_view_t *v)
{
    return v->arena;
}

bool arena__view_closed(const arena_view_t *v)
{
    return v->closed;
}

bool arena__view_is_heap(const arena_view_t *v)
{
    return v->is_heap;
}

bool arena__view_is_mirror(const arena_view_t *v)
{
    return v->layout == ARENA_VIEW_MIRROR && !v->closed;
}

size_t arena__view_vmas(const arena_view_t *v)
{
    return v->vmas;
}

size_t arena__view_used_end(const arena_view_t *v)
{
    return v->high < v->nslots ? v->high : v->nslots;
}

arena_view_t *arena__view_next(const arena_view_t *v)
{
    return v->next;
}

void arena__view_set_out_of_step(arena_view_t *v, bool out)
{
    v->out_of_step = out;
}

/* Atomic: a fault handler reads it inside the registry's reader bracket (arena__view_visit). */
struct arena__track *arena__view_track(const arena_view_t *v)
{
    return __atomic_load_n(&v->track, __ATOMIC_SEQ_CST);
}

void arena__view_snapshot(const arena_view_t *v, size_t lo, size_t hi, uint32_t *rec, uint8_t *prot)
{
    memcpy(rec + lo, v->slot_enc + lo, (hi - lo) * sizeof *rec);
    if (!prot)
        return;
    if (v->slot_prot)
        memcpy(prot + lo, v->slot_prot + lo, hi - lo);
    else
        memset(prot + lo, 0, hi - lo);
}

bool arena__view_changed(const arena_view_t *v, size_t lo, size_t hi, const uint32_t *rec, const uint8_t *prot)
{
    if (memcmp(v->slot_enc + lo, rec + lo, (hi - lo) * sizeof *rec) != 0)
        return true;
    if (!prot)
        return false;
    if (v->slot_prot)
        return memcmp(v->slot_prot + lo, prot + lo, hi - lo) != 0;
    for (size_t i = lo; i < hi; i++)
        if (prot[i])
            return true;
    return false;
}

/* ----------------------------------------------------------------- registry -- */
/* Every open view of the process, by address: a table of ranges sorted by base, published
 * through one atomic pointer. Lookups (a signal handler may make them) take no lock and
 * call nothing but a visitor's callback: they bracket their reading with a reader count
 * and binary-search the table they loaded. Changes (view create / close, under registry_lock) build a new table,
 * publish it, and free the old one only once no reader can still hold it: readers count
 * themselves in one of two counters, chosen by a phase bit; the writer flips the phase and
 * waits for the old phase's counter to drain, twice, so a reader that loaded the old table
 * under either phase has left (the two-phase grace period of user-space RCU).
 * arena__view_visit keeps a reader inside the bracket while its callback runs (the
 * SIGSEGV tracker's handler opening a page), and arena__view_set_track waits for a grace
 * period before the old tracker may be freed, so what a reader found outlives its use.
 * Grace periods are serialised by registry_lock. In a forked child arena__view_forked
 * clears the counts other threads held at fork() (fork.c's child handler). */
struct registry_entry {
    uintptr_t base, end;
    arena_view_t *view;
};

struct registry_table {
    size_t n;
    struct registry_entry e[];
};

static _Atomic(struct registry_table *) registry;
static _Atomic unsigned registry_phase;
static _Atomic unsigned long registry_readers[2];
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

static void wait_readers(unsigned phase)
{
    while (atomic_load(&registry_readers[phase]) != 0)
        sched_yield();
}

/* Returns once every reader that started before the call has finished. */
static void grace_period(void)
{
    for (int flip = 0; flip < 2; flip++) {
        unsigned was = atomic_fetch_xor(&registry_phase, 1u) & 1u;
        wait_readers(was);
    }
}

/* Publish t (NULL: empty) and free the table it replaces once no reader holds it. */
static void registry_publish(struct registry_table *t)
{
    struct registry_table *old = atomic_exchange(&registry, t);
    grace_period();
    free(old);
}

/* First index whose base is above p (the entry before it may contain p). */
static size_t upper(const struct registry_table *t, uintptr_t p)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->e[mid].base <= p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* A copy of the current table with v's entry added (add) or removed. NULL: no memory. */
static struct registry_entry entry_of(const arena_view_t *v)
{
    return (struct registry_entry){(uintptr_t)v->base, (uintptr_t)(v->base + v->nslots * v->arena->page_size),
                                   (arena_view_t *)v};
}

/* Entries cleared in place (see registry_remove) are dropped. */
static struct registry_table *registry_edit(const arena_view_t *v, bool add, bool *empty)
{
    const struct registry_table *cur = atomic_load(&registry);
    size_t n = cur ? cur->n : 0, at = cur ? upper(cur, (uintptr_t)v->base) : 0;
    struct registry_table *t = malloc(sizeof *t + (n + 1) * sizeof t->e[0]);
    if (!t)
        return NULL;
    t->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (add && i == at)
            t->e[t->n++] = entry_of(v);
        if (cur->e[i].view == NULL || (!add && cur->e[i].view == v))
            continue;
        t->e[t->n++] = cur->e[i];
    }
    if (add && at == n)
        t->e[t->n++] = entry_of(v);
    *empty = t->n == 0;
    return t;
}

static int registry_add(arena_view_t *v)
{
    pthread_mutex_lock(&registry_lock);
    bool empty;
    struct registry_table *t = registry_edit(v, true, &empty);
    if (t)
        registry_publish(t);
    pthread_mutex_unlock(&registry_lock);
    if (!t)
        return ARENA_ENOMEM;
    v->registered = true;
    return 0;
}

/* Removal must not fail (a view closes whatever memory is left): without memory for a new
 * table, the view's entry is cleared in place instead, which readers see as no view. */
static void registry_remove(arena_view_t *v)
{
    if (!v->registered)
        return;
    pthread_mutex_lock(&registry_lock);
    bool empty;
    struct registry_table *t = registry_edit(v, false, &empty);
    if (t) {
        if (empty) {
            free(t);
            t = NULL;
        }
        registry_publish(t);
    } else {
        struct registry_table *cur = atomic_load(&registry);
        for (size_t i = 0; cur && i < cur->n; i++)
            if (cur->e[i].view == v)
                __atomic_store_n(&cur->e[i].view, NULL, __ATOMIC_SEQ_CST);
        grace_period(); /* no reader still holds v when it is freed */
    }
    pthread_mutex_unlock(&registry_lock);
    v->registered = false;
}

/* A reader's bracket: count itself in the current phase's counter (async-signal-safe). */
static unsigned reader_enter(void)
{
    unsigned phase = atomic_load(&registry_phase) & 1u;
    atomic_fetch_add(&registry_readers[phase], 1);
    return phase;
}

static void reader_leave(unsigned phase)
{
    atomic_fetch_sub(&registry_readers[phase], 1);
}

/* Inside a reader bracket: atomics and a binary search, no lock, no call. */
static arena_view_t *lookup(const arena_t *a, const void *addr, size_t *slot)
{
    uintptr_t p = (uintptr_t)addr;
    const struct registry_table *t = atomic_load(&registry);
    size_t i = t ? upper(t, p) : 0;
    if (i == 0 || p >= t->e[i - 1].end)
        return NULL;
    arena_view_t *v = __atomic_load_n(&t->e[i - 1].view, __ATOMIC_SEQ_CST);
    if (v && a && v->arena != a)
        return NULL;
    if (v && slot)
        *slot = (p - t->e[i - 1].base) >> v->arena->page_shift;
    return v;
}

static arena_view_t *find(const arena_t *a, const void *addr, size_t *slot)
{
    unsigned phase = reader_enter();
    arena_view_t *v = lookup(a, addr, slot);
    reader_leave(phase);
    return v;
}

arena_view_t *arena__view_find(const arena_t *a, const void *addr, size_t *slot)
{
    return a ? find(a, addr, slot) : NULL;
}

arena_view_t *arena__view_find_any(const void *addr, size_t *slot)
{
    return find(NULL, addr, slot);
}

int arena__view_visit(const void *addr, int (*fn)(arena_view_t *v, size_t slot, void *arg), void *arg)
{
    unsigned phase = reader_enter();
    size_t slot = 0;
    arena_view_t *v = lookup(NULL, addr, &slot);
    int r = v ? fn(v, slot, arg) : 0;
    reader_leave(phase);
    return r;
}

/* Only the forking thread exists in the child: a count another thread had raised, or the
 * lock it held, belongs to no thread and would make the next grace period wait for ever. */
void arena__view_forked(void)
{
    atomic_store(&registry_readers[0], 0);
    atomic_store(&registry_readers[1], 0);
    pthread_mutex_init(&registry_lock, NULL);
}

/* The tracker is published like a table: a reader that found the view may be using the
 * old one, so it is given up only after a grace period (the caller then frees it). */
void arena__view_set_track(arena_view_t *v, struct arena__track *t)
{
    struct arena__track *old = __atomic_exchange_n(&v->track, t, __ATOMIC_SEQ_CST);
    if (old == NULL || old == t)
        return;
    pthread_mutex_lock(&registry_lock);
    grace_period();
    pthread_mutex_unlock(&registry_lock);
}

/* -------------------------------------------------------- mapping accounting -- */
/* A planned change: slots [slot, slot+n) go from oldv[] to newv[] (encoded as in
 * slot_enc: ~file_page, 0 = nothing). */
struct change {
    size_t slot, n;
    uint32_t *newv, *oldv;
};

/* A layout that differs from the view's table in a few places: value overrides from
 * changes, and the protection prot on slots [plo, phi). */
struct whatif {
    const arena_view_t *v;
    const struct change *ch;
    int nch;
    bool old; /* read the changes' oldv instead of newv */
    size_t plo, phi;
    int prot;
};

static uint32_t wi_enc(const struct whatif *w, size_t i)
{
    for (int k = 0; k < w->nch; k++)
        if (i - w->ch[k].slot < w->ch[k].n)
            return (w->old ? w->ch[k].oldv : w->ch[k].newv)[i - w->ch[k].slot];
    return w->v->slot_enc[i];
}

static int wi_prot(const struct whatif *w, size_t i)
{
    return (i >= w->plo && i < w->phi) ? w->prot : arena__view_slot_prot(w->v, i);
}

/* Do slots showing e0 (prot p0) and then e1 (prot p1) belong to one mapping? Empty
 * slots are one PROT_NONE reservation whatever their protection will be. */
static bool joins(uint32_t e0, int p0, uint32_t e1, int p1)
{
    if (!e0 || !e1)
        return !e0 && !e1;
    return e1 == e0 - 1 && p0 == p1;
}

/* Mapping breaks between slot i-1 and i, for i in [lo, hi]. */
static size_t breaks(const struct whatif *w, size_t lo, size_t hi)
{
    size_t n = 0;
    if (lo < 1)
        lo = 1;
    if (hi > w->v->nslots - 1)
        hi = w->v->nslots - 1;
    for (size_t i = lo; i <= hi; i++)
        n += !joins(wi_enc(w, i - 1), wi_prot(w, i - 1), wi_enc(w, i), wi_prot(w, i));
    return n;
}

/* The index intervals whose breaks a change can alter, merged so none is counted twice. */
struct spans {
    size_t lo[3], hi[3];
    int n;
};

static void spans_of(const struct whatif *w, struct spans *s)
{
    s->n = 0;
    for (int k = 0; k < w->nch; k++) {
        s->lo[s->n] = w->ch[k].slot;
        s->hi[s->n++] = w->ch[k].slot + w->ch[k].n;
    }
    if (w->phi > w->plo) {
        s->lo[s->n] = w->plo;
        s->hi[s->n++] = w->phi;
    }
    for (int i = 1; i < s->n; i++) /* insertion sort of at most three */
        for (int j = i; j > 0 && s->lo[j] < s->lo[j - 1]; j--) {
            size_t t = s->lo[j];
            s->lo[j] = s->lo[j - 1];
            s->lo[j - 1] = t;
            t = s->hi[j];
            s->hi[j] = s->hi[j - 1];
            s->hi[j - 1] = t;
        }
    int m = 0;
    for (int i = 0; i < s->n; i++) {
        if (m > 0 && s->lo[i] <= s->hi[m - 1]) {
            if (s->hi[i] > s->hi[m - 1])
                s->hi[m - 1] = s->hi[i];
            continue;
        }
        s->lo[m] = s->lo[i];
        s->hi[m++] = s->hi[i];
    }
    s->n = m;
}

/* The view's mapping count if layout `to` replaced layout `from` (same spans). */
static size_t vmas_between(const arena_view_t *v, const struct whatif *to, const struct whatif *from)
{
    struct spans s;
    spans_of(to, &s);
    size_t count = v->vmas;
    for (int i = 0; i < s.n; i++)
        count = count + breaks(to, s.lo[i], s.hi[i]) - breaks(from, s.lo[i], s.hi[i]);
    return count;
}

static size_t vmas_planned(const arena_view_t *v, const struct change *ch, int nch)
{
    struct whatif to = { .v = v, .ch = ch, .nch = nch }, from = { .v = v };
    return vmas_between(v, &to, &from);
}

/* After an operation (done or undone): the count of the table as it now is, from the
 * count before, knowing the changes' old values. */
static size_t vmas_after(const arena_view_t *v, size_t before, const struct change *ch, int nch)
{
    struct whatif now = { .v = v }, was = { .v = v, .ch = ch, .nch = nch, .old = true };
    struct spans s;
    spans_of(&was, &s);
    size_t count = before;
    for (int i = 0; i < s.n; i++)
        count = count + breaks(&now, s.lo[i], s.hi[i]) - breaks(&was, s.lo[i], s.hi[i]);
    return count;
}

static int budget_check(const arena_view_t *v, size_t planned)
{
    return planned > v->vmas ? arena__budget_check(&v->arena->budget, planned - v->vmas) : 0;
}

/* The view's mapping count is now n: the arena's budget follows. */
static void account(arena_view_t *v, size_t n)
{
    arena__budget_change(&v->arena->budget, v->vmas, n);
    v->vmas = n;
}

static void mark_broken(arena_view_t *v)
{
    v->broken = true;
    if (v->is_heap)
        arena__set_broken(v->arena, ARENA_EBROKEN);
}

/* ------------------------------------------------------------ slot writes -- */
static bool is_private(const arena_view_t *v)
{
    return (v->flags & ARENA_VIEW_PRIVATE) != 0;
}

static void slot_write(arena_view_t *v, size_t slot, uint32_t e)
{
    uint32_t old = v->slot_enc[slot];
    if (old && !e)
        v->shown--;
    else if (!old && e)
        v->shown++;
    if (e && slot + 1 > v->high)
        v->high = slot + 1;
    v->slot_enc[slot] = e;
}

static bool all_shown(const arena_view_t *v, size_t slot, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!v->slot_enc[slot + i])
            return false;
    return true;
}

/* Slots [slot, slot+n) show e, e-1, ... (consecutive file pages), or nothing when e is
 * 0: one call per run of equal slot protection. */
static int show_run(arena_view_t *v, size_t slot, size_t n, uint32_t e, int mover)
{
    const struct arena__backing *b = v->arena->backing;
    hook_remapping(v, slot, n);
    if (!e) {
        int err = arena__map_unmap(b, arena__view_slot_addr(v, slot), n);
        for (size_t i = 0; !err && i < n; i++)
            slot_write(v, slot + i, 0);
        return err;
    }
    for (size_t i = 0; i < n;) {
        int prot = arena__view_slot_prot(v, slot + i);
        size_t j = i + 1;
        while (j < n && arena__view_slot_prot(v, slot + j) == prot)
            j++;
        char *addr = arena__view_slot_addr(v, slot + i);
        uint32_t first = e - (uint32_t)i;
        int use = ARENA_MOVE_MMAP_FIXED;
        /* .req.map.remap-shared-only: remap_file_pages only where a shared file mapping already is. */
        if (mover == ARENA_MOVE_REMAP_FILE_PAGES && !(v->flags & ARENA_VIEW_PRIVATE) &&
            all_shown(v, slot + i, j - i))
            use = ARENA_MOVE_REMAP_FILE_PAGES;
        int err = arena__map_run(b, addr, ~first, j - i, prot, use, is_private(v));
        if (err == ARENA_EINVAL && use == ARENA_MOVE_REMAP_FILE_PAGES) /* mappings differ in flags */
            err = arena__map_run(b, addr, ~first, j - i, prot, ARENA_MOVE_MMAP_FIXED, is_private(v));
        if (err)
            return err;
        for (size_t k = i; k < j; k++)
            slot_write(v, slot + k, first - (uint32_t)(k - i));
        i = j;
    }
    return 0;
}

/* Make slots [slot, slot+n) show vals[] (.req.view.one-call-per-run: one run at a time). keep_going: put
 * back as much as possible (rollback), returning the first error. */
static int show_values(arena_view_t *v, size_t slot, const uint32_t *vals, size_t n, int mover, bool keep_going)
{
    int first_err = 0;
    for (size_t i = 0; i < n;) {
        if (vals[i] == v->slot_enc[slot + i]) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < n && vals[j] != v->slot_enc[slot + j] &&
               joins(vals[j - 1], arena__view_slot_prot(v, slot + j - 1), vals[j], arena__view_slot_prot(v, slot + j)))
            j++;
        int err = show_run(v, slot + i, j - i, vals[i], mover);
        if (err && !first_err)
            first_err = err;
        if (err && !keep_going)
            return err;
        i = j;
    }
    return first_err;
}

/* Does slot i show what slot i-1 shows, one page on, in one mapping (as it is now)? */
static bool joins_now(const arena_view_t *v, size_t i)
{
    return i > 0 && i < v->nslots &&
           joins(v->slot_enc[i - 1], arena__view_slot_prot(v, i - 1), v->slot_enc[i], arena__view_slot_prot(v, i));
}

/* The end of the run of want[] that starts at i (slots joined in one mapping). */
static size_t want_run(const arena_view_t *v, size_t lo, const uint32_t *want, size_t i, size_t n)
{
    size_t j = i + 1;
    while (j < n && joins(want[j - 1], arena__view_slot_prot(v, lo + j - 1), want[j], arena__view_slot_prot(v, lo + j)))
        j++;
    return j;
}

/* Map want[] (the old layout) into slots [lo, hi), which the undo has just unmapped: the
 * runs inside first (each one new mapping), then the two end runs, which may merge with
 * the neighbours outside. Every call then finds the process holding no more mappings than
 * the layout before the undo or the one after it. A refused call leaves the rest of the
 * range reserved again (best effort) and is returned. */
static int fill_hole(arena_view_t *v, size_t lo, size_t hi, const uint32_t *want)
{
    size_t n = hi - lo, head = want_run(v, lo, want, 0, n), tail = 0;
    for (size_t i = 0; i < n; i = want_run(v, lo, want, i, n))
        tail = i;
    int err = 0;
    for (size_t i = head; i < tail && !err;) {
        size_t j = want_run(v, lo, want, i, n);
        err = show_run(v, lo + i, j - i, want[i], ARENA_MOVE_MMAP_FIXED);
        i = j;
    }
    if (!err)
        err = show_run(v, lo, head, want[0], ARENA_MOVE_MMAP_FIXED);
    if (!err && tail >= head)
        err = show_run(v, lo + tail, n - tail, want[tail], ARENA_MOVE_MMAP_FIXED);
    for (size_t i = 0; err && i < n;) { /* no gap left where the table says "nothing" */
        size_t j = i + 1;
        while (j < n && !v->slot_enc[lo + i] == !v->slot_enc[lo + j])
            j++;
        if (!v->slot_enc[lo + i])
            (void)arena__map_unmap(v->arena->backing, arena__view_slot_addr(v, lo + i), j - i);
        i = j;
    }
    return err;
}

/* .req.view.all-or-nothing, .req.view.undo-frees-first: put slots [slot, slot+n) back to
 * oldv[]. At the process's mapping limit the kernel refuses every mmap, even one that would
 * lower the count, but not an munmap that splits nothing. So every stretch that differs is
 * widened to whole mappings (the view's table says where they end) and unmapped first;
 * only then are the old contents mapped into the gap. The gap lasts only for the undo.
 * A private view is not widened: its unchanged slots may hold copy-on-write contents. */
static int undo_change(arena_view_t *v, const struct change *c)
{
    int first_err = 0;
    for (size_t i = 0; i < c->n;) {
        if (v->slot_enc[c->slot + i] == c->oldv[i]) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < c->n && v->slot_enc[c->slot + j] != c->oldv[j])
            j++;
        size_t lo = c->slot + i, hi = c->slot + j;
        if (!is_private(v)) {
            while (joins_now(v, lo))
                lo--;
            while (joins_now(v, hi))
                hi++;
        }
        uint32_t *want = malloc((hi - lo) * sizeof *want);
        int err = want ? 0 : ARENA_ENOMEM;
        if (want) {
            for (size_t s = lo; s < hi; s++)
                want[s - lo] = s - c->slot < c->n ? c->oldv[s - c->slot] : v->slot_enc[s];
            hook_remapping(v, lo, hi - lo);
            err = arena__map_release(arena__view_slot_addr(v, lo), (hi - lo) * v->arena->page_size);
            if (!err) {
                for (size_t s = lo; s < hi; s++)
                    slot_write(v, s, 0);
                err = fill_hole(v, lo, hi, want);
            }
            free(want);
        }
        if (err && !first_err)
            first_err = err;
        i = j;
    }
    return first_err;
}

/* Every changed slot back to its old value. When the kernel refuses even that, the view
 * (the arena, for the heap's view) is marked broken: its table still says what each slot
 * shows, and every later call on it returns ARENA_EBROKEN. */
static void roll_back(arena_view_t *v, const struct change *ch, int nch)
{
    int err = 0;
    for (int k = nch - 1; k >= 0; k--) {
        int e = undo_change(v, &ch[k]);
        if (e && !err)
            err = e;
    }
    if (err)
        mark_broken(v);
}

/* err, or ARENA_EBROKEN when the undo after it failed. */
static int undone(const arena_view_t *v, int err)
{
    return err && v->broken ? ARENA_EBROKEN : err;
}

/* ---------------------------------------------------------- the set engine -- */
static void free_changes(struct change *ch, int nch)
{
    for (int k = 0; k < nch; k++) {
        free(ch[k].newv);
        free(ch[k].oldv);
    }
}

/* A change of n slots at slot with the old values filled in and newv allocated. */
static int change_init(const arena_view_t *v, struct change *c, size_t slot, size_t n)
{
    c->slot = slot;
    c->n = n;
    c->newv = malloc(n * sizeof *c->newv);
    c->oldv = malloc(n * sizeof *c->oldv);
    if (!c->newv || !c->oldv) {
        free(c->newv);
        free(c->oldv);
        c->newv = c->oldv = NULL;
        return ARENA_ENOMEM;
    }
    memcpy(c->oldv, v->slot_enc + slot, n * sizeof *c->oldv);
    return 0;
}

/* Budget check, show every change, roll back on error, recount. */
static int commit(arena_view_t *v, struct change *ch, int nch, int mover)
{
    size_t before = v->vmas;
    int err = budget_check(v, vmas_planned(v, ch, nch));
    if (err)
        return err;
    for (int k = 0; k < nch && !err; k++)
        err = show_values(v, ch[k].slot, ch[k].newv, ch[k].n, mover, false);
    if (err)
        roll_back(v, ch, nch);
    account(v, vmas_after(v, before, ch, nch));
    return undone(v, err);
}

static uint32_t encode(size_t file_page)
{
    return file_page == ARENA_NO_PAGE ? 0 : ~(uint32_t)file_page;
}

/* The new contents of a change: file_pages[i], or the run file_page + i when file_pages is
 * NULL (ARENA_NO_PAGE for nothing, either way). */
static void fill_new(struct change *c, const size_t *file_pages, size_t file_page, size_t n)
{
    for (size_t i = 0; i < n; i++)
        c->newv[i] = file_pages ? encode(file_pages[i])
                                : (file_page == ARENA_NO_PAGE ? 0 : encode(file_page + i));
}

static int set_pages(arena_view_t *v, size_t slot, const size_t *file_pages, size_t file_page, size_t n,
                     int mover)
{
    struct change c;
    if (n == 0)
        return 0;
    int err = change_init(v, &c, slot, n);
    if (err)
        return err;
    fill_new(&c, file_pages, file_page, n);
    err = commit(v, &c, 1, mover);
    free_changes(&c, 1);
    return err;
}

int arena__view_set(arena_view_t *v, size_t slot, const size_t *file_pages, size_t n, int mover)
{
    return set_pages(v, slot, file_pages, 0, n, mover);
}

int arena__view_set_run(arena_view_t *v, size_t slot, size_t file_page, size_t n, int mover)
{
    return set_pages(v, slot, NULL, file_page, n, mover);
}

/* Slots [slot, slot+n) show file pages file_page.. by moving the caller's mapping of
 * exactly those pages (at scratch: shared, the view's protection, populated) into place:
 * the page tables come along, so nothing refaults (.req.map.mremap-keeps-tables). When the move is not possible
 * the pages are mapped the ordinary way. The scratch mapping is gone either way. */
int arena__view_adopt_run(arena_view_t *v, size_t slot, size_t file_page, size_t n, char *scratch)
{
    size_t len = n * v->arena->page_size;
    bool plain = (v->flags & ARENA_VIEW_PRIVATE) || v->slot_prot != NULL || v->track != NULL ||
                 v->prot != (ARENA_PROT_READ | ARENA_PROT_WRITE);
    struct change c;
    int err = plain || n == 0 ? ARENA_ENOTSUP : change_init(v, &c, slot, n);
    if (err) {
        arena__os_munmap(scratch, len);
        return arena__view_set_run(v, slot, file_page, n, ARENA_MOVE_MMAP_FIXED);
    }
    for (size_t i = 0; i < n; i++)
        c.newv[i] = encode(file_page + i);
    size_t before = v->vmas;
    err = budget_check(v, vmas_planned(v, &c, 1));
    if (!err) {
        errno = 0;
        void *p = arena__os_mremap(scratch, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
                                   arena__view_slot_addr(v, slot));
        if (p == MAP_FAILED) {
            arena__os_munmap(scratch, len); /* still ours: the kernel changed nothing */
            err = show_values(v, slot, c.newv, n, ARENA_MOVE_MMAP_FIXED, false);
            if (err) {
                roll_back(v, &c, 1);
                err = undone(v, err);
            }
        } else {
            for (size_t i = 0; i < n; i++)
                slot_write(v, slot + i, c.newv[i]);
        }
        account(v, vmas_after(v, before, &c, 1));
    } else {
        arena__os_munmap(scratch, len);
    }
    free_changes(&c, 1);
    return err;
}

size_t arena__view_vmas_if(const arena_view_t *v, size_t slot, const size_t *file_pages, size_t file_page,
                           size_t n)
{
    struct change c;
    if (n == 0 || change_init(v, &c, slot, n))
        return v->vmas;
    fill_new(&c, file_pages, file_page, n);
    size_t planned = vmas_planned(v, &c, 1);
    free_changes(&c, 1);
    return planned;
}

/* ---------------------------------------------------------------- moving -- */
static bool have_mremap(void)
{
    return arena__map_have_dontunmap();
}

/* Slots [from, to) of the source run carried[] (what src showed): the longest stretch
 * from `from` that one system call can carry. */
static size_t carried_run(const arena_view_t *v, const uint32_t *carried, size_t src, size_t from, size_t n)
{
    size_t j = from + 1;
    while (j < n && joins(carried[j - 1], arena__view_slot_prot(v, src + j - 1), carried[j],
                          arena__view_slot_prot(v, src + j)))
        j++;
    return j;
}

/* Put the protection of dst slots back to their own where the moved mapping brought the
 * source's. */
static int fix_prot(arena_view_t *v, size_t dst, size_t src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int want = arena__view_slot_prot(v, dst + i);
        if (want == arena__view_slot_prot(v, src + i))
            continue;
        hook_remapping(v, dst + i, 1);
        int err = arena__map_protect(arena__view_slot_addr(v, dst + i), v->arena->page_size, want);
        if (err)
            return err;
    }
    return 0;
}

/* .req.map.mremap-keeps-tables: page tables move along. Runs go in the order that never overwrites a source
 * not yet moved: ascending when moving down, descending when moving up. */
static int move_by_mremap(arena_view_t *v, size_t dst, size_t src, const uint32_t *carried, size_t n)
{
    /* Run starts in ascending order, then walked in the needed direction. */
    size_t *starts = malloc((n + 1) * sizeof *starts);
    if (!starts)
        return ARENA_ENOMEM;
    size_t count = 0;
    for (size_t i = 0; i < n; i = carried_run(v, carried, src, i, n))
        starts[count++] = i;
    starts[count] = n;
    int err = 0;
    for (size_t r = 0; r < count && !err; r++) {
        size_t idx = dst < src ? r : count - 1 - r;
        size_t i = starts[idx], len = starts[idx + 1] - i;
        if (!carried[i]) {
            err = show_values(v, dst + i, carried + i, len, ARENA_MOVE_MMAP_FIXED, false);
            continue;
        }
        hook_remapping(v, dst + i, len);
        err = arena__map_mremap(v->arena->backing, arena__view_slot_addr(v, dst + i), arena__view_slot_addr(v, src + i),
                                    len);
        if (err == ARENA_EFAULT || err == ARENA_EINVAL) /* the source is split (tracking): map by file page */
            err = show_values(v, dst + i, carried + i, len, ARENA_MOVE_MMAP_FIXED, false);
        else if (!err) {
            for (size_t k = 0; k < len; k++)
                slot_write(v, dst + i + k, carried[i + k]);
            for (size_t k = 0; k < len; k++) {
                size_t s = src + i + k;
                if (s < dst + i || s >= dst + i + len)
                    slot_write(v, s, 0);
            }
            err = fix_prot(v, dst + i, src + i, len);
        }
    }
    free(starts);
    return err;
}

/* .req.view.copy-mover: fresh file pages for each source run, the bytes copied, shown at dst. The old pages
 * stay allocated: they belong to whoever allocated them (the heap frees its own). */
static int move_by_copy(arena_view_t *v, size_t dst, size_t src, uint32_t *carried, size_t n, size_t *fresh,
                        size_t *nfresh)
{
    for (size_t i = 0; i < n;) {
        size_t j = carried_run(v, carried, src, i, n);
        if (carried[i]) {
            size_t first;
            int err = arena__backing_alloc(v->arena->backing, j - i, &first);
            if (err)
                return err;
            fresh[2 * *nfresh] = first;
            fresh[2 * *nfresh + 1] = j - i;
            ++*nfresh;
            err = arena__map_copy(v->arena->backing, first, ~carried[i], j - i);
            if (err)
                return err;
            for (size_t k = i; k < j; k++)
                carried[k] = encode(first + (k - i));
        }
        i = j;
    }
    return show_values(v, dst, carried, n, ARENA_MOVE_MMAP_FIXED, false);
}

static int resolve_mover(const arena_view_t *v, int mover)
{
    if (mover == ARENA_MOVE_AUTO)
        mover = v->mover;
    if (mover == ARENA_MOVE_AUTO)
        mover = have_mremap() ? ARENA_MOVE_MREMAP : ARENA_MOVE_MMAP_FIXED;
    return mover;
}

int arena__view_move_run(arena_view_t *v, size_t dst, size_t src, size_t n, int mover)
{
    if (n == 0 || dst == src)
        return 0;
    mover = resolve_mover(v, mover);
    if (mover == ARENA_MOVE_MREMAP && !have_mremap())
        return ARENA_ENOTSUP;
    /* ch[0]: dst gets what src showed. ch[1]: what src keeps outside dst becomes empty. */
    struct change ch[2];
    int nch = 1;
    size_t lo = src, left = n;
    if (dst < src + n && src < dst + n) {
        lo = src < dst ? src : dst + n;
        left = src < dst ? dst - src : src - dst;
    }
    int err = change_init(v, &ch[0], dst, n);
    if (!err && (err = change_init(v, &ch[1], lo, left)) == 0)
        nch = 2;
    size_t *fresh = NULL, nfresh = 0;
    if (!err && mover == ARENA_MOVE_COPY && !(fresh = malloc(2 * n * sizeof *fresh)))
        err = ARENA_ENOMEM;
    if (err) {
        free_changes(ch, nch);
        return err;
    }
    memcpy(ch[0].newv, v->slot_enc + src, n * sizeof *ch[0].newv);
    memset(ch[1].newv, 0, left * sizeof *ch[1].newv);

    size_t before = v->vmas;
    err = budget_check(v, vmas_planned(v, ch, nch));
    if (!err) {
        uint32_t *carried = ch[0].newv;
        if (mover == ARENA_MOVE_MREMAP)
            err = move_by_mremap(v, dst, src, carried, n);
        else if (mover == ARENA_MOVE_COPY)
            err = move_by_copy(v, dst, src, carried, n, fresh, &nfresh);
        else
            err = show_values(v, dst, carried, n, mover, false);
        if (!err)
            err = show_values(v, ch[1].slot, ch[1].newv, left, ARENA_MOVE_MMAP_FIXED, false);
        if (err) {
            roll_back(v, ch, nch);
            err = undone(v, err);
            for (size_t f = 0; f < nfresh; f++)
                (void)arena__backing_free(v->arena->backing, fresh[2 * f], fresh[2 * f + 1]);
        }
        account(v, vmas_after(v, before, ch, nch));
    }
    if (!err)
        hook_moved(v, dst, src, n);
    free(fresh);
    free_changes(ch, nch);
    return err;
}

/* dst and src (not overlapping, each one run of consecutive file pages at one protection)
 * trade what they show by page-table moves (arena__map_swap). *swapped false with 0: dst
 * shows what src showed and src shows nothing, as after arena__view_move_run. */
int arena__view_swap_run(arena_view_t *v, size_t dst, size_t src, size_t n, bool *swapped)
{
    *swapped = false;
    if (n == 0 || dst + n > src)
        return ARENA_EINVAL;
    int prot = arena__view_slot_prot(v, dst);
    for (size_t i = 0; i < n; i++)
        if (!v->slot_enc[dst + i] || !v->slot_enc[src + i] || arena__view_slot_prot(v, dst + i) != prot ||
            arena__view_slot_prot(v, src + i) != prot)
            return ARENA_EINVAL;
    if (carried_run(v, v->slot_enc + dst, dst, 0, n) != n || carried_run(v, v->slot_enc + src, src, 0, n) != n)
        return ARENA_EINVAL;
    struct change ch[2];
    int err = change_init(v, &ch[0], dst, n);
    if (err)
        return err;
    if ((err = change_init(v, &ch[1], src, n)) != 0) {
        free_changes(ch, 1);
        return err;
    }
    memcpy(ch[0].newv, ch[1].oldv, n * sizeof *ch[0].newv);
    memcpy(ch[1].newv, ch[0].oldv, n * sizeof *ch[1].newv);
    size_t before = v->vmas;
    err = budget_check(v, vmas_planned(v, ch, 2));
    if (!err) {
        hook_remapping(v, dst, n);
        hook_remapping(v, src, n);
        err = arena__map_swap(v->arena->backing, arena__view_slot_addr(v, dst), arena__view_slot_addr(v, src), n,
                              swapped);
    }
    if (!err) {
        for (size_t k = 0; k < n; k++) {
            slot_write(v, dst + k, ch[0].newv[k]);
            slot_write(v, src + k, *swapped ? ch[1].newv[k] : 0);
        }
        account(v, vmas_after(v, before, ch, 2));
        hook_moved(v, dst, src, n);
    }
    free_changes(ch, 2);
    return err;
}

/* ------------------------------------------------------------- protection -- */
static int prot_valid(int prot)
{
    if (prot & ~(ARENA_PROT_READ | ARENA_PROT_WRITE | ARENA_PROT_EXEC))
        return ARENA_EPROT;
    if ((prot & ARENA_PROT_WRITE) && (prot & ARENA_PROT_EXEC))
        return ARENA_EPROT;
    return 0;
}

static int ensure_slot_prot(arena_view_t *v)
{
    if (v->slot_prot)
        return 0;
    void *p = arena__map_table(v->nslots);
    if (!p)
        return arena__os_error(ARENA_EIO);
    v->slot_prot = p;
    return 0;
}

/* mprotect the shown slots of [slot, slot+n) whose protection is not prots(i). */
static int protect_shown(arena_view_t *v, size_t slot, size_t n, const uint8_t *prots, int prot, bool keep_going)
{
    int first_err = 0;
    for (size_t i = 0; i < n;) {
        int want = prots ? prots[i] : prot;
        if (!v->slot_enc[slot + i] || arena__view_slot_prot(v, slot + i) == want) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < n && v->slot_enc[slot + j] && (prots ? prots[j] : prot) == want &&
               arena__view_slot_prot(v, slot + j) != want)
            j++;
        hook_remapping(v, slot + i, j - i);
        int err = arena__map_protect(arena__view_slot_addr(v, slot + i), (j - i) * v->arena->page_size, want);
        if (err) {
            if (!first_err)
                first_err = err;
            if (!keep_going)
                return first_err;
        } else {
            for (size_t k = i; k < j; k++)
                v->slot_prot[slot + k] = (uint8_t)(want ^ v->prot);
        }
        i = j;
    }
    return first_err;
}

int arena__view_protect(arena_view_t *v, size_t slot, size_t n, int prot)
{
    struct whatif to = { .v = v, .plo = slot, .phi = slot + n, .prot = prot }, from = { .v = v };
    int err = budget_check(v, vmas_between(v, &to, &from));
    if (err)
        return err;
    if (!v->slot_prot && prot == v->prot)
        return 0;
    if ((err = ensure_slot_prot(v)) != 0)
        return err;
    uint8_t *old = malloc(n);
    if (!old)
        return ARENA_ENOMEM;
    for (size_t i = 0; i < n; i++)
        old[i] = (uint8_t)arena__view_slot_prot(v, slot + i);
    struct whatif now = { .v = v };
    size_t before_vmas = v->vmas, before_breaks = breaks(&now, slot, slot + n);
    err = protect_shown(v, slot, n, NULL, prot, false);
    if (err) {
        if (protect_shown(v, slot, n, old, 0, true) != 0) {
            mark_broken(v);
            err = ARENA_EBROKEN;
        }
    } else {
        for (size_t i = 0; i < n; i++)
            v->slot_prot[slot + i] = (uint8_t)(prot ^ v->prot);
    }
    account(v, before_vmas + breaks(&now, slot, slot + n) - before_breaks);
    free(old);
    return err;
}

/* -------------------------------------------------------------- life cycle -- */
/* A table whose munmap is refused stays recorded, so arena__view_destroy tries again. */
static void release_tables(arena_view_t *v)
{
    if (v->slot_enc && arena__map_table_free(v->slot_enc, v->nslots * sizeof *v->slot_enc) == 0)
        v->slot_enc = NULL;
    if (v->slot_prot && arena__map_table_free(v->slot_prot, v->nslots) == 0)
        v->slot_prot = NULL;
}

/* Give the range back and mark closed; the struct stays for ECLOSED (.req.view.close-keeps-handle). If the kernel
 * refuses the munmap, the view stays open and whole and the error is returned (.req.fault.no-data-loss). */
static int view_close(arena_view_t *v)
{
    if (v->closed)
        return 0;
    hook_closing(v);
    if (v->base && arena__os_munmap(v->base, v->nslots * v->arena->page_size) != 0)
        return arena__os_error(ARENA_EIO);
    registry_remove(v);
    release_tables(v);
    v->closed = true;
    account(v, 0);
    v->shown = 0;
    return 0;
}

void arena__view_destroy(arena_view_t *v)
{
    if (!v)
        return;
    if (view_close(v) != 0) {
        /* Nothing more can be done for the range than leave it mapped. */
        registry_remove(v);
        v->closed = true;
        account(v, 0);
    }
    release_tables(v);
    arena_t *a = v->arena;
    for (arena_view_t **pp = &a->views; *pp; pp = &(*pp)->next)
        if (*pp == v) {
            *pp = v->next;
            break;
        }
    if (a->heap_view == v)
        a->heap_view = NULL;
    free(v);
}

static int fill_layout(arena_view_t *v)
{
    arena_t *a = v->arena;
    if (v->layout == ARENA_VIEW_LINEAR)
        return arena__view_set_run(v, 0, 0, v->nslots, ARENA_MOVE_MMAP_FIXED);
    if (v->layout != ARENA_VIEW_MIRROR || !a->heap_view)
        return 0;
    size_t n = a->heap_view->high < v->nslots ? a->heap_view->high : v->nslots;
    if (n == 0)
        return 0;
    struct change c;
    int err = change_init(v, &c, 0, n);
    if (err)
        return err;
    memcpy(c.newv, a->heap_view->slot_enc, n * sizeof *c.newv);
    err = commit(v, &c, 1, ARENA_MOVE_MMAP_FIXED);
    free_changes(&c, 1);
    return err;
}

int arena__view_create(arena_t *a, int layout, size_t nslots, int prot, int flags, bool is_heap,
                       arena_view_t **out)
{
    if (nslots == 0 || nslots >= UINT32_MAX || nslots > SIZE_MAX / a->page_size)
        return ARENA_ESIZE;
    int err = arena__budget_check(&a->budget, 1);
    if (err)
        return err;
    arena_view_t *v = calloc(1, sizeof *v);
    if (!v)
        return ARENA_ENOMEM;
    v->arena = a;
    v->nslots = nslots;
    v->layout = layout;
    v->prot = prot;
    v->flags = flags;
    v->is_heap = is_heap;
    v->mover = a->cfg.mover;
    if ((flags & ARENA_VIEW_PRIVATE) && v->mover == ARENA_MOVE_REMAP_FILE_PAGES)
        v->mover = ARENA_MOVE_MMAP_FIXED;
    v->base = arena__os_reserve(nslots * a->page_size, ARENA__2M);
    v->slot_enc = arena__map_table(nslots * sizeof *v->slot_enc);
    if (!v->base || !v->slot_enc) {
        err = arena__os_error(ARENA_ENOMEM);
        if (v->base)
            arena__os_munmap(v->base, nslots * a->page_size);
        release_tables(v);
        free(v);
        return err;
    }
    account(v, 1);
    v->next = a->views;
    a->views = v;
    err = registry_add(v);
    if (!err)
        err = fill_layout(v);
    if (err) {
        arena__view_destroy(v);
        return err;
    }
    *out = v;
    return 0;
}

/* ------------------------------------------------------------- re-backing -- */
void arena__view_populate(arena_view_t *v, size_t slot, size_t n)
{
    arena__map_populate(arena__view_slot_addr(v, slot), n * v->arena->page_size);
}

/* A private view's pages may hold its own copy-on-write contents: keep them, whatever the
 * slots' protection (a slot protected NONE still holds its contents) and whatever tracking
 * armed (ACCESS tracking leaves armed pages PROT_NONE): the run is made readable to copy it. */
static int remap_private_run(arena_view_t *v, const struct arena__backing *b, size_t slot, size_t page, size_t n,
                             int prot)
{
    char *addr = arena__view_slot_addr(v, slot);
    size_t len = n * v->arena->page_size;
    void *saved = malloc(len);
    if (!saved)
        return ARENA_ENOMEM;
    int err = arena__map_protect(addr, len, ARENA_PROT_READ);
    if (err) {
        free(saved);
        return err;
    }
    memcpy(saved, addr, len);
    err = arena__map_run(b, addr, page, n, ARENA_PROT_READ | ARENA_PROT_WRITE, ARENA_MOVE_MMAP_FIXED, true);
    if (!err)
        memcpy(addr, saved, len);
    free(saved);
    int perr = arena__map_protect(addr, len, prot);
    return err ? err : perr;
}

/* Every run the view accounts (maximal runs of slots showing consecutive file pages with
 * one protection) that starts before slot `end` is mapped from b at the same address;
 * *stop gets the slot where a refusal stopped the walk (end when none did). The mapping
 * count does not change: the same runs, of one file, with the same protections. */
static int remap_runs(arena_view_t *v, const struct arena__backing *b, size_t end, size_t *stop)
{
    size_t slot = 0, lim = arena__view_used_end(v);
    int err = 0;
    if (end > lim)
        end = lim;
    while (slot < end && !err) {
        size_t page = arena__view_page(v, slot), n = 1;
        if (page == ARENA_NO_PAGE) {
            slot++;
            continue;
        }
        int prot = arena__view_slot_prot(v, slot);
        while (slot + n < lim && arena__view_page(v, slot + n) == page + n && arena__view_slot_prot(v, slot + n) == prot)
            n++;
        if (is_private(v))
            err = remap_private_run(v, b, slot, page, n, prot);
        else
            err = arena__map_run(b, arena__view_slot_addr(v, slot), page, n, prot, ARENA_MOVE_MMAP_FIXED, false);
        if (!err)
            slot += n;
    }
    *stop = err ? slot : end;
    return err;
}

int arena__view_reback(arena_view_t *v, const struct arena__backing *twin)
{
    if (v->closed || !v->slot_enc)
        return 0;
    size_t stop;
    int err = remap_runs(v, twin, v->nslots, &stop);
    if (err) {
        size_t ignored;
        (void)remap_runs(v, v->arena->backing, stop + 1, &ignored); /* .req.view.all-or-nothing */
    }
    return err;
}

int arena__view_reback_undo(arena_view_t *v)
{
    if (v->closed || !v->slot_enc)
        return 0;
    size_t ignored;
    return remap_runs(v, v->arena->backing, v->nslots, &ignored);
}

/* ------------------------------------------------------------- public API -- */
static int check_view(const arena_view_t *v, bool may_be_heap)
{
    if (!v)
        return ARENA_ENULL;
    if (v->closed)
        return ARENA_ECLOSED;
    int err = arena__callable(v->arena);
    if (err)
        return err;
    if (v->broken)
        return ARENA_EBROKEN;
    if (v->is_heap && !may_be_heap)
        return ARENA_EHEAP;
    return 0;
}

static int check_slots(const arena_view_t *v, size_t slot, size_t n)
{
    if (n == 0)
        return ARENA_ESIZE;
    return (slot >= v->nslots || n > v->nslots - slot) ? ARENA_ERANGE : 0;
}

static int check_file_pages(const arena_t *a, size_t first, size_t n)
{
    return arena__backing_check_used(a->backing, first, n);
}

int arena_view_open(arena_t *a, int layout, size_t nslots, int prot, int flags, arena_view_t **out)
{
    if (!a || !out)
        return ARENA_ENULL;
    *out = NULL;
    int err = arena__callable(a);
    if (err)
        return err;
    err = prot_valid(prot);
    if (err)
        return err;
    if (layout < ARENA_VIEW_EMPTY || layout > ARENA_VIEW_MIRROR || (flags & ~ARENA_VIEW_PRIVATE))
        return ARENA_ECONFIG;
    pthread_mutex_lock(&a->lock);
    if (layout == ARENA_VIEW_MIRROR && nslots == 0 && a->heap_view)
        nslots = a->heap_view->nslots;
    if (nslots == 0)
        err = ARENA_ESIZE;
    else if (layout == ARENA_VIEW_LINEAR)
        err = check_file_pages(a, 0, nslots);
    if (!err)
        err = arena__view_create(a, layout, nslots, prot, flags, false, out);
    pthread_mutex_unlock(&a->lock);
    return err;
}

int arena_view_close(arena_view_t *v)
{
    int err = check_view(v, false);
    if (err)
        return err;
    pthread_mutex_lock(&v->arena->lock);
    err = view_close(v);
    pthread_mutex_unlock(&v->arena->lock);
    return err;
}

arena_view_t *arena_heap_view(arena_t *a)
{
    return a ? a->heap_view : NULL;
}

void *arena_view_base(const arena_view_t *v)
{
    return v && !v->closed ? v->base : NULL;
}

size_t arena_view_slots(const arena_view_t *v)
{
    return v && !v->closed ? v->nslots : 0;
}

int arena_view_prot(const arena_view_t *v)
{
    return v ? v->prot : ARENA_PROT_NONE;
}

size_t arena_view_vmas(const arena_view_t *v)
{
    return v && !v->closed ? v->vmas : 0;
}

size_t arena_view_file_page(const arena_view_t *v, size_t slot)
{
    if (!v || v->closed || slot >= v->nslots)
        return ARENA_NO_PAGE;
    return arena__view_page(v, slot);
}

void *arena_view_addr(const arena_view_t *v, const void *heap_ptr)
{
    if (!v || v->closed || v->layout != ARENA_VIEW_MIRROR || v->out_of_step || !v->arena->heap_view)
        return NULL;
    const arena_view_t *h = v->arena->heap_view;
    uintptr_t off = (uintptr_t)heap_ptr - (uintptr_t)h->base;
    size_t n = v->nslots < h->nslots ? v->nslots : h->nslots;
    return off < n * v->arena->page_size ? v->base + off : NULL;
}

int arena_view_set_mover(arena_view_t *v, int mover)
{
    int err = check_view(v, false);
    if (err)
        return err;
    if (mover < ARENA_MOVE_AUTO || mover > ARENA_MOVE_COPY)
        return ARENA_ECONFIG;
    if (mover == ARENA_MOVE_REMAP_FILE_PAGES && (v->flags & ARENA_VIEW_PRIVATE))
        return ARENA_EPRIVATE;
    if (mover == ARENA_MOVE_MREMAP && !have_mremap())
        return ARENA_ENOTSUP;
    pthread_mutex_lock(&v->arena->lock);
    v->mover = mover;
    pthread_mutex_unlock(&v->arena->lock);
    return 0;
}

/* The primitive for establishing slots: the moving ones have nothing to move there. */
static int set_mover(const arena_view_t *v)
{
    return v->mover == ARENA_MOVE_REMAP_FILE_PAGES ? ARENA_MOVE_REMAP_FILE_PAGES : ARENA_MOVE_MMAP_FIXED;
}

int arena_view_map(arena_view_t *v, size_t slot, size_t file_page, size_t npages)
{
    int err = check_view(v, false);
    if (!err)
        err = check_slots(v, slot, npages);
    if (err)
        return err;
    pthread_mutex_lock(&v->arena->lock);
    err = check_file_pages(v->arena, file_page, npages);
    if (!err)
        err = arena__view_set_run(v, slot, file_page, npages, set_mover(v));
    pthread_mutex_unlock(&v->arena->lock);
    return err;
}

int arena_view_unmap(arena_view_t *v, size_t slot, size_t npages)
{
    int err = check_view(v, false);
    if (!err)
        err = check_slots(v, slot, npages);
    if (err)
        return err;
    pthread_mutex_lock(&v->arena->lock);
    err = arena__view_set_run(v, slot, ARENA_NO_PAGE, npages, ARENA_MOVE_MMAP_FIXED);
    pthread_mutex_unlock(&v->arena->lock);
    return err;
}

int arena_view_apply(arena_view_t *v, size_t first, const size_t *file_pages, size_t n)
{
    int err = check_view(v, false);
    if (!err && !file_pages)
        err = ARENA_ENULL;
    if (!err)
        err = check_slots(v, first, n);
    if (err)
        return err;
    pthread_mutex_lock(&v->arena->lock);
    for (size_t i = 0; i < n && !err; i++)
        if (file_pages[i] != ARENA_NO_PAGE)
            err = check_file_pages(v->arena, file_pages[i], 1);
    if (!err)
        err = arena__view_set(v, first, file_pages, n, set_mover(v));
    pthread_mutex_unlock(&v->arena->lock);
    return err;
}

int arena_view_move(arena_view_t *v, size_t dst, size_t src, size_t npages)
{
    int err = check_view(v, false);
    if (!err)
        err = check_slots(v, dst, npages);
    if (!err)
        err = check_slots(v, src, npages);
    if (err)
        return err;
    pthread_mutex_lock(&v->arena->lock);
    err = arena__view_move_run(v, dst, src, npages, v->mover);
    pthread_mutex_unlock(&v->arena->lock);
    return err;
}

int arena_view_protect(arena_view_t *v, size_t slot, size_t npages, int prot)
{
    int err = check_view(v, false);
    if (!err)
        err = prot_valid(prot);
    if (!err)
        err = check_slots(v, slot, npages);
    if (err)
        return err;
    pthread_mutex_lock(&v->arena->lock);
    err = arena__view_protect(v, slot, npages, prot);
    pthread_mutex_unlock(&v->arena->lock);
    return err;
}
