/*
 * roots.c -- ambiguous (conservative) roots: words that may or may not be pointers pin
 * every live object they may point into (docs/design.md §7, "Ambiguous roots").
 *
 * The scheme is Bartlett's mostly-copying collection (J. F. Bartlett, "Compacting garbage
 * collection with ambiguous roots", DEC WRL 88/2, 1988): an ambiguous root cannot be
 * updated, so the object it may name stays where it is (pinned); every object reached
 * only through precise roots still moves. The stack and register scan follows Boehm and
 * Weiser ("Garbage collection in an uncooperative environment", SP&E 1988): registers are
 * spilled onto the stack, then every aligned word from the stack pointer to the stack's
 * base is a candidate pointer.
 */
#include "heap.h"

#include <setjmp.h>

/* Pin the object a candidate word (inside the heap's reservation) may point into, if any,
 * and tell the runtime. */
static void pin_candidate(arena_t *a, uintptr_t w, arena_root_fn *fn, void *ctx)
{
    char *obj = arena__heap_find(a, (const void *)w, NULL);
    if (obj == NULL)
        return;     /* freed space, a page with no object there, or just past an object */
    if (arena_pin(a, obj) == 0 && fn != NULL)
        fn(obj, ctx);
}

/* The range scan reads memory it does not own the layout of (stack frames with their
 * sanitizer red zones): the sanitizers must not check these loads. */
__attribute__((no_sanitize("address"), no_sanitize("thread")))
static void scan(arena_t *a, const char *lo, const char *hi, arena_root_fn *fn, void *ctx)
{
    uintptr_t first = ((uintptr_t)lo + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
    /* The cheap filter, one subtraction and compare per word with no call: most words of a
     * stack are not addresses in the heap's reservation. */
    uintptr_t base = (uintptr_t)a->heap->base, span = (uintptr_t)a->heap->nslots << a->page_shift;
    for (uintptr_t p = first; p + sizeof(uintptr_t) <= (uintptr_t)hi; p += sizeof(uintptr_t)) {
        uintptr_t w = *(const volatile uintptr_t *)p;
        if (w - base < span)
            pin_candidate(a, w, fn, ctx);
    }
}

int arena_pin_range(arena_t *a, const void *lo, const void *hi, arena_root_fn *fn, void *ctx)
{
    if (a == NULL || (lo == NULL && hi != NULL) || (hi == NULL && lo != NULL))
        return ARENA_ENULL;
    if ((const char *)hi < (const char *)lo)
        return ARENA_ERANGE;
    int err = arena__callable(a);
    if (err)
        return err;
    if (lo != NULL)
        scan(a, lo, hi, fn, ctx);
    return 0;
}

/* The high end of the calling thread's stack, found once per thread: pthread_getattr_np
 * reads /proc/self/maps for the main thread, far too dear for every collection. */
static __thread char *stack_base, *stack_low;

static int thread_stack(char **low, char **base)
{
    if (stack_base == NULL) {
        pthread_attr_t attr;
        int err = pthread_getattr_np(pthread_self(), &attr);
        if (err != 0)
            return -err;
        void *addr;
        size_t size;
        err = pthread_attr_getstack(&attr, &addr, &size);
        pthread_attr_destroy(&attr);
        if (err != 0)
            return -err;
        stack_base = (char *)addr + size;
        stack_low = addr;
    }
    *low = stack_low;
    *base = stack_base;
    return 0;
}

/* An address below every frame of its caller: the frame of a function it calls. */
__attribute__((noinline))
static char *below_caller(void)
{
    char *p = (char *)__builtin_frame_address(0);
    __asm__ volatile("" : "+r"(p));
    return p;
}

/* Not inlined, so its frame (holding the spilled registers) lies below every frame of the
 * caller that may hold a root; the scan starts below this frame too. */
__attribute__((noinline))
static int scan_own_stack(arena_t *a, char *low, char *base, arena_root_fn *fn, void *ctx)
{
    jmp_buf regs;
    __builtin_unwind_init();     /* callee-saved registers into this frame */
    setjmp(regs);                /* and the rest into regs, which is on the stack */
    char *sp = below_caller();
    /* Running on another stack (a sigaltstack handler, a coroutine): [sp, base) is not a
     * stack and may cross unmapped memory. */
    int err = sp < low || sp >= base ? ARENA_ERANGE : arena_pin_range(a, sp, base, fn, ctx);
    /* Keep regs alive up to the scan (and stop a tail call from popping this frame). */
    __asm__ volatile("" : : "r"(&regs) : "memory");
    return err;
}

int arena_pin_stack(arena_t *a, arena_root_fn *fn, void *ctx)
{
    if (a == NULL)
        return ARENA_ENULL;
    char *low, *base;
    int err = thread_stack(&low, &base);
    if (err != 0)
        return err;
    return scan_own_stack(a, low, base, fn, ctx);
}
