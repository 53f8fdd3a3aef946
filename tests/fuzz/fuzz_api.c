/*
 * fuzz_api.c -- libFuzzer target: the input bytes are decoded into a sequence of public
 * API calls (docs/design.md §9, .req.fault.fuzz), valid and invalid mixed, against a model of the live
 * objects with their contents. Any crash, sanitizer report or model mismatch (trapped) is a
 * bug. With fault injection compiled in (ARENA_FAULT_INJECTION) the input also makes system
 * calls fail, and the model must still hold.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"
#ifdef ARENA_FAULT_INJECTION
#include "os.h"
#endif

#define MAX_OBJS 48
#define MAX_VIEWS 4
#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "fuzz_api: %s:%d: %s\n", __FILE__, __LINE__, #cond);              \
            __builtin_trap();                                                                \
        }                                                                                    \
    } while (0)

struct input {
    const uint8_t *p;
    size_t n;
};

static unsigned take8(struct input *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static size_t take16(struct input *in)
{
    return take8(in) | (size_t)take8(in) << 8;
}

/* A slot, page or count: mostly small, sometimes at the edges. */
static size_t take_index(struct input *in)
{
    unsigned k = take8(in);
    if (k < 200)
        return k % 24;
    if (k < 230)
        return take16(in);
    static const size_t edges[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX / 2, (size_t)1 << 32,
                                   (size_t)UINT32_MAX, 4096};
    return edges[k % (sizeof edges / sizeof edges[0])];
}

struct obj {
    char *p;
    size_t size;
    uint8_t seed;
    bool marked, pinned;
};

struct model {
    arena_t *a;
    arena_view_t *mirror;
    struct obj objs[MAX_OBJS];
    size_t nobjs;
    arena_view_t *views[MAX_VIEWS];
    size_t own_first, own_pages; /* file pages from arena_file_alloc, 0 pages = none */
    bool faults;                 /* a system call failure was armed */
};

static bool is_code(int err)
{
    return err == 0 || (err < 0 && err > ARENA_ELIBRARY) || (err <= ARENA_ENULL && err >= ARENA_EBROKEN);
}

static void fill(struct obj *o)
{
    for (size_t i = 0; i < o->size; i++)
        o->p[i] = (char)(o->seed + i * 13 + (i >> 9));
}

static void verify(const struct model *m, const struct obj *o, const char *p)
{
    CHECK(arena_object(m->a, o->p) == o->p);
    CHECK(arena_object_size(m->a, o->p) >= o->size);
    for (size_t i = 0; i < o->size; i++)
        CHECK(p[i] == (char)(o->seed + i * 13 + (i >> 9)));
}

static void verify_all(const struct model *m)
{
    for (size_t i = 0; i < m->nobjs; i++) {
        verify(m, &m->objs[i], m->objs[i].p);
        if (m->mirror != NULL) {
            char *mp = arena_view_addr(m->mirror, m->objs[i].p);
            /* A mirror that a refused system call left out of step answers NULL until a
             * later collection brings it back (arena.h); never without a fault. */
            CHECK(mp != NULL || m->faults);
            if (mp != NULL)
                verify(m, &m->objs[i], mp);
        }
    }
}

static void op_alloc(struct model *m, struct input *in)
{
    unsigned k = take8(in);
    size_t size = k < 240 ? (k & 0x7f) * 8 : take16(in) * (k & 3 ? 1 : 4);
    errno = 0;
    char *p = arena_alloc(m->a, size);
    if (size == 0) {
        CHECK(p == NULL && errno == EINVAL);
        return;
    }
    if (p == NULL) {
        /* With a system call failing on purpose, its errno may come through. A size past
         * the reservation is EINVAL (arena.h). */
        int e = errno;
        arena_stats_t st;
        bool too_big = arena_stats(m->a, &st) == 0 && size > st.reserve;
        CHECK(e == ENOMEM || e == ENOSPC || (e == EINVAL && too_big) || (m->faults && e > 0));
        return;
    }
    CHECK(((uintptr_t)p & 15) == 0);
    for (size_t i = 0; i < size; i++)
        CHECK(p[i] == 0);
    if (m->nobjs == MAX_OBJS)
        return; /* unrecorded: garbage at the next collection */
    struct obj *o = &m->objs[m->nobjs++];
    *o = (struct obj){p, size, (uint8_t)take8(in), false, false};
    fill(o);
}

