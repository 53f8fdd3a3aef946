/*
 * lisp.h -- a small Scheme whose every object lives in a garbage-collected heap.
 *
 * The interpreter is written for a precise, moving collector: every value a C
 * function holds across an allocation sits in a local registered on the root stack
 * (ROOT()), so a collection can find it and overwrite it with the object's new
 * address. Objects carry a one-word header that says which of their words are
 * values, so a collector can trace any object without knowing Scheme.
 *
 * The heap itself is behind struct heap_backend: a semispace copying collector
 * (heap_semi.c) and the arena (heap_arena.c) implement the same four calls.
 */
#ifndef LISP_H
#define LISP_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef uintptr_t val;

/* Tagging. Objects are 16-byte aligned, so a pointer has its low four bits clear.
 *   ...xxx1  fixnum (62 bits, signed)
 *   ...0010  constant (nil, booleans, unspecified, unbound, eof)
 *   ...0110  character
 *   ...1010  primitive procedure (index into the primitive table)
 *   ...0000  heap object (never 0) */
#define FIXNUM_P(v) (((v) & 1) != 0)
#define MKFIX(n) ((val)(((uintptr_t)(intptr_t)(n) << 1) | 1))
#define FIXVAL(v) ((intptr_t)(v) >> 1)
#define FIX_MAX (INTPTR_MAX >> 1)
#define FIX_MIN (INTPTR_MIN >> 1)
#define PTR_P(v) ((((v) & 15) == 0) && (v) != 0)
#define IMM(n) ((val)(((uintptr_t)(n) << 4) | 2))
#define NIL IMM(0)
#define TRUE_V IMM(1)
#define FALSE_V IMM(2)
#define UNSPEC IMM(3)
#define UNBOUND IMM(4)
#define EOF_V IMM(5)
#define BOOL(c) ((c) ? TRUE_V : FALSE_V)
#define CHAR_P(v) (((v) & 15) == 6)
#define MKCHAR(c) ((val)(((uintptr_t)(unsigned char)(c) << 4) | 6))
#define CHARVAL(v) ((int)((v) >> 4))
#define PRIM_P(v) (((v) & 15) == 10)
#define MKPRIM(i) ((val)(((uintptr_t)(i) << 4) | 10))
#define PRIMIDX(v) ((size_t)((v) >> 4))

/* Object types. The header word: type (8 bits) | mark (8) | aux (8) | count (40). */
enum obj_type {
    T_PAIR = 1,  /* car, cdr */
    T_SYMBOL,    /* global value, then the NUL-terminated name (count = name length) */
    T_STRING,    /* bytes (count = length), NUL-terminated */
    T_VECTOR,    /* count values */
    T_CLOSURE,   /* params, body, env, name */
    T_ENV,       /* parent, names, vals: one frame of local variables */
    T_FLONUM,    /* a double */
    T_FORWARD,   /* semispace only: the object moved to f[0] */
};

typedef struct obj {
    uint64_t hdr;
    val f[];
} obj;

#define HDR(type, count) ((uint64_t)(type) | ((uint64_t)(count) << 24))
#define OBJ(v) ((obj *)(v))
#define TYPE(v) ((int)(OBJ(v)->hdr & 0xff))
#define MARK(o) ((int)(((o)->hdr >> 8) & 0xff))
#define SET_MARK(o, m) ((o)->hdr = ((o)->hdr & ~(uint64_t)0xff00) | ((uint64_t)(m) << 8))
#define AUX(v) ((int)((OBJ(v)->hdr >> 16) & 0xff))
#define COUNT(v) ((size_t)(OBJ(v)->hdr >> 24))
#define IS(v, t) (PTR_P(v) && TYPE(v) == (t))
/* Mark-byte bits of a generational heap: MARK_OLD on every object that survived a
 * collection, MARK_REMEMBERED on an old object the write barrier put in the remembered
 * set since the last collection (the barrier reads both; the other bits are the heap's
 * own). */
#define MARK_OLD 2
#define MARK_REMEMBERED 4

