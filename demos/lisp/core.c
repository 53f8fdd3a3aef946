/*
 * core.c -- the root stack, allocation, interned symbols, errors.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lisp.h"

struct lisp L;

void roots_grow(void)
{
    size_t cap = L.roots_cap ? 2 * L.roots_cap : 4096;
    val **r = realloc(L.roots, cap * sizeof *r);
    size_t *f = r ? realloc(L.root_frame, cap * sizeof *f) : NULL;
    if (!r || !f) {
        fprintf(stderr, "arena-lisp: out of memory for the root stack\n");
        exit(1);
    }
    L.roots = r;
    L.root_frame = f;
    L.roots_cap = cap;
}

void lisp_roots_mark_broken(void)
{
    fprintf(stderr, "arena-lisp: the root stack was cut to %zu entries without roots_restore "
                    "(mark %zu): a young collection would miss changed roots\n", L.nroots, L.roots_low);
    abort();
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void lisp_gc(size_t need)
{
    uint64_t t0 = now_ns();
    int rc = L.heap->collect(need);
    uint64_t dt = now_ns() - t0;
    L.gc_ns += dt;
    L.gcs++;
    if (L.verbose_gc)
        fprintf(stderr, "gc %llu (%s): %.3f ms, %.1f MiB allocated so far\n", (unsigned long long)L.gcs,
                L.heap->name, (double)dt / 1e6, (double)L.bytes_allocated / (1 << 20));
    if (rc != 0)
        lisp_error("out of memory (collection could not make room for %zu bytes)", need);
}

obj *alloc_obj(int type, size_t count)
{
    /* Checked before the size is computed, which would overflow for a huge count. */
    if (count > LISP_MAX_OBJECT || obj_bytes_for(type, count) > LISP_MAX_OBJECT)
        lisp_error("an object of %zu elements is larger than the limit of %d MiB", count,
                   LISP_MAX_OBJECT >> 20);
    size_t bytes = obj_bytes_for(type, count);
    void *p = NULL;
    /* --gc-stress=N collects every N allocations: a rooting mistake then shows up
     * at once instead of in one run out of a thousand. */
    if (!L.stress || ++L.stress_count % L.stress != 0)
        p = L.heap->alloc(bytes);
    if (!p) {
        lisp_gc(bytes);
        p = L.heap->alloc(bytes);
        if (!p)
            lisp_error("out of memory allocating %zu bytes", bytes);
    }
    L.bytes_allocated += bytes;
    obj *o = p;
    o->hdr = HDR(type, count);
    return o;
}

val cons(val a, val d)
{
    GC_BEGIN;
    ROOT(a);
    ROOT(d);
    obj *o = alloc_obj(T_PAIR, 2);
    o->f[0] = a;
    o->f[1] = d;
    GC_END;
    return (val)o;
}

val list2(val a, val b)
{
    GC_BEGIN;
    ROOT(a);
    val tail = cons(b, NIL);
    ROOT(tail);
    GC_RETURN(cons(a, tail));
}

val make_string(const char *s, size_t n)
{
    /* s must not point into the heap: the allocation may move it. Callers copying a
     * heap string pass NULL and copy from their rooted value afterwards. */
    obj *o = alloc_obj(T_STRING, n);
    if (s)
        memcpy(STR_CHARS((val)o), s, n);
    else
        memset(STR_CHARS((val)o), ' ', n);
    STR_CHARS((val)o)[n] = 0;
    return (val)o;
}

val make_flonum(double d)
{
    obj *o = alloc_obj(T_FLONUM, 0);
    FLO((val)o) = d;
    return (val)o;
}

val make_vector(size_t n, val fill)
{
    GC_BEGIN;
    ROOT(fill);
    obj *o = alloc_obj(T_VECTOR, n);
    for (size_t i = 0; i < n; i++)
        o->f[i] = fill;
    GC_END;
    return (val)o;
}

static uint64_t hash_name(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return h;
}

static void symtab_grow(void)
{
    size_t cap = L.symcap ? 2 * L.symcap : 1024;
    val *t = calloc(cap, sizeof *t);
    if (!t) {
        fprintf(stderr, "arena-lisp: out of memory for the symbol table\n");
        exit(1);
    }
    for (size_t i = 0; i < L.symcap; i++) {
        val s = L.symtab[i];
        if (!s)
            continue;
        size_t j = hash_name(SYM_NAME(s), COUNT(s)) & (cap - 1);
        while (t[j])
            j = (j + 1) & (cap - 1);
        t[j] = s;
    }
    free(L.symtab);
    L.symtab = t;
    L.symcap = cap;
    L.fresh_all = 1; /* the fresh slots moved */
}

val intern(const char *name)
{
    size_t n = strlen(name);
    if (2 * (L.nsyms + 1) > L.symcap)
        symtab_grow();
    size_t j = hash_name(name, n) & (L.symcap - 1);
    for (; L.symtab[j]; j = (j + 1) & (L.symcap - 1)) {
        val s = L.symtab[j];
        if (COUNT(s) == n && memcmp(SYM_NAME(s), name, n) == 0)
            return s;
    }
    /* name may live in the heap (string->symbol): copy it out before allocating. */
    char buf[256], *copy = n < sizeof buf ? buf : malloc(n + 1);
    if (!copy)
        lisp_error("out of memory");
    memcpy(copy, name, n + 1);
    obj *o = alloc_obj(T_SYMBOL, n);
    int id = special_id(copy);
    o->hdr |= (uint64_t)id << 16;
    o->f[0] = UNBOUND;
    memcpy(SYM_NAME((val)o), copy, n + 1);
    if (copy != buf)
        free(copy);
    /* The allocation may have collected, which never changes the table's shape, but
     * find the free slot again to be independent of that. */
    j = hash_name(SYM_NAME((val)o), n) & (L.symcap - 1);
    while (L.symtab[j])
        j = (j + 1) & (L.symcap - 1);
    L.symtab[j] = (val)o;
    L.nsyms++;
    if (L.nfresh < sizeof L.fresh / sizeof *L.fresh)
        L.fresh[L.nfresh++] = j;
    else
        L.fresh_all = 1;
    return (val)o;
}

static void error_prefix(void)
{
    fflush(stdout); /* the program's output so far comes before the message */
    fputs("error: ", stderr);
    if (L.who)
        fprintf(stderr, "%s: ", L.who);
}

_Noreturn void lisp_raise(void)
{
    longjmp(*L.on_error, 1);
}

_Noreturn void lisp_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_prefix();
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    lisp_raise();
}

_Noreturn void lisp_error_val(val v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_prefix();
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    print_brief(stderr, v, 40);
    fputc('\n', stderr);
    lisp_raise();
}

_Noreturn void lisp_type_error(const char *what, val v)
{
    lisp_error_val(v, "%s expected, got ", what);
}

/* Floyd's cycle finding (Knuth, TAOCP vol. 2, 3.1 ex. 6): slow advances one pair for
 * every two that l does, so inside a cycle l catches up with it within two laps. */
intptr_t list_count(val l)
{
    val slow = l;
    intptr_t n = 0;
    while (PAIR_P(l)) {
        l = cdr(l);
        n++;
        if ((n & 1) == 0) {
            slow = cdr(slow);
            if (slow == l)
                return LIST_CIRCULAR;
        }
    }
    return l == NIL ? n : LIST_IMPROPER;
}

size_t list_length(val l)
{
    intptr_t n = list_count(l);
    if (n == LIST_CIRCULAR)
        lisp_error("circular list");
    if (n == LIST_IMPROPER)
        lisp_type_error("proper list", l);
    return (size_t)n;
}