static void op_mark(struct model *m, struct input *in, bool pin)
{
    if (m->nobjs == 0)
        return;
    struct obj *o = &m->objs[take8(in) % m->nobjs];
    size_t off = o->size ? take16(in) % o->size : 0;
    CHECK((pin ? arena_pin(m->a, o->p + off) : arena_mark(m->a, o->p + off)) == 0);
    if (pin)
        o->pinned = true;
    else
        o->marked = true;
}

static void op_collect(struct model *m)
{
    int err = arena_collect(m->a, NULL);
    CHECK(is_code(err > 0 ? -err : err)); /* > 0: completed, met that kernel error */
    size_t kept = 0;
    for (size_t i = 0; i < m->nobjs; i++) {
        struct obj o = m->objs[i];
        char *to = arena_forward(m->a, o.p);
        if (!o.marked && !o.pinned) {
            if (err == 0)
                CHECK(to == NULL);
            continue;
        }
        CHECK(to != NULL);
        if (o.pinned)
            CHECK(to == o.p);
        o.p = to;
        o.marked = o.pinned = false;
        m->objs[kept++] = o;
    }
    m->nobjs = kept;
    verify_all(m);
}

static void op_write(struct model *m, struct input *in)
{
    if (m->nobjs == 0)
        return;
    struct obj *o = &m->objs[take8(in) % m->nobjs];
    o->seed = (uint8_t)take8(in);
    fill(o);
}

static void op_query(struct model *m, struct input *in)
{
    static char outside[64];
    char *heap = arena_view_base(arena_heap_view(m->a));
    size_t ps = arena_page_size(m->a);
    const char *p;
    switch (take8(in) % 4) {
    case 0: p = outside + take8(in) % 64; break;
    case 1: p = heap + take16(in) * 16 % (64 * ps); break;
    case 2: p = m->nobjs ? m->objs[take8(in) % m->nobjs].p + take16(in) % 4096 : heap; break;
    default: p = (const char *)(uintptr_t)take16(in); break;
    }
    char *obj = arena_object(m->a, p);
    if (obj != NULL) {
        size_t size = arena_object_size(m->a, obj);
        CHECK(size > 0 && p >= obj && p < obj + size);
        CHECK(arena_contains(m->a, obj));
    }
    if (!arena_contains(m->a, p)) {
        CHECK(obj == NULL);
        CHECK(arena_mark(m->a, p) == (p == NULL ? ARENA_ENULL : ARENA_EFOREIGN));
        CHECK(arena_forward(m->a, p) == p);
    } else if (obj == NULL) {
        CHECK(arena_mark(m->a, p) == ARENA_ENOTOBJ);
    }
}

static arena_view_t **pick_view(struct model *m, struct input *in)
{
    return &m->views[take8(in) % MAX_VIEWS];
}

static void op_view_open(struct model *m, struct input *in)
{
    arena_view_t **slot = pick_view(m, in);
    int layout = take8(in) % 4, prot = take8(in) % 9, flags = take8(in) % 3;
    size_t nslots = take_index(in);
    if (*slot != NULL) {
        int err = arena_view_close(*slot);
        CHECK(err == 0 || (m->faults && is_code(err)));
    }
    *slot = NULL;
    /* Writable views of heap pages would corrupt the model: this target only writes through
     * the heap and its pages from arena_file_alloc. */
    if (layout == ARENA_VIEW_LINEAR || layout == ARENA_VIEW_MIRROR)
        prot &= ~ARENA_PROT_WRITE;
    arena_view_t *v = NULL;
    int err = arena_view_open(m->a, layout, nslots, prot, flags, &v);
    CHECK(is_code(err));
    if ((prot & ARENA_PROT_WRITE) && (prot & ARENA_PROT_EXEC))
        CHECK(err == ARENA_EPROT);
    if (err == 0) {
        CHECK(v != NULL);
        CHECK(arena_view_slots(v) > 0);
        *slot = v;
    }
}

