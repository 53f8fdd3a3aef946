/*
 * eval.c -- the evaluator: special forms, environments, closures, proper tail calls.
 *
 * eval() loops instead of recursing for every form in tail position (the branches
 * of if/cond/case/and/or/when/unless, the last form of a body, closure application),
 * so loops written as tail calls run in constant C stack and root stack.
 *
 * An environment is NIL (the global one: each symbol's value slot) or a frame
 * {parent, names, vals}: names is the closure's parameter list (shared, not copied)
 * and vals the freshly consed argument list, so a call costs its argument conses
 * plus one frame. An internal define conses onto both lists.
 */
#include <string.h>

#include "lisp.h"

enum special {
    SP_NONE,
    SP_QUOTE,
    SP_IF,
    SP_DEFINE,
    SP_SET,
    SP_LAMBDA,
    SP_BEGIN,
    SP_LET,
    SP_LETSTAR,
    SP_LETREC,
    SP_COND,
    SP_CASE,
    SP_AND,
    SP_OR,
    SP_WHEN,
    SP_UNLESS,
    SP_DO,
    SP_ELSE,
    SP_ARROW,
};

static const char *const special_names[] = {
    [SP_QUOTE] = "quote", [SP_IF] = "if",         [SP_DEFINE] = "define", [SP_SET] = "set!",
    [SP_LAMBDA] = "lambda", [SP_BEGIN] = "begin", [SP_LET] = "let",       [SP_LETSTAR] = "let*",
    [SP_LETREC] = "letrec", [SP_COND] = "cond",   [SP_CASE] = "case",     [SP_AND] = "and",
    [SP_OR] = "or",         [SP_WHEN] = "when",   [SP_UNLESS] = "unless", [SP_DO] = "do",
    [SP_ELSE] = "else",     [SP_ARROW] = "=>",
};

int special_id(const char *name)
{
    for (size_t i = 1; i < sizeof special_names / sizeof *special_names; i++)
        if (!strcmp(name, special_names[i]))
            return (int)i;
    if (!strcmp(name, "letrec*"))
        return SP_LETREC;
    return SP_NONE;
}

static val list_ref(val l, int i)
{
    while (i-- > 0) {
        if (!PAIR_P(l))
            lisp_error("malformed special form");
        l = cdr(l);
    }
    if (!PAIR_P(l))
        lisp_error("malformed special form");
    return car(l);
}

static val new_frame(val parent, val names, val vals)
{
    GC_BEGIN;
    ROOT(parent);
    ROOT(names);
    ROOT(vals);
    obj *o = alloc_obj(T_ENV, 3);
    o->f[0] = parent;
    o->f[1] = names;
    o->f[2] = vals;
    GC_END;
    return (val)o;
}

static val make_closure(val params, val body, val env, val name)
{
    GC_BEGIN;
    ROOT(params);
    ROOT(body);
    ROOT(env);
    ROOT(name);
    obj *o = alloc_obj(T_CLOSURE, 4);
    o->f[0] = params;
    o->f[1] = body;
    o->f[2] = env;
    o->f[3] = name;
    GC_END;
    return (val)o;
}

/* The variable's slot, and in *owner the object holding it (for the write barrier). */
static val *find_slot(val sym, val env, val *owner)
{
    for (val e = env; e != NIL; e = ENV_PARENT(e)) {
        val n = ENV_NAMES(e), v = ENV_VALS(e);
        for (; PAIR_P(n); n = cdr(n), v = cdr(v))
            if (car(n) == sym) {
                *owner = v;
                return &car(v);
            }
    }
    *owner = sym;
    return &SYM_VALUE(sym);
}

static val lookup(val sym, val env)
{
    val owner;
    val v = *find_slot(sym, env, &owner);
    if (v == UNBOUND)
        lisp_error("unbound variable %.200s", SYM_NAME(sym));
    return v;
}