#define car(v) (OBJ(v)->f[0])
#define cdr(v) (OBJ(v)->f[1])
#define SYM_VALUE(v) (OBJ(v)->f[0])
#define SYM_NAME(v) ((char *)&OBJ(v)->f[1])
#define STR_CHARS(v) ((char *)&OBJ(v)->f[0])
#define VEC_ELTS(v) (OBJ(v)->f)
#define CLO_PARAMS(v) (OBJ(v)->f[0])
#define CLO_BODY(v) (OBJ(v)->f[1])
#define CLO_ENV(v) (OBJ(v)->f[2])
#define CLO_NAME(v) (OBJ(v)->f[3])
#define ENV_PARENT(v) (OBJ(v)->f[0])
#define ENV_NAMES(v) (OBJ(v)->f[1])
#define ENV_VALS(v) (OBJ(v)->f[2])
typedef struct flonum_obj {
    uint64_t hdr;
    double d;
} flonum_obj;
#define FLO(v) (((flonum_obj *)(v))->d)

/* How many leading words after the header are values (what a collector traces). */
static inline size_t obj_nvals(const obj *o)
{
    switch (o->hdr & 0xff) {
    case T_PAIR: return 2;
    case T_SYMBOL: return 1;
    case T_VECTOR: return (size_t)(o->hdr >> 24);
    case T_CLOSURE: return 4;
    case T_ENV: return 3;
    default: return 0;
    }
}

/* Bytes the object occupies, a multiple of 16 (so a forwarding word always fits). */
static inline size_t obj_bytes_for(int type, size_t count)
{
    size_t n = 8;
    switch (type) {
    case T_PAIR: n += 16; break;
    case T_SYMBOL: n += 8 + count + 1; break;
    case T_STRING: n += count + 1; break;
    case T_VECTOR: n += 8 * count; break;
    case T_CLOSURE: n += 32; break;
    case T_ENV: n += 24; break;
    case T_FLONUM: n += 8; break;
    default: break;
    }
    return (n + 15) & ~(size_t)15;
}

static inline size_t obj_bytes(const obj *o)
{
    return obj_bytes_for((int)(o->hdr & 0xff), (size_t)(o->hdr >> 24));
}

/* ------------------------------------------------------------ heap backends ---- */
/* A collector sees the interpreter only through these: the roots, and each object's
 * header. visit(slot) may overwrite *slot with the object's new address. */
typedef void (*root_visitor)(val *slot, void *ctx);
static inline void lisp_each_root(root_visitor visit, void *ctx);

struct heap_backend {
    const char *name;
    /* Prepare a heap; bytes is the --heap size (first semispace / first GC threshold). */
    int (*init)(size_t bytes, int generational);
    /* Storage for an object of bytes (a multiple of 16), or NULL when a collection is due. */
    void *(*alloc)(size_t bytes);
    /* Collect, so that at least need bytes can be allocated afterwards. 0 or -1. */
    int (*collect)(size_t need);
    void (*fini)(void);
    /* Extra statistics for --stats: appended to the JSON line (may be NULL). */
    void (*describe)(FILE *out);
};

extern const struct heap_backend heap_semispace;
extern const struct heap_backend heap_arena_backend;

/* ------------------------------------------------------------ interpreter ---- */
struct lisp {
    const struct heap_backend *heap;
    val **roots;       /* the root stack: addresses of rooted C locals */
    size_t *root_frame; /* root_frame[i]: where the frame that pushed roots[i] begins */
    size_t nroots, roots_cap;
    /* The lowest the root stack was cut back to since lisp_young_roots_reset(): see
     * lisp_each_young_root. */
    size_t roots_low;
    val *symtab;       /* interned symbols (open addressing; each entry is a root) */
    size_t symcap, nsyms;
    /* The symtab slots filled since lisp_young_roots_reset(), unless fresh_all (too many,
     * or the table was rehashed): a young collection's only symbol roots. */
    size_t fresh[256], nfresh;
    int fresh_all;
    size_t depth;      /* eval nesting, bounded so deep recursion is an error, not a crash */
    jmp_buf *on_error;
    const char *who;   /* the primitive being applied: named in its error messages */
    uint64_t gcs, gc_ns, bytes_allocated;
    int verbose_gc;
    int mid_line;      /* the program's output so far does not end in a newline */
    int tracker;       /* --tracker: enum arena_tracker for --generational (0 = auto) */
    int barrier;       /* --barrier for --generational: LISP_BARRIER_CARDS or _PAGES */
    uint64_t stress, stress_count; /* collect every stress allocations (0 = off) */
    /* The card table of the generational heap's write barrier (--barrier cards): a byte
     * per card of heap, card[(slot - card_base) >> card_shift], for objects larger than
     * a card; NULL when no barrier is needed (semispace, a non-generational heap, or
     * --barrier pages). */
    unsigned char *card;
    uintptr_t card_base;
    unsigned card_shift;
};
extern struct lisp L;

