/*
 * prims.c -- primitive procedures.
 *
 * A primitive gets its arguments as a list that the evaluator keeps rooted. A
 * primitive that allocates and then still reads its arguments roots its own copy
 * of the list first (the evaluator's root is updated, the parameter is not).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lisp.h"

#define A1 car(args)
#define A2 car(cdr(args))
#define A3 car(cdr(cdr(args)))

size_t prim_apply_index;

static intptr_t fix_arg(val v)
{
    if (!FIXNUM_P(v))
        lisp_type_error("integer", v);
    return FIXVAL(v);
}

static val check(val v, int type, const char *what)
{
    if (!IS(v, type))
        lisp_type_error(what, v);
    return v;
}

static int num_p(val v)
{
    return FIXNUM_P(v) || IS(v, T_FLONUM);
}

static double to_double(val v)
{
    if (FIXNUM_P(v))
        return (double)FIXVAL(v);
    if (IS(v, T_FLONUM))
        return FLO(v);
    lisp_type_error("number", v);
}

static val make_int(long long n)
{
    if (n < FIX_MIN || n > FIX_MAX)
        return make_flonum((double)n);
    return MKFIX(n);
}

/* ------------------------------------------------------------- arithmetic ---- */

enum { OP_ADD, OP_SUB, OP_MUL };

static val arith(val args, size_t argc, int op)
{
    long long acc = op == OP_MUL ? 1 : 0;
    double dacc = 0;
    int flo = 0;
    size_t i = 0;
    for (val p = args; PAIR_P(p); p = cdr(p), i++) {
        val v = car(p);
        if (!num_p(v))
            lisp_type_error("number", v);
        if (!flo && FIXNUM_P(v)) {
            long long n = FIXVAL(v), r;
            int ovf;
            if (op == OP_SUB && i == 0 && argc > 1) {
                acc = n;
                continue;
            }
            ovf = op == OP_ADD   ? __builtin_add_overflow(acc, n, &r)
                  : op == OP_SUB ? __builtin_sub_overflow(acc, n, &r)
                                 : __builtin_mul_overflow(acc, n, &r);
            if (!ovf && r >= FIX_MIN && r <= FIX_MAX) {
                acc = r;
                continue;
            }
        }
        if (!flo) {
            flo = 1;
            dacc = (double)acc;
        }
        double d = to_double(v);
        if (op == OP_SUB && i == 0 && argc > 1)
            dacc = d;
        else
            dacc = op == OP_ADD ? dacc + d : op == OP_SUB ? dacc - d : dacc * d;
    }
    return flo ? make_flonum(dacc) : MKFIX(acc);
}

static val p_add(val args, size_t argc) { return arith(args, argc, OP_ADD); }
static val p_sub(val args, size_t argc) { return arith(args, argc, OP_SUB); }
static val p_mul(val args, size_t argc) { return arith(args, argc, OP_MUL); }

static val p_div(val args, size_t argc)
{
    double d = argc == 1 ? 1.0 : to_double(A1);
    int exact = argc == 1 ? FIXNUM_P(A1) : FIXNUM_P(A1);
    long long n = argc == 1 ? 1 : (FIXNUM_P(A1) ? FIXVAL(A1) : 0);
    for (val p = argc == 1 ? args : cdr(args); PAIR_P(p); p = cdr(p)) {
        double q = to_double(car(p));
        if (exact && FIXNUM_P(car(p)) && FIXVAL(car(p)) != 0 && n % FIXVAL(car(p)) == 0)
            n /= FIXVAL(car(p));
        else
            exact = 0;
        d /= q;
    }
    return exact ? make_int(n) : make_flonum(d);
}

static val int_div(val args, int which)
{
    if (FIXNUM_P(A1) && FIXNUM_P(A2)) {
        intptr_t a = FIXVAL(A1), b = FIXVAL(A2);
        if (b == 0)
            lisp_error("division by zero");
        if (which == 0)
            return make_int(a / b);
        if (which == 1)
            return MKFIX(a % b);
        intptr_t m = a % b;
        if (m != 0 && ((m < 0) != (b < 0)))
            m += b;
        return MKFIX(m);
    }
    double a = to_double(A1), b = to_double(A2);
    if (b == 0)
        lisp_error("division by zero");
    if (which == 0)
        return make_flonum(trunc(a / b));
    if (which == 1)
        return make_flonum(fmod(a, b));
    double m = fmod(a, b);
    if (m != 0 && ((m < 0) != (b < 0)))
        m += b;
    return make_flonum(m);
}

static val p_quotient(val args, size_t argc) { (void)argc; return int_div(args, 0); }
static val p_remainder(val args, size_t argc) { (void)argc; return int_div(args, 1); }
static val p_modulo(val args, size_t argc) { (void)argc; return int_div(args, 2); }