static void define_var(val env, val sym, val value)
{
    if (env == NIL) {
        set_field(sym, &SYM_VALUE(sym), value);
        return;
    }
    val n = ENV_NAMES(env), v = ENV_VALS(env);
    for (; PAIR_P(n); n = cdr(n), v = cdr(v))
        if (car(n) == sym) {
            set_field(v, &car(v), value);
            return;
        }
    GC_BEGIN;
    ROOT(env);
    ROOT(sym);
    ROOT(value);
    val cell = cons(value, ENV_VALS(env));
    set_field(env, &ENV_VALS(env), cell);
    cell = cons(sym, ENV_NAMES(env));
    set_field(env, &ENV_NAMES(env), cell);
    GC_END;
}

/* A frame binding params to args. args is a fresh list owned by the call, so it
 * becomes the frame's vals directly; only a rest parameter needs new conses. */
static val bind_args(val f, val args)
{
    val params = CLO_PARAMS(f);
    val p = params, a = args;
    size_t n = 0;
    for (; PAIR_P(p); p = cdr(p), a = cdr(a), n++)
        if (!PAIR_P(a))
            goto arity;
    if (p == NIL) {
        if (a != NIL)
            goto arity;
        return new_frame(CLO_ENV(f), params, args);
    }
    /* (a b . rest) or a bare symbol: names = (a b rest), vals = (x y (rest...)). */
    {
        GC_BEGIN;
        ROOT(f);
        ROOT(args);
        val names = NIL, vals = NIL, tmp = NIL, rest = p;
        ROOT(rest);
        ROOT(names);
        ROOT(vals);
        ROOT(tmp);
        tmp = args;
        for (size_t i = 0; i < n; i++)
            tmp = cdr(tmp);
        vals = cons(tmp, NIL);
        names = cons(rest, NIL);
        /* Prepend the fixed parameters in reverse order. */
        for (size_t i = n; i-- > 0;) {
            tmp = args;
            for (size_t k = 0; k < i; k++)
                tmp = cdr(tmp);
            tmp = cons(car(tmp), vals);
            vals = tmp;
            tmp = CLO_PARAMS(f);
            for (size_t k = 0; k < i; k++)
                tmp = cdr(tmp);
            tmp = cons(car(tmp), names);
            names = tmp;
        }
        GC_RETURN(new_frame(CLO_ENV(f), names, vals));
    }
arity:
    if (SYMBOL_P(CLO_NAME(f)))
        lisp_error("wrong number of arguments to %s", SYM_NAME(CLO_NAME(f)));
    lisp_error("wrong number of arguments to a procedure");
}

static val reverse_in_place(val l)
{
    val r = NIL;
    while (PAIR_P(l)) {
        val next = cdr(l);
        set_field(l, &cdr(l), r);
        r = l;
        l = next;
    }
    return r;
}

static void check_prim_arity(val f, size_t argc)
{
    const struct prim *p = &prims[PRIMIDX(f)];
    if ((int)argc < p->min || (p->max >= 0 && (int)argc > p->max))
        lisp_error("wrong number of arguments to %s", p->name);
}