enum { LISP_BARRIER_CARDS, LISP_BARRIER_PAGES };

/* The write barrier of --barrier cards: a remembered set of objects, and cards for large
 * ones. Every store of a value into a field of an existing heap object goes through
 * set_field. A store of a heap pointer into an old object that is not remembered yet calls
 * lisp_remember: an object of at most a card (256 bytes: every pair, frame, closure,
 * symbol and short vector) is marked MARK_REMEMBERED and listed, and the next young
 * collection fixes all its fields (the remembered set of objects: Ungar 1984; Lua 5.4's
 * "touched" objects); a larger one dirties the card of the field (card marking, Hölzle
 * 1993), and the collection fixes its fields on that card only. Only the stores that
 * fill an object right after alloc_obj returned it, with no allocation in between, may
 * write the field directly (the object is young: a collection only runs inside an
 * allocation). A missed barrier loses a young object that only an old one references:
 * tests/lisp/barriers.scm and the old-to-young test are what catch one. */
void lisp_remember(val o, const val *slot); /* heap_gen.c */

static inline void write_barrier(val o, const val *slot, val v)
{
    if (L.card && PTR_P(v) && (MARK(OBJ(o)) & (MARK_OLD | MARK_REMEMBERED)) == MARK_OLD)
        lisp_remember(o, slot);
}

static inline void set_field(val o, val *slot, val v)
{
    write_barrier(o, slot, v);
    *slot = v;
}

/* Rooting (.req.runtime.precise-roots). GC_BEGIN records the root stack; ROOT(x) registers local x; every exit
 * path restores the stack with GC_END (or GC_RETURN).
 * The rules a young collection relies on (lisp_each_young_root): a function has at most
 * one GC_BEGIN (a second one, in an inner block, would shadow gc_saved_roots_: the pragma
 * below makes that an error), and a rooted local is written only by the function that
 * declared it, never through a pointer by a callee. Then a frame's rooted locals can
 * change only while that frame runs, i.e. after every root above its own was popped. */
#pragma GCC diagnostic error "-Wshadow"
#define GC_BEGIN size_t gc_saved_roots_ = L.nroots
#define ROOT(x) root_push(&(x), gc_saved_roots_)
#define GC_END roots_restore(gc_saved_roots_)
#define GC_RETURN(e)         \
    do {                     \
        val gc_ret_ = (e);   \
        GC_END;              \
        return gc_ret_;      \
    } while (0)

void roots_grow(void); /* core.c: a larger root stack, or exit */

/* Inline: the interpreter pushes a root for every rooted local of every call. */
static inline void root_push(val *slot, size_t frame)
{
    if (__builtin_expect(L.nroots == L.roots_cap, 0))
        roots_grow();
    L.root_frame[L.nroots] = frame;
    L.roots[L.nroots++] = slot;
}

static inline void roots_restore(size_t n)
{
    L.nroots = n;
    if (n < L.roots_low)
        L.roots_low = n;
}

/* The roots: the rooted locals and the symbol table. Inline, so that a collector's
 * visitor (a static function) is inlined too: a collection visits thousands of roots. */
static inline void lisp_each_root(root_visitor visit, void *ctx)
{
    for (size_t i = 0; i < L.nroots; i++)
        visit(L.roots[i], ctx);
    for (size_t i = 0; i < L.symcap; i++)
        if (L.symtab[i])
            visit(&L.symtab[i], ctx);
}

/* The first root stack entry that may have changed since lisp_young_roots_reset(). The
 * entries below roots_low were never popped since, so each still names the local it named
 * then, in a frame that has not returned. A frame runs (and may write its rooted locals)
 * only when the stack is cut back to its own top, so of the frames below roots_low only
 * the one owning entry roots_low - 1 may have run: every frame below it was suspended in
 * a call the whole time, and its rooted locals hold what they held then. */
_Noreturn void lisp_roots_mark_broken(void);