static int num_cmp(val a, val b)
{
    if (FIXNUM_P(a) && FIXNUM_P(b))
        return (FIXVAL(a) > FIXVAL(b)) - (FIXVAL(a) < FIXVAL(b));
    double x = to_double(a), y = to_double(b);
    return (x > y) - (x < y);
}

static val compare(val args, int want_lt, int want_eq, int want_gt)
{
    for (val p = args; PAIR_P(cdr(p)); p = cdr(p)) {
        int c = num_cmp(car(p), car(cdr(p)));
        if (!((c < 0 && want_lt) || (c == 0 && want_eq) || (c > 0 && want_gt)))
            return FALSE_V;
    }
    if (cdr(args) == NIL)
        to_double(A1);
    return TRUE_V;
}

static val p_numeq(val args, size_t argc) { (void)argc; return compare(args, 0, 1, 0); }
static val p_lt(val args, size_t argc) { (void)argc; return compare(args, 1, 0, 0); }
static val p_gt(val args, size_t argc) { (void)argc; return compare(args, 0, 0, 1); }
static val p_le(val args, size_t argc) { (void)argc; return compare(args, 1, 1, 0); }
static val p_ge(val args, size_t argc) { (void)argc; return compare(args, 0, 1, 1); }

static val p_zero(val args, size_t argc) { (void)argc; return BOOL(to_double(A1) == 0); }
static val p_positive(val args, size_t argc) { (void)argc; return BOOL(to_double(A1) > 0); }
static val p_negative(val args, size_t argc) { (void)argc; return BOOL(to_double(A1) < 0); }
static val p_even(val args, size_t argc) { (void)argc; return BOOL(fix_arg(A1) % 2 == 0); }
static val p_odd(val args, size_t argc) { (void)argc; return BOOL(fix_arg(A1) % 2 != 0); }
static val p_number(val args, size_t argc) { (void)argc; return BOOL(num_p(A1)); }
static val p_integer(val args, size_t argc)
{
    (void)argc;
    return BOOL(FIXNUM_P(A1) || (IS(A1, T_FLONUM) && FLO(A1) == floor(FLO(A1))));
}
static val p_exact(val args, size_t argc) { (void)argc; return BOOL(FIXNUM_P(A1)); }
static val p_inexact(val args, size_t argc) { (void)argc; return BOOL(IS(A1, T_FLONUM)); }

static val p_abs(val args, size_t argc)
{
    (void)argc;
    if (FIXNUM_P(A1))
        return make_int(llabs((long long)FIXVAL(A1)));
    return make_flonum(fabs(to_double(A1)));
}

static val minmax(val args, int want_max)
{
    val best = A1;
    int flo = IS(best, T_FLONUM);
    for (val p = cdr(args); PAIR_P(p); p = cdr(p)) {
        int c = num_cmp(car(p), best);
        flo |= IS(car(p), T_FLONUM);
        if ((want_max && c > 0) || (!want_max && c < 0))
            best = car(p);
    }
    to_double(best);
    return flo && FIXNUM_P(best) ? make_flonum((double)FIXVAL(best)) : best;
}

static val p_min(val args, size_t argc) { (void)argc; return minmax(args, 0); }
static val p_max(val args, size_t argc) { (void)argc; return minmax(args, 1); }

static val p_to_inexact(val args, size_t argc) { (void)argc; return make_flonum(to_double(A1)); }

static val p_to_exact(val args, size_t argc)
{
    (void)argc;
    if (FIXNUM_P(A1))
        return A1;
    return make_int((long long)llround(to_double(A1)));
}

static val rounding(val args, double (*fn)(double))
{
    if (FIXNUM_P(A1))
        return A1;
    return make_flonum(fn(to_double(A1)));
}

static val p_floor(val args, size_t argc) { (void)argc; return rounding(args, floor); }
static val p_ceiling(val args, size_t argc) { (void)argc; return rounding(args, ceil); }
static val p_round(val args, size_t argc) { (void)argc; return rounding(args, nearbyint); }
static val p_truncate(val args, size_t argc) { (void)argc; return rounding(args, trunc); }

static val p_sqrt(val args, size_t argc)
{
    (void)argc;
    double d = sqrt(to_double(A1));
    if (FIXNUM_P(A1) && d == floor(d))
        return make_int((long long)d);
    return make_flonum(d);
}