static void op_view_change(struct model *m, struct input *in)
{
    arena_view_t *v = *pick_view(m, in);
    if (v == NULL)
        v = take8(in) & 1 ? arena_heap_view(m->a) : NULL;
    unsigned what = take8(in) % 5;
    size_t slot = take_index(in), n = take_index(in);
    size_t page = m->own_pages ? m->own_first + take_index(in) % (m->own_pages + 2) : take_index(in);
    int err = 0;
    switch (what) {
    case 0: err = arena_view_map(v, slot, page, n); break;
    case 1: err = arena_view_unmap(v, slot, n); break;
    case 2: {
        size_t table[8];
        n %= 9;
        for (size_t i = 0; i < n; i++)
            table[i] = take8(in) & 1 ? ARENA_NO_PAGE : page + i;
        err = arena_view_apply(v, slot, table, n);
        break;
    }
    case 3: err = arena_view_move(v, slot, take_index(in), n); break;
    default: err = arena_view_protect(v, slot, n, take8(in) % 9); break;
    }
    CHECK(is_code(err));
    if (v == NULL)
        CHECK(err == ARENA_ENULL);
    if (v != NULL && v == arena_heap_view(m->a))
        CHECK(err != 0);
    if (err == 0 && v != NULL && what == 0)
        for (size_t i = 0; i < n; i++)
            CHECK(arena_view_file_page(v, slot + i) == page + i);
}

static void op_file(struct model *m, struct input *in)
{
    if (m->own_pages == 0) {
        size_t n = 1 + take8(in) % 8, first = 0;
        int err = arena_file_alloc(m->a, n, &first);
        CHECK(is_code(err));
        if (err == 0) {
            m->own_first = first;
            m->own_pages = n;
        }
        return;
    }
    /* Views must stop showing the pages first: close them all. */
    for (size_t i = 0; i < MAX_VIEWS; i++) {
        if (m->views[i] != NULL) {
            int err = arena_view_close(m->views[i]);
            CHECK(err == 0 || (m->faults && is_code(err)));
        }
        m->views[i] = NULL; /* left open on error: arena_destroy closes it */
    }
    int err = arena_file_free(m->a, m->own_first, m->own_pages);
    CHECK(err == 0 || (m->faults && is_code(err)));
    if (err == 0)
        CHECK(arena_file_free(m->a, m->own_first, m->own_pages) == ARENA_ERANGE);
    m->own_pages = 0;
}

static void op_track(struct model *m, struct input *in)
{
    arena_view_t *h = arena_heap_view(m->a);
    void *pages[16];
    size_t count = 0;
    int err;
    switch (take8(in) % 3) {
    case 0: err = arena_track_start(h, 1 + take8(in) % 3); break;
    case 1: err = arena_track_take(h, pages, take8(in) % 17, &count); CHECK(count <= 16); break;
    default: err = arena_track_stop(h); break;
    }
    CHECK(is_code(err));
}

static void op_fault(struct model *m, struct input *in)
{
    m->faults = true;
#ifdef ARENA_FAULT_INJECTION
    static const int errs[] = {ENOMEM, ENOSPC, EPERM, EINVAL, EAGAIN};
    arena__fault_arm(take8(in) % ARENA_SYS_COUNT, 1 + take8(in) % 6, errs[take8(in) % 5]);
#else
    (void)in;
#endif
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size};
    struct model m = {0};
    arena_config_t cfg;
#ifdef ARENA_FAULT_INJECTION
    arena__fault_disarm_all();
#endif
    arena_config_init(&cfg);
    cfg.reserve = (size_t)16 << 20;
    cfg.copy_below = take8(&in) % 4;
    cfg.mover = take8(&in) % 5;
    cfg.vma_budget = take8(&in) & 1 ? 0 : 64 + take8(&in);
    if (arena_create(&m.a, &cfg) != 0)
        return 0;
    if (take8(&in) & 1)
        CHECK(arena_view_open(m.a, ARENA_VIEW_MIRROR, 0, ARENA_PROT_READ, 0, &m.mirror) == 0);
    while (in.n > 0) {
        switch (take8(&in) % 14) {
        case 0: case 1: case 2: op_alloc(&m, &in); break;
        case 3: case 4: op_mark(&m, &in, false); break;
        case 5: op_mark(&m, &in, true); break;
        case 6: op_collect(&m); break;
        case 7: op_write(&m, &in); break;
        case 8: op_query(&m, &in); break;
        case 9: op_view_open(&m, &in); break;
        case 10: op_view_change(&m, &in); break;
        case 11: op_file(&m, &in); break;
        case 12: op_track(&m, &in); break;
        default: op_fault(&m, &in); break;
        }
    }
#ifdef ARENA_FAULT_INJECTION
    arena__fault_disarm_all();
#endif
    verify_all(&m);
    arena_destroy(m.a);
    return 0;
}