static inline size_t lisp_roots_changed_from(void)
{
    /* Every cut of the stack lowers the mark (roots_restore): a mark above the stack
     * means one did not, and the entries below it may not be what they were. */
    if (__builtin_expect(L.roots_low > L.nroots, 0))
        lisp_roots_mark_broken();
    return L.roots_low == 0 ? 0 : L.root_frame[L.roots_low - 1];
}

/* The roots that may name an object allocated since lisp_young_roots_reset(): the rooted
 * locals of the frames that may have run since (lisp_roots_changed_from) and the symbols
 * interned since (the symbol table holds a thousand slots). The others still hold what
 * they held after that collection: old objects, which a young collection does not move.
 * Deep recursion thus costs a young collection the frames pushed or resumed since the
 * last one, not the whole root stack. */
static inline void lisp_each_young_root(root_visitor visit, void *ctx)
{
    for (size_t i = lisp_roots_changed_from(); i < L.nroots; i++)
        visit(L.roots[i], ctx);
    if (L.fresh_all) {
        for (size_t i = 0; i < L.symcap; i++)
            if (L.symtab[i])
                visit(&L.symtab[i], ctx);
        return;
    }
    for (size_t i = 0; i < L.nfresh; i++)
        visit(&L.symtab[L.fresh[i]], ctx);
}

/* After a collection that left no young object: no symbol is fresh any more, and no
 * rooted local has changed since. */
static inline void lisp_young_roots_reset(void)
{
    L.nfresh = 0;
    L.fresh_all = 0;
    L.roots_low = L.nroots;
}

/* Allocation: may collect, so every value the caller still needs must be rooted. */
obj *alloc_obj(int type, size_t count);
void lisp_gc(size_t need);

val cons(val a, val d);
val make_string(const char *s, size_t n);
val make_flonum(double d);
val make_vector(size_t n, val fill);
val intern(const char *name);
val list2(val a, val b);

/* Nesting deeper than this (eval calls, reader lists, printed or compared car
 * chains) is an error: the C stack holds far more, so it never overflows. */
#define LISP_MAX_DEPTH 100000
/* The largest object in bytes: (make-vector (expt 2 61)) is an error, not an overflowed
 * size, and no single object makes a heap grow past what a demo should take. */
#define LISP_MAX_OBJECT (256 << 20)

/* Errors print one line, "error: [primitive: ]message", and jump to L.on_error. */
_Noreturn void lisp_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, with v written (briefly) after the message. */
_Noreturn void lisp_error_val(val v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
_Noreturn void lisp_type_error(const char *what, val v);
/* Jump to L.on_error without a message (the caller printed its own, or has none). */
_Noreturn void lisp_raise(void);

/* list_count: the pairs in the proper list l, or one of these. */
#define LIST_CIRCULAR (-1)
#define LIST_IMPROPER (-2)
intptr_t list_count(val l);
/* list_count, with an error for a circular or improper list. */
size_t list_length(val l);

/* reader / printer (read.c) */
struct reader {
    const char *s;
    size_t pos, len;
    int incomplete;   /* set when input ended inside a form (raised without a message) */
    size_t depth;     /* list nesting, bounded by LISP_MAX_DEPTH */
};
val read_form(struct reader *r);
/* Print v (write: as `write` does, else as `display`). A circular structure prints with
 * datum labels (#0=(1 . #0#)). -1, having printed nothing, when v is nested deeper
 * than LISP_MAX_DEPTH or the printer runs out of memory; else 0. */
int print_val(FILE *out, val v, int write);
/* print_val for diagnostics: at most about limit bytes, "..." when cut. */
void print_brief(FILE *out, val v, size_t limit);

/* evaluator (eval.c) */
val eval(val x, val env);
void eval_init(void);
int special_id(const char *name);

/* primitives (prims.c) */
typedef val (*prim_fn)(val args, size_t argc);
struct prim {
    const char *name;
    prim_fn fn;
    int min, max;   /* arity; max -1 = variadic */
};
extern const struct prim prims[];
extern size_t nprims;
extern size_t prim_apply_index;
void prims_init(void);
int lisp_equal(val a, val b);
int lisp_eqv(val a, val b);

#define PAIR_P(v) IS(v, T_PAIR)
#define SYMBOL_P(v) IS(v, T_SYMBOL)
#define STRING_P(v) IS(v, T_STRING)

#endif