static val p_expt(val args, size_t argc)
{
    (void)argc;
    if (FIXNUM_P(A1) && FIXNUM_P(A2) && FIXVAL(A2) >= 0) {
        long long r = 1, b = FIXVAL(A1);
        for (intptr_t e = FIXVAL(A2); e > 0; e--)
            if (__builtin_mul_overflow(r, b, &r))
                return make_flonum(pow(to_double(A1), to_double(A2)));
        return make_int(r);
    }
    return make_flonum(pow(to_double(A1), to_double(A2)));
}

/* ------------------------------------------------------------- predicates ---- */

int lisp_eqv(val a, val b)
{
    if (a == b)
        return 1;
    return IS(a, T_FLONUM) && IS(b, T_FLONUM) && FLO(a) == FLO(b);
}

/* Recursion on cars and vector elements is bounded by LISP_MAX_DEPTH, which is also
 * where a cycle through cars ends; a cycle through cdrs is found as in list_count. */
static int equal_at(val a, val b, size_t depth)
{
    val slow = a;
    size_t n = 0;
    if (depth > LISP_MAX_DEPTH)
        lisp_error("structure nested deeper than %d, or circular", LISP_MAX_DEPTH);
    for (;;) {
        if (lisp_eqv(a, b))
            return 1;
        if (!PTR_P(a) || !PTR_P(b) || TYPE(a) != TYPE(b))
            return 0;
        switch (TYPE(a)) {
        case T_PAIR:
            if (!equal_at(car(a), car(b), depth + 1))
                return 0;
            a = cdr(a);
            b = cdr(b);
            if ((++n & 1) == 0) {
                slow = cdr(slow);
                if (slow == a) /* both lists are circular and agree so far */
                    lisp_error("circular list");
            }
            continue;
        case T_STRING:
            return COUNT(a) == COUNT(b) && memcmp(STR_CHARS(a), STR_CHARS(b), COUNT(a)) == 0;
        case T_VECTOR:
            if (COUNT(a) != COUNT(b))
                return 0;
            for (size_t i = 0; i < COUNT(a); i++)
                if (!equal_at(VEC_ELTS(a)[i], VEC_ELTS(b)[i], depth + 1))
                    return 0;
            return 1;
        default: return 0;
        }
    }
}

int lisp_equal(val a, val b)
{
    return equal_at(a, b, 0);
}

static val p_not(val args, size_t argc) { (void)argc; return BOOL(A1 == FALSE_V); }
static val p_boolean(val args, size_t argc) { (void)argc; return BOOL(A1 == TRUE_V || A1 == FALSE_V); }
static val p_null(val args, size_t argc) { (void)argc; return BOOL(A1 == NIL); }
static val p_pair(val args, size_t argc) { (void)argc; return BOOL(PAIR_P(A1)); }
static val p_symbol(val args, size_t argc) { (void)argc; return BOOL(SYMBOL_P(A1)); }
static val p_string(val args, size_t argc) { (void)argc; return BOOL(STRING_P(A1)); }
static val p_vector(val args, size_t argc) { (void)argc; return BOOL(IS(A1, T_VECTOR)); }
static val p_char(val args, size_t argc) { (void)argc; return BOOL(CHAR_P(A1)); }
static val p_procedure(val args, size_t argc) { (void)argc; return BOOL(PRIM_P(A1) || IS(A1, T_CLOSURE)); }
static val p_eq(val args, size_t argc) { (void)argc; return BOOL(A1 == A2); }
static val p_eqv(val args, size_t argc) { (void)argc; return BOOL(lisp_eqv(A1, A2)); }
static val p_equal(val args, size_t argc) { (void)argc; return BOOL(lisp_equal(A1, A2)); }

static val p_list_p(val args, size_t argc)
{
    (void)argc;
    return BOOL(list_count(A1) >= 0);
}

/* ------------------------------------------------------------------ lists ---- */

static val p_cons(val args, size_t argc) { (void)argc; return cons(A1, A2); }
static val p_car(val args, size_t argc) { (void)argc; return car(check(A1, T_PAIR, "pair")); }
static val p_cdr(val args, size_t argc) { (void)argc; return cdr(check(A1, T_PAIR, "pair")); }

static val cxr(val v, const char *path)
{
    /* path is read right to left, as in the name: cadr = car of cdr. */
    for (size_t i = strlen(path); i-- > 0;) {
        check(v, T_PAIR, "pair");
        v = path[i] == 'a' ? car(v) : cdr(v);
    }
    return v;
}

static val p_caar(val args, size_t argc) { (void)argc; return cxr(A1, "aa"); }
static val p_cadr(val args, size_t argc) { (void)argc; return cxr(A1, "ad"); }
static val p_cdar(val args, size_t argc) { (void)argc; return cxr(A1, "da"); }
static val p_cddr(val args, size_t argc) { (void)argc; return cxr(A1, "dd"); }
static val p_caddr(val args, size_t argc) { (void)argc; return cxr(A1, "add"); }
static val p_cdddr(val args, size_t argc) { (void)argc; return cxr(A1, "ddd"); }
static val p_cadddr(val args, size_t argc) { (void)argc; return cxr(A1, "addd"); }