val eval(val x, val env)
{
    GC_BEGIN;
    ROOT(x);
    ROOT(env);
    val f = NIL, args = NIL, tail = NIL, tmp = NIL, body = NIL;
    ROOT(f);
    ROOT(args);
    ROOT(tail);
    ROOT(tmp);
    ROOT(body);
    val result = UNSPEC;
    if (++L.depth > LISP_MAX_DEPTH)
        lisp_error("recursion deeper than %d calls", LISP_MAX_DEPTH);

loop:
    if (!PTR_P(x)) {
        result = x;
        goto done;
    }
    if (TYPE(x) == T_SYMBOL) {
        result = lookup(x, env);
        goto done;
    }
    if (TYPE(x) != T_PAIR) {
        result = x;
        goto done;
    }
    f = car(x);
    if (SYMBOL_P(f) && AUX(f) != SP_NONE) {
        switch (AUX(f)) {
        case SP_QUOTE:
            result = list_ref(x, 1);
            goto done;
        case SP_IF:
            tmp = eval(list_ref(x, 1), env);
            if (tmp != FALSE_V) {
                x = list_ref(x, 2);
            } else {
                tmp = cdr(cdr(cdr(x)));
                if (!PAIR_P(tmp)) {
                    result = UNSPEC;
                    goto done;
                }
                x = car(tmp);
            }
            goto loop;
        case SP_DEFINE:
            tmp = list_ref(x, 1);
            if (PAIR_P(tmp)) {
                f = car(tmp);
                body = make_closure(cdr(tmp), cdr(cdr(x)), env, f);
            } else {
                f = tmp;
                body = PAIR_P(cdr(cdr(x))) ? eval(list_ref(x, 2), env) : UNSPEC;
                if (IS(body, T_CLOSURE) && !SYMBOL_P(CLO_NAME(body)))
                    set_field(body, &CLO_NAME(body), f);
            }
            if (!SYMBOL_P(f))
                lisp_error("define: not a symbol");
            define_var(env, f, body);
            result = UNSPEC;
            goto done;
        case SP_SET:
            f = list_ref(x, 1);
            if (!SYMBOL_P(f))
                lisp_error("set!: not a symbol");
            tmp = eval(list_ref(x, 2), env);
            {
                val owner;
                val *slot = find_slot(f, env, &owner);
                if (*slot == UNBOUND)
                    lisp_error("set!: unbound variable %.200s", SYM_NAME(f));
                set_field(owner, slot, tmp);
            }
            result = UNSPEC;
            goto done;
        case SP_LAMBDA:
            result = make_closure(list_ref(x, 1), cdr(cdr(x)), env, FALSE_V);
            goto done;
        case SP_BEGIN:
            body = cdr(x);
            if (body == NIL) {
                result = UNSPEC;
                goto done;
            }
            goto run_body;
        case SP_LET: {
            /* (let ((v init) ...) body) or, named, (let name ((v init) ...) body) */
            int named = SYMBOL_P(list_ref(x, 1));
            int at = named ? 2 : 1;
            /* names and vals in binding order */
            for (tmp = list_ref(x, at); PAIR_P(tmp); tmp = cdr(tmp)) {
                body = eval(list_ref(car(tmp), 1), env);
                body = cons(body, NIL);
                if (args == NIL)
                    args = body;
                else
                    set_field(tail, &cdr(tail), body);
                tail = body;
            }
            f = NIL;
            tail = NIL;
            for (tmp = list_ref(x, at); PAIR_P(tmp); tmp = cdr(tmp)) {
                body = cons(car(car(tmp)), NIL);
                if (f == NIL)
                    f = body;
                else
                    set_field(tail, &cdr(tail), body);
                tail = body;
            }
            if (!named) {
                env = new_frame(env, f, args);
                body = cdr(cdr(x));
                goto run_body;
            }
            /* The name is bound in a frame of its own, to a closure over that frame. */
            env = new_frame(env, NIL, NIL);
            f = make_closure(f, cdr(cdr(cdr(x))), env, list_ref(x, 1));
            define_var(env, list_ref(x, 1), f);
            goto apply;
        }
        case SP_LETSTAR:
        case SP_LETREC:
            /* One frame, bindings added in order: let* and letrec* semantics (letrec
             * programs that only bind lambdas cannot tell the difference). */
            env = new_frame(env, NIL, NIL);
            for (tmp = list_ref(x, 1); PAIR_P(tmp); tmp = cdr(tmp)) {
                body = eval(list_ref(car(tmp), 1), env);
                if (IS(body, T_CLOSURE) && !SYMBOL_P(CLO_NAME(body)))
                    set_field(body, &CLO_NAME(body), car(car(tmp)));
                define_var(env, car(car(tmp)), body);
            }
            body = cdr(cdr(x));
            goto run_body;
        case SP_COND:
            for (tail = cdr(x); PAIR_P(tail); tail = cdr(tail)) {
                tmp = car(tail);
                if (SYMBOL_P(car(tmp)) && AUX(car(tmp)) == SP_ELSE) {
                    body = cdr(tmp);
                    goto run_body;
                }
                f = eval(car(tmp), env);
                if (f == FALSE_V)
                    continue;
                tmp = car(tail);
                if (cdr(tmp) == NIL) {
                    result = f;
                    goto done;
                }
                if (SYMBOL_P(car(cdr(tmp))) && AUX(car(cdr(tmp))) == SP_ARROW) {
                    args = cons(f, NIL);
                    f = eval(list_ref(tmp, 2), env);
                    goto apply;
                }
                body = cdr(tmp);
                goto run_body;
            }
            result = UNSPEC;
            goto done;
        case SP_CASE:
            f = eval(list_ref(x, 1), env);
            for (tail = cdr(cdr(x)); PAIR_P(tail); tail = cdr(tail)) {
                tmp = car(car(tail));
                if (SYMBOL_P(tmp) && AUX(tmp) == SP_ELSE) {
                    body = cdr(car(tail));
                    goto run_body;
                }
                for (; PAIR_P(tmp); tmp = cdr(tmp))
                    if (lisp_eqv(car(tmp), f)) {
                        body = cdr(car(tail));
                        goto run_body;
                    }
            }
            result = UNSPEC;
            goto done;
        case SP_AND:
        case SP_OR: {
            int is_and = AUX(f) == SP_AND;
            tail = cdr(x);
            if (tail == NIL) {
                result = BOOL(is_and);
                goto done;
            }
            for (; PAIR_P(cdr(tail)); tail = cdr(tail)) {
                tmp = eval(car(tail), env);
                if ((tmp == FALSE_V) == is_and) {
                    result = tmp;
                    goto done;
                }
            }
            x = car(tail);
            goto loop;
        }
        case SP_WHEN:
        case SP_UNLESS:
            tmp = eval(list_ref(x, 1), env);
            if ((tmp != FALSE_V) == (AUX(car(x)) == SP_WHEN) && PAIR_P(cdr(cdr(x)))) {
                body = cdr(cdr(x));
                goto run_body;
            }
            result = UNSPEC;
            goto done;
        case SP_DO:
            /* (do ((var init step)...) (test expr...) command...): a fresh frame per
             * iteration, so closures capture each iteration's variables. */
            f = new_frame(env, NIL, NIL);
            for (tmp = list_ref(x, 1); PAIR_P(tmp); tmp = cdr(tmp)) {
                body = eval(list_ref(car(tmp), 1), env);
                define_var(f, car(car(tmp)), body);
            }
            for (;;) {
                tmp = eval(car(list_ref(x, 2)), f);
                if (tmp != FALSE_V)
                    break;
                for (tail = cdr(cdr(cdr(x))); PAIR_P(tail); tail = cdr(tail))
                    eval(car(tail), f);
                args = new_frame(env, NIL, NIL);
                for (tmp = list_ref(x, 1); PAIR_P(tmp); tmp = cdr(tmp)) {
                    tail = car(tmp);
                    body = PAIR_P(cdr(cdr(tail))) ? eval(list_ref(tail, 2), f) : eval(car(tail), f);
                    define_var(args, car(car(tmp)), body);
                }
                f = args;
                args = NIL;
            }
            env = f;
            body = cdr(list_ref(x, 2));
            if (body == NIL) {
                result = UNSPEC;
                goto done;
            }
            goto run_body;
        default:
            break;
        }
    }

    /* application */
    f = eval(f, env);
    for (tmp = cdr(x); PAIR_P(tmp); tmp = cdr(tmp)) {
        body = eval(car(tmp), env);
        body = cons(body, NIL);
        if (args == NIL)
            args = body;
        else
            set_field(tail, &cdr(tail), body);
        tail = body;
    }

apply:
    if (PRIM_P(f)) {
        size_t argc = 0;
        for (tmp = args; PAIR_P(tmp); tmp = cdr(tmp))
            argc++;
        check_prim_arity(f, argc);
        if (PRIMIDX(f) == prim_apply_index) {
            /* (apply f a b '(c d)): spread the last argument, then apply in tail position. */
            f = car(args);
            args = cdr(args);
            /* The spread list is the caller's data: copy it, since a frame's vals
             * may be assigned by set!. */
            for (tail = args; PAIR_P(cdr(tail)); tail = cdr(tail))
                ;
            tmp = car(tail);
            L.who = "apply";
            list_length(tmp);
            L.who = NULL;
            body = NIL;
            for (; PAIR_P(tmp); tmp = cdr(tmp))
                body = cons(car(tmp), body);
            body = reverse_in_place(body);
            if (cdr(args) == NIL) {
                args = body;
            } else {
                for (tail = args; PAIR_P(cdr(cdr(tail))); tail = cdr(tail))
                    ;
                set_field(tail, &cdr(tail), body);
            }
            goto apply;
        }
        L.who = prims[PRIMIDX(f)].name;
        result = prims[PRIMIDX(f)].fn(args, argc);
        L.who = NULL;
        goto done;
    }
    if (!IS(f, T_CLOSURE))
        lisp_error_val(f, "not a procedure: ");
    env = bind_args(f, args);
    body = CLO_BODY(f);
    args = NIL;
    tail = NIL;

run_body:
    while (PAIR_P(cdr(body))) {
        eval(car(body), env);
        body = cdr(body);
    }
    x = car(body);
    f = args = tail = tmp = body = NIL;
    goto loop;

done:
    L.depth--;
    GC_END;
    return result;
}