static val p_set_car(val args, size_t argc)
{
    (void)argc;
    val p = check(A1, T_PAIR, "pair");
    set_field(p, &car(p), A2);
    return UNSPEC;
}

static val p_set_cdr(val args, size_t argc)
{
    (void)argc;
    val p = check(A1, T_PAIR, "pair");
    set_field(p, &cdr(p), A2);
    return UNSPEC;
}

static val p_list(val args, size_t argc)
{
    /* The evaluator's argument list is fresh: it can be the result. */
    (void)argc;
    return args;
}

static val p_length(val args, size_t argc)
{
    (void)argc;
    return MKFIX(list_length(A1));
}

static val reverse_onto(val l, val tail)
{
    list_length(l);
    GC_BEGIN;
    ROOT(l);
    ROOT(tail);
    for (; PAIR_P(l); l = cdr(l))
        tail = cons(car(l), tail);
    GC_RETURN(tail);
}

static val p_reverse(val args, size_t argc) { (void)argc; return reverse_onto(A1, NIL); }

static val p_reverse_bang(val args, size_t argc)
{
    (void)argc;
    val l = A1, r = NIL;
    list_length(l);
    while (PAIR_P(l)) {
        val next = cdr(l);
        set_field(l, &cdr(l), r);
        r = l;
        l = next;
    }
    return r;
}

static val p_append(val args, size_t argc)
{
    if (argc == 0)
        return NIL;
    GC_BEGIN;
    ROOT(args);
    val rev = NIL, result = NIL;
    ROOT(rev);
    ROOT(result);
    /* result = the last argument; prepend copies of the others, last to first. */
    rev = reverse_onto(args, NIL);
    result = car(rev);
    for (rev = cdr(rev); PAIR_P(rev); rev = cdr(rev)) {
        val part = reverse_onto(car(rev), NIL);
        while (PAIR_P(part)) {
            val next = cdr(part);
            set_field(part, &cdr(part), result);
            result = part;
            part = next;
        }
    }
    GC_RETURN(result);
}

static val p_list_tail(val args, size_t argc)
{
    (void)argc;
    val l = A1;
    for (intptr_t k = fix_arg(A2); k > 0; k--)
        l = cdr(check(l, T_PAIR, "pair"));
    return l;
}

static val p_list_ref(val args, size_t argc)
{
    (void)argc;
    val l = A1;
    for (intptr_t k = fix_arg(A2); k > 0; k--)
        l = cdr(check(l, T_PAIR, "pair"));
    return car(check(l, T_PAIR, "pair"));
}

static val mem(val args, int how)
{
    list_length(A2);
    for (val l = A2; PAIR_P(l); l = cdr(l))
        if (how == 0 ? car(l) == A1 : how == 1 ? lisp_eqv(car(l), A1) : lisp_equal(car(l), A1))
            return l;
    return FALSE_V;
}

static val ass(val args, int how)
{
    list_length(A2);
    for (val l = A2; PAIR_P(l); l = cdr(l)) {
        val e = car(l);
        if (PAIR_P(e) && (how == 0 ? car(e) == A1 : how == 1 ? lisp_eqv(car(e), A1) : lisp_equal(car(e), A1)))
            return e;
    }
    return FALSE_V;
}

static val p_memq(val args, size_t argc) { (void)argc; return mem(args, 0); }
static val p_memv(val args, size_t argc) { (void)argc; return mem(args, 1); }
static val p_member(val args, size_t argc) { (void)argc; return mem(args, 2); }
static val p_assq(val args, size_t argc) { (void)argc; return ass(args, 0); }
static val p_assv(val args, size_t argc) { (void)argc; return ass(args, 1); }
static val p_assoc(val args, size_t argc) { (void)argc; return ass(args, 2); }

static val p_list_copy(val args, size_t argc)
{
    (void)argc;
    val r = reverse_onto(A1, NIL);
    return p_reverse_bang(cons(r, NIL), 1);
}

/* ---------------------------------------------------------------- vectors ---- */

static size_t index_arg(val v, size_t limit)
{
    intptr_t i = fix_arg(v);
    if (i < 0 || (size_t)i >= limit)
        lisp_error("index %lld out of range [0, %zu)", (long long)i, limit);
    return (size_t)i;
}

static val p_make_vector(val args, size_t argc)
{
    intptr_t n = fix_arg(A1);
    if (n < 0)
        lisp_error("make-vector: negative size");
    return make_vector((size_t)n, argc > 1 ? A2 : FALSE_V);
}

static val p_vector_lit(val args, size_t argc)
{
    GC_BEGIN;
    ROOT(args);
    val v = make_vector(argc, UNSPEC);
    size_t i = 0;
    for (val p = args; PAIR_P(p); p = cdr(p))
        set_field(v, &VEC_ELTS(v)[i++], car(p));
    GC_RETURN(v);
}

static val p_vector_ref(val args, size_t argc)
{
    (void)argc;
    val v = check(A1, T_VECTOR, "vector");
    return VEC_ELTS(v)[index_arg(A2, COUNT(v))];
}

static val p_vector_set(val args, size_t argc)
{
    (void)argc;
    val v = check(A1, T_VECTOR, "vector");
    set_field(v, &VEC_ELTS(v)[index_arg(A2, COUNT(v))], A3);
    return UNSPEC;
}

static val p_vector_length(val args, size_t argc)
{
    (void)argc;
    return MKFIX(COUNT(check(A1, T_VECTOR, "vector")));
}

static val p_vector_to_list(val args, size_t argc)
{
    (void)argc;
    GC_BEGIN;
    val v = check(A1, T_VECTOR, "vector"), r = NIL;
    ROOT(v);
    ROOT(r);
    for (size_t i = COUNT(v); i-- > 0;)
        r = cons(VEC_ELTS(v)[i], r);
    GC_RETURN(r);
}

static val p_list_to_vector(val args, size_t argc)
{
    (void)argc;
    GC_BEGIN;
    ROOT(args);
    size_t n = list_length(A1);
    val v = make_vector(n, UNSPEC);
    size_t i = 0;
    for (val p = A1; PAIR_P(p); p = cdr(p))
        set_field(v, &VEC_ELTS(v)[i++], car(p));
    GC_RETURN(v);
}

static val p_vector_fill(val args, size_t argc)
{
    (void)argc;
    val v = check(A1, T_VECTOR, "vector");
    for (size_t i = 0; i < COUNT(v); i++)
        set_field(v, &VEC_ELTS(v)[i], A2);
    return UNSPEC;
}

/* ---------------------------------------------------------------- strings ---- */

static val p_string_append(val args, size_t argc)
{
    (void)argc;
    GC_BEGIN;
    ROOT(args);
    size_t n = 0;
    for (val p = args; PAIR_P(p); p = cdr(p))
        n += COUNT(check(car(p), T_STRING, "string"));
    val s = make_string(NULL, n);
    char *dst = STR_CHARS(s);
    for (val p = args; PAIR_P(p); p = cdr(p)) {
        memcpy(dst, STR_CHARS(car(p)), COUNT(car(p)));
        dst += COUNT(car(p));
    }
    GC_RETURN(s);
}

static void format_number(val v, char *buf, size_t len)
{
    if (FIXNUM_P(v)) {
        snprintf(buf, len, "%lld", (long long)FIXVAL(v));
        return;
    }
    FILE *f = fmemopen(buf, len, "w");
    print_val(f, v, 0);
    fclose(f);
}

static val p_number_to_string(val args, size_t argc)
{
    char buf[64];
    if (argc > 1 && FIXNUM_P(A1) && fix_arg(A2) != 10) {
        intptr_t radix = fix_arg(A2), n = FIXVAL(A1);
        if (radix < 2 || radix > 36)
            lisp_error("number->string: bad radix");
        char tmp[70], *p = tmp + sizeof tmp;
        *--p = 0;
        int neg = n < 0;
        unsigned long long u = neg ? -(unsigned long long)n : (unsigned long long)n;
        do {
            *--p = "0123456789abcdefghijklmnopqrstuvwxyz"[u % (unsigned)radix];
            u /= (unsigned)radix;
        } while (u);
        if (neg)
            *--p = '-';
        return make_string(p, strlen(p));
    }
    if (!num_p(A1))
        lisp_type_error("number", A1);
    format_number(A1, buf, sizeof buf);
    return make_string(buf, strlen(buf));
}

static val p_string_to_number(val args, size_t argc)
{
    (void)argc;
    val s = check(A1, T_STRING, "string");
    char *end;
    const char *c = STR_CHARS(s);
    if (!*c)
        return FALSE_V;
    long long n = strtoll(c, &end, 10);
    if (*end == 0 && n >= FIX_MIN && n <= FIX_MAX)
        return MKFIX(n);
    double d = strtod(c, &end);
    if (*end == 0)
        return make_flonum(d);
    return FALSE_V;
}

static val p_string_length(val args, size_t argc)
{
    (void)argc;
    return MKFIX(COUNT(check(A1, T_STRING, "string")));
}