static const char prelude[] =
    "(define (map f l . ls)"
    "  (apply %map-lists 'map l ls)"
    "  (if (null? ls)"
    "      (let loop ((l l) (acc '()))"
    "        (if (null? l) (reverse! acc) (loop (cdr l) (cons (f (car l)) acc))))"
    "      (let loop ((l l) (m (car ls)) (acc '()))"
    "        (if (or (null? l) (null? m)) (reverse! acc)"
    "            (loop (cdr l) (cdr m) (cons (f (car l) (car m)) acc))))))"
    "(define (for-each f l . ls)"
    "  (apply %map-lists 'for-each l ls)"
    "  (if (null? ls)"
    "      (let loop ((l l)) (if (pair? l) (begin (f (car l)) (loop (cdr l)))))"
    "      (let loop ((l l) (m (car ls)))"
    "        (if (and (pair? l) (pair? m)) (begin (f (car l) (car m)) (loop (cdr l) (cdr m)))))))"
    "(define (vector-map f v)"
    "  (let* ((n (vector-length v)) (r (make-vector n 0)))"
    "    (do ((i 0 (+ i 1))) ((= i n) r) (vector-set! r i (f (vector-ref v i))))))"
    "(define (vector-for-each f v)"
    "  (do ((i 0 (+ i 1))) ((= i (vector-length v))) (f (vector-ref v i))))"
    "(define (filter p l)"
    "  (%map-lists 'filter l)"
    "  (let loop ((l l) (acc '()))"
    "    (cond ((null? l) (reverse! acc)) ((p (car l)) (loop (cdr l) (cons (car l) acc)))"
    "          (else (loop (cdr l) acc)))))"
    "(define (fold-left f acc l)"
    "  (%map-lists 'fold-left l)"
    "  (let loop ((acc acc) (l l)) (if (null? l) acc (loop (f acc (car l)) (cdr l)))))"
    "(define (fold-right f acc l)"
    "  (%map-lists 'fold-right l)"
    "  (let loop ((l l)) (if (null? l) acc (f (car l) (loop (cdr l))))))"
    "(define (reduce f init l) (if (null? l) init (fold-left f (car l) (cdr l))))"
    "(define (assert-equal what got want)"
    "  (if (not (equal? got want))"
    "      (error \"assertion failed\" what got want)))";

void eval_init(void)
{
    prims_init();
    struct reader r = {prelude, 0, sizeof prelude - 1, 0, 0};
    GC_BEGIN;
    val form = NIL;
    ROOT(form);
    while ((form = read_form(&r)) != EOF_V)
        eval(form, NIL);
    GC_END;
}