static val p_substring(val args, size_t argc)
{
    GC_BEGIN;
    val s = check(A1, T_STRING, "string");
    ROOT(s);
    intptr_t start = fix_arg(A2);
    intptr_t end = argc > 2 ? fix_arg(A3) : (intptr_t)COUNT(s);
    if (start < 0 || end < start || (size_t)end > COUNT(s))
        lisp_error("substring: range [%lld, %lld) out of bounds", (long long)start, (long long)end);
    val r = make_string(NULL, (size_t)(end - start));
    memcpy(STR_CHARS(r), STR_CHARS(s) + start, (size_t)(end - start));
    GC_RETURN(r);
}

static val p_string_copy(val args, size_t argc)
{
    (void)argc;
    GC_BEGIN;
    val s = check(A1, T_STRING, "string");
    ROOT(s);
    val r = make_string(NULL, COUNT(s));
    memcpy(STR_CHARS(r), STR_CHARS(s), COUNT(s));
    GC_RETURN(r);
}

static val p_symbol_to_string(val args, size_t argc)
{
    (void)argc;
    GC_BEGIN;
    val s = check(A1, T_SYMBOL, "symbol");
    ROOT(s);
    val r = make_string(NULL, COUNT(s));
    memcpy(STR_CHARS(r), SYM_NAME(s), COUNT(s));
    GC_RETURN(r);
}

static val p_string_to_symbol(val args, size_t argc)
{
    (void)argc;
    return intern(STR_CHARS(check(A1, T_STRING, "string")));
}

static int str_cmp(val a, val b)
{
    check(a, T_STRING, "string");
    check(b, T_STRING, "string");
    size_t n = COUNT(a) < COUNT(b) ? COUNT(a) : COUNT(b);
    int c = memcmp(STR_CHARS(a), STR_CHARS(b), n);
    if (c)
        return c;
    return (COUNT(a) > COUNT(b)) - (COUNT(a) < COUNT(b));
}

static val p_string_eq(val args, size_t argc) { (void)argc; return BOOL(str_cmp(A1, A2) == 0); }
static val p_string_lt(val args, size_t argc) { (void)argc; return BOOL(str_cmp(A1, A2) < 0); }
static val p_string_gt(val args, size_t argc) { (void)argc; return BOOL(str_cmp(A1, A2) > 0); }

static val p_string_ref(val args, size_t argc)
{
    (void)argc;
    val s = check(A1, T_STRING, "string");
    return MKCHAR(STR_CHARS(s)[index_arg(A2, COUNT(s))]);
}

static val p_string_set(val args, size_t argc)
{
    (void)argc;
    val s = check(A1, T_STRING, "string");
    if (!CHAR_P(A3))
        lisp_type_error("char", A3);
    STR_CHARS(s)[index_arg(A2, COUNT(s))] = (char)CHARVAL(A3);
    return UNSPEC;
}

static val p_make_string(val args, size_t argc)
{
    intptr_t n = fix_arg(A1);
    if (n < 0)
        lisp_error("make-string: negative size");
    int c = argc > 1 ? CHARVAL(A2) : ' ';
    val s = make_string(NULL, (size_t)n);
    memset(STR_CHARS(s), c, (size_t)n);
    return s;
}

static val p_string_to_list(val args, size_t argc)
{
    (void)argc;
    GC_BEGIN;
    val s = check(A1, T_STRING, "string"), r = NIL;
    ROOT(s);
    ROOT(r);
    for (size_t i = COUNT(s); i-- > 0;)
        r = cons(MKCHAR(STR_CHARS(s)[i]), r);
    GC_RETURN(r);
}

static val p_list_to_string(val args, size_t argc)
{
    (void)argc;
    GC_BEGIN;
    ROOT(args);
    size_t n = list_length(A1);
    for (val p = A1; PAIR_P(p); p = cdr(p))
        if (!CHAR_P(car(p)))
            lisp_type_error("char", car(p));
    val s = make_string(NULL, n);
    size_t i = 0;
    for (val p = A1; PAIR_P(p); p = cdr(p))
        STR_CHARS(s)[i++] = (char)CHARVAL(car(p));
    GC_RETURN(s);
}

static val p_string_lit(val args, size_t argc)
{
    val l = cons(args, NIL);
    return p_list_to_string(l, argc);
}

static val case_map(val args, int (*fn)(int))
{
    val r = p_string_copy(args, 1);
    for (size_t i = 0; i < COUNT(r); i++)
        STR_CHARS(r)[i] = (char)fn((unsigned char)STR_CHARS(r)[i]);
    return r;
}

static int up(int c) { return c >= 'a' && c <= 'z' ? c - 32 : c; }
static int down(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
static val p_string_upcase(val args, size_t argc) { (void)argc; return case_map(args, up); }
static val p_string_downcase(val args, size_t argc) { (void)argc; return case_map(args, down); }

static val p_char_to_integer(val args, size_t argc)
{
    (void)argc;
    if (!CHAR_P(A1))
        lisp_type_error("char", A1);
    return MKFIX(CHARVAL(A1));
}

static val p_integer_to_char(val args, size_t argc) { (void)argc; return MKCHAR(fix_arg(A1) & 255); }
static val p_char_eq(val args, size_t argc) { (void)argc; return BOOL(A1 == A2); }
static val p_char_lt(val args, size_t argc) { (void)argc; return BOOL(CHARVAL(A1) < CHARVAL(A2)); }

/* ------------------------------------------------------------ I/O, misc ---- */

static void print_or_fail(val v, int write)
{
    int rc = print_val(stdout, v, write);
    if (rc == -1)
        lisp_error("cannot print a structure nested deeper than %d", LISP_MAX_DEPTH);
    if (rc < 0)
        lisp_error("out of memory for the printer");
}

static val p_display(val args, size_t argc)
{
    (void)argc;
    print_or_fail(A1, 0);
    if (STRING_P(A1))
        L.mid_line = COUNT(A1) ? STR_CHARS(A1)[COUNT(A1) - 1] != '\n' : L.mid_line;
    else
        L.mid_line = !(CHAR_P(A1) && CHARVAL(A1) == '\n');
    return UNSPEC;
}

static val p_write(val args, size_t argc)
{
    (void)argc;
    print_or_fail(A1, 1);
    L.mid_line = 1;
    return UNSPEC;
}

static val p_newline(val args, size_t argc)
{
    (void)args;
    (void)argc;
    fputc('\n', stdout);
    L.mid_line = 0;
    return UNSPEC;
}

static val p_error(val args, size_t argc)
{
    (void)argc;
    fflush(stdout);
    fputs("error: ", stderr);
    if (STRING_P(A1))
        fwrite(STR_CHARS(A1), 1, COUNT(A1), stderr);
    else
        print_brief(stderr, A1, 40);
    for (val p = cdr(args); PAIR_P(p); p = cdr(p)) {
        fputc(' ', stderr);
        print_brief(stderr, car(p), 40);
    }
    fputc('\n', stderr);
    lisp_raise();
}

/* (%map-lists 'who l ...): the prelude's map and for-each stop at the end of the
 * shortest list, so they would run forever only when every list is circular. */
static val p_map_lists(val args, size_t argc)
{
    (void)argc;
    for (val p = cdr(args); PAIR_P(p); p = cdr(p))
        if (list_count(car(p)) != LIST_CIRCULAR)
            return UNSPEC;
    L.who = SYMBOL_P(A1) ? SYM_NAME(A1) : NULL;
    lisp_error("circular list");
}

static val p_apply(val args, size_t argc)
{
    /* Handled by the evaluator, which applies in tail position. */
    (void)args;
    (void)argc;
    return UNSPEC;
}

static val p_gc(val args, size_t argc)
{
    (void)args;
    (void)argc;
    lisp_gc(0);
    return UNSPEC;
}

static val p_runtime(val args, size_t argc)
{
    (void)args;
    (void)argc;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return MKFIX((intptr_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static val p_exit(val args, size_t argc)
{
    fflush(stdout);
    exit(argc ? (int)fix_arg(A1) : 0);
}

const struct prim prims[] = {
    {"+", p_add, 0, -1},
    {"-", p_sub, 1, -1},
    {"*", p_mul, 0, -1},
    {"/", p_div, 1, -1},
    {"quotient", p_quotient, 2, 2},
    {"remainder", p_remainder, 2, 2},
    {"modulo", p_modulo, 2, 2},
    {"=", p_numeq, 1, -1},
    {"<", p_lt, 1, -1},
    {">", p_gt, 1, -1},
    {"<=", p_le, 1, -1},
    {">=", p_ge, 1, -1},
    {"zero?", p_zero, 1, 1},
    {"positive?", p_positive, 1, 1},
    {"negative?", p_negative, 1, 1},
    {"even?", p_even, 1, 1},
    {"odd?", p_odd, 1, 1},
    {"number?", p_number, 1, 1},
    {"integer?", p_integer, 1, 1},
    {"exact?", p_exact, 1, 1},
    {"inexact?", p_inexact, 1, 1},
    {"abs", p_abs, 1, 1},
    {"min", p_min, 1, -1},
    {"max", p_max, 1, -1},
    {"exact->inexact", p_to_inexact, 1, 1},
    {"inexact->exact", p_to_exact, 1, 1},
    {"inexact", p_to_inexact, 1, 1},
    {"exact", p_to_exact, 1, 1},
    {"floor", p_floor, 1, 1},
    {"ceiling", p_ceiling, 1, 1},
    {"round", p_round, 1, 1},
    {"truncate", p_truncate, 1, 1},
    {"sqrt", p_sqrt, 1, 1},
    {"expt", p_expt, 2, 2},
    {"not", p_not, 1, 1},
    {"boolean?", p_boolean, 1, 1},
    {"null?", p_null, 1, 1},
    {"pair?", p_pair, 1, 1},
    {"list?", p_list_p, 1, 1},
    {"symbol?", p_symbol, 1, 1},
    {"string?", p_string, 1, 1},
    {"vector?", p_vector, 1, 1},
    {"char?", p_char, 1, 1},
    {"procedure?", p_procedure, 1, 1},
    {"eq?", p_eq, 2, 2},
    {"eqv?", p_eqv, 2, 2},
    {"equal?", p_equal, 2, 2},
    {"cons", p_cons, 2, 2},
    {"car", p_car, 1, 1},
    {"cdr", p_cdr, 1, 1},
    {"caar", p_caar, 1, 1},
    {"cadr", p_cadr, 1, 1},
    {"cdar", p_cdar, 1, 1},
    {"cddr", p_cddr, 1, 1},
    {"caddr", p_caddr, 1, 1},
    {"cdddr", p_cdddr, 1, 1},
    {"cadddr", p_cadddr, 1, 1},
    {"set-car!", p_set_car, 2, 2},
    {"set-cdr!", p_set_cdr, 2, 2},
    {"list", p_list, 0, -1},
    {"length", p_length, 1, 1},
    {"append", p_append, 0, -1},
    {"reverse", p_reverse, 1, 1},
    {"reverse!", p_reverse_bang, 1, 1},
    {"list-tail", p_list_tail, 2, 2},
    {"list-ref", p_list_ref, 2, 2},
    {"list-copy", p_list_copy, 1, 1},
    {"memq", p_memq, 2, 2},
    {"memv", p_memv, 2, 2},
    {"member", p_member, 2, 2},
    {"assq", p_assq, 2, 2},
    {"assv", p_assv, 2, 2},
    {"assoc", p_assoc, 2, 2},
    {"make-vector", p_make_vector, 1, 2},
    {"vector", p_vector_lit, 0, -1},
    {"vector-ref", p_vector_ref, 2, 2},
    {"vector-set!", p_vector_set, 3, 3},
    {"vector-length", p_vector_length, 1, 1},
    {"vector->list", p_vector_to_list, 1, 1},
    {"list->vector", p_list_to_vector, 1, 1},
    {"vector-fill!", p_vector_fill, 2, 2},
    {"string-append", p_string_append, 0, -1},
    {"number->string", p_number_to_string, 1, 2},
    {"string->number", p_string_to_number, 1, 1},
    {"string-length", p_string_length, 1, 1},
    {"substring", p_substring, 2, 3},
    {"string-copy", p_string_copy, 1, 1},
    {"symbol->string", p_symbol_to_string, 1, 1},
    {"string->symbol", p_string_to_symbol, 1, 1},
    {"string=?", p_string_eq, 2, 2},
    {"string<?", p_string_lt, 2, 2},
    {"string>?", p_string_gt, 2, 2},
    {"string-ref", p_string_ref, 2, 2},
    {"string-set!", p_string_set, 3, 3},
    {"make-string", p_make_string, 1, 2},
    {"string->list", p_string_to_list, 1, 1},
    {"list->string", p_list_to_string, 1, 1},
    {"string", p_string_lit, 0, -1},
    {"string-upcase", p_string_upcase, 1, 1},
    {"string-downcase", p_string_downcase, 1, 1},
    {"char->integer", p_char_to_integer, 1, 1},
    {"integer->char", p_integer_to_char, 1, 1},
    {"char=?", p_char_eq, 2, 2},
    {"char<?", p_char_lt, 2, 2},
    {"display", p_display, 1, 1},
    {"write", p_write, 1, 1},
    {"newline", p_newline, 0, 0},
    {"error", p_error, 1, -1},
    {"%map-lists", p_map_lists, 2, -1},
    {"apply", p_apply, 2, -1},
    {"gc", p_gc, 0, 0},
    {"runtime", p_runtime, 0, 0},
    {"exit", p_exit, 0, 1},
};
size_t nprims = sizeof prims / sizeof *prims;

void prims_init(void)
{
    for (size_t i = 0; i < nprims; i++) {
        val s = intern(prims[i].name);
        set_field(s, &SYM_VALUE(s), MKPRIM(i));
        if (prims[i].fn == p_apply)
            prim_apply_index = i;
    }
}
