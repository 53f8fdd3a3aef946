/*
 * read.c -- the reader (text -> data) and the printer (data -> text).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lisp.h"

static int peekc(struct reader *r)
{
    return r->pos < r->len ? (unsigned char)r->s[r->pos] : EOF;
}

static int getc_r(struct reader *r)
{
    return r->pos < r->len ? (unsigned char)r->s[r->pos++] : EOF;
}

static void skip_space(struct reader *r)
{
    for (;;) {
        int c = peekc(r);
        if (c == ';') {
            while (c != EOF && c != '\n')
                c = getc_r(r);
        } else if (c != EOF && isspace(c)) {
            r->pos++;
        } else {
            return;
        }
    }
}

static int delimiter(int c)
{
    return c == EOF || isspace(c) || c == '(' || c == ')' || c == '"' || c == ';' || c == '\'';
}

/* The caller decides what the end of input means: more input may follow (a REPL
 * line), or it is an error it reports itself. */
static _Noreturn void incomplete(struct reader *r)
{
    r->incomplete = 1;
    lisp_raise();
}

static void enter(struct reader *r)
{
    if (++r->depth > LISP_MAX_DEPTH)
        lisp_error("input nested deeper than %d", LISP_MAX_DEPTH);
}

static val read_list(struct reader *r, int close)
{
    enter(r);
    GC_BEGIN;
    val head = NIL, tail = NIL, item = NIL;
    ROOT(head);
    ROOT(tail);
    ROOT(item);
    for (;;) {
        skip_space(r);
        int c = peekc(r);
        if (c == EOF)
            incomplete(r);
        if (c == close) {
            r->pos++;
            r->depth--;
            GC_RETURN(head);
        }
        if (c == ')' || c == ']')
            lisp_error("unbalanced '%c'", c);
        if (c == '.' && r->pos + 1 <= r->len &&
            delimiter(r->pos + 1 < r->len ? (unsigned char)r->s[r->pos + 1] : EOF)) {
            r->pos++;
            if (tail == NIL)
                lisp_error("'.' at the start of a list");
            item = read_form(r);
            set_field(tail, &cdr(tail), item);
            skip_space(r);
            if (peekc(r) == EOF)
                incomplete(r);
            if (getc_r(r) != close)
                lisp_error("expected '%c' after the dotted tail", close);
            r->depth--;
            GC_RETURN(head);
        }
        item = read_form(r);
        if (item == EOF_V)
            incomplete(r);
        item = cons(item, NIL);
        if (tail == NIL)
            head = item;
        else
            set_field(tail, &cdr(tail), item);
        tail = item;
    }
}

static val read_string(struct reader *r)
{
    size_t cap = 64, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        int c = getc_r(r);
        if (c == EOF) {
            free(buf);
            incomplete(r);
        }
        if (c == '"')
            break;
        if (c == '\\') {
            c = getc_r(r);
            switch (c) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case EOF: free(buf); incomplete(r);
            default: break;
            }
        }
        if (n + 1 >= cap)
            buf = realloc(buf, cap *= 2);
        buf[n++] = (char)c;
    }
    val s = make_string(buf, n);
    free(buf);
    return s;
}

static val read_atom(struct reader *r)
{
    /* A token is as long as the input makes it; the buffer is kept (a longjmp may
     * leave at any allocation, so nothing here may need freeing). */
    static char *buf;
    static size_t cap;
    size_t start = r->pos, n;
    while (!delimiter(peekc(r)))
        r->pos++;
    n = r->pos - start;
    if (n + 1 > cap) {
        char *b = realloc(buf, n + 1);
        if (!b)
            lisp_error("out of memory for a %zu-byte token", n);
        buf = b;
        cap = n + 1;
    }
    memcpy(buf, r->s + start, n);
    buf[n] = 0;
    char *end;
    errno = 0;
    long long ll = strtoll(buf, &end, 10);
    if (n && *end == 0 && errno == 0 && ll >= FIX_MIN && ll <= FIX_MAX)
        return MKFIX(ll);
    if (n && (isdigit((unsigned char)buf[0]) || ((buf[0] == '-' || buf[0] == '+' || buf[0] == '.') && n > 1))) {
        double d = strtod(buf, &end);
        if (*end == 0)
            return make_flonum(d);
    }
    return intern(buf);
}

static val read_hash(struct reader *r)
{
    r->pos++; /* '#' */
    int c = peekc(r);
    if (c == '(') {
        r->pos++;
        GC_BEGIN;
        val items = read_list(r, ')');
        ROOT(items);
        size_t n = 0;
        for (val p = items; PAIR_P(p); p = cdr(p))
            n++;
        val v = make_vector(n, UNSPEC);
        size_t i = 0;
        for (val p = items; PAIR_P(p); p = cdr(p))
            set_field(v, &VEC_ELTS(v)[i++], car(p));
        GC_RETURN(v);
    }
    if (c == '\\') {
        r->pos++;
        char buf[32];
        size_t n = 0;
        if (peekc(r) == EOF)
            incomplete(r);
        buf[n++] = (char)getc_r(r);
        while (!delimiter(peekc(r)) && n + 1 < sizeof buf)
            buf[n++] = (char)getc_r(r);
        buf[n] = 0;
        if (n == 1)
            return MKCHAR(buf[0]);
        if (!strcmp(buf, "space"))
            return MKCHAR(' ');
        if (!strcmp(buf, "newline"))
            return MKCHAR('\n');
        if (!strcmp(buf, "tab"))
            return MKCHAR('\t');
        lisp_error("unknown character #\\%s", buf);
    }
    char buf[16];
    size_t n = 0;
    while (!delimiter(peekc(r)) && n + 1 < sizeof buf)
        buf[n++] = (char)getc_r(r);
    buf[n] = 0;
    if (!strcmp(buf, "t") || !strcmp(buf, "true"))
        return TRUE_V;
    if (!strcmp(buf, "f") || !strcmp(buf, "false"))
        return FALSE_V;
    lisp_error("unknown syntax #%s", buf);
}

val read_form(struct reader *r)
{
    skip_space(r);
    int c = peekc(r);
    if (c == EOF)
        return EOF_V;
    if (c == '(' || c == '[') {
        r->pos++;
        return read_list(r, c == '(' ? ')' : ']');
    }
    if (c == ')' || c == ']') {
        r->pos++;
        lisp_error("unbalanced '%c'", c);
    }
    if (c == '\'' || c == '`' || c == ',') {
        r->pos++;
        enter(r);
        const char *q = c == '\'' ? "quote" : c == '`' ? "quasiquote" : "unquote";
        if (c == ',' && peekc(r) == '@') {
            r->pos++;
            q = "unquote-splicing";
        }
        GC_BEGIN;
        val form = read_form(r);
        ROOT(form);
        if (form == EOF_V)
            incomplete(r);
        val sym = intern(q);
        r->depth--;
        GC_RETURN(list2(sym, form));
    }
    if (c == '"') {
        r->pos++;
        return read_string(r);
    }
    if (c == '#')
        return read_hash(r);
    return read_atom(r);
}

/* ------------------------------------------------------------------ printer ---- */

static void print_double(FILE *out, double d)
{
    char buf[64];
    if (isnan(d)) {
        fputs("+nan.0", out);
        return;
    }
    if (isinf(d)) {
        fputs(d > 0 ? "+inf.0" : "-inf.0", out);
        return;
    }
    /* The shortest of %.15g..%.17g that reads back exactly: deterministic output. */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (!strpbrk(buf, ".e"))
        strcat(buf, ".0");
    fputs(buf, out);
}

/* Datum labels for circular structure (R7RS 6.13.3: write marks at least the objects
 * that form a cycle). A first pass walks the pairs and vectors depth first and flags
 * each one reached again while it is still being walked (the classic back-edge test);
 * the printer gives those #n= on their first appearance and #n# afterwards. Shared
 * structure outside a cycle prints in full each time, as it would without labels.
 * The printer never allocates in the heap, so addresses stay put throughout. */
enum { SEEN_OPEN = -1, SEEN_DONE = -2, SEEN_CYCLE = -3 }; /* >= 0: the label given */

struct seen {
    val key;
    intptr_t state;
};

struct printer {
    FILE *out;
    int write;
    long items_left; /* print_brief's budget; -1 for no limit */
    struct seen *tab; /* open addressing, at most half full */
    size_t cap, n, max_n;
    intptr_t labels;
};

static struct seen *seen_find(const struct printer *p, val v)
{
    uint64_t h = v >> 4;
    h = (h ^ (h >> 31)) * 0xbf58476d1ce4e5b9u;
    h ^= h >> 29;
    size_t i = (size_t)h & (p->cap - 1);
    while (p->tab[i].key && p->tab[i].key != v)
        i = (i + 1) & (p->cap - 1);
    return &p->tab[i];
}

static int seen_add(struct printer *p, val v)
{
    if (p->n == p->max_n)
        return -3;
    if (2 * (p->n + 1) > p->cap) {
        struct printer q = *p;
        q.cap = p->cap ? 2 * p->cap : 256;
        q.tab = calloc(q.cap, sizeof *q.tab);
        if (!q.tab)
            return -2;
        for (size_t i = 0; i < p->cap; i++)
            if (p->tab[i].key)
                *seen_find(&q, p->tab[i].key) = p->tab[i];
        free(p->tab);
        *p = q;
    }
    struct seen *e = seen_find(p, v);
    *e = (struct seen){v, SEEN_OPEN};
    p->n++;
    return 0;
}

static int compound(val v)
{
    return PAIR_P(v) || IS(v, T_VECTOR);
}

/* The first pass: 0, -1 nested deeper than LISP_MAX_DEPTH, -2 out of memory, -3 more
 * than max_n pairs and vectors. Recurses
 * on cars and vector elements only; a list's spine is a loop. */
static int scan(struct printer *p, val v, size_t depth)
{
    if (depth > LISP_MAX_DEPTH)
        return -1;
    val start = v;
    size_t n = 0;
    for (; compound(v); v = cdr(v)) {
        if (p->cap) {
            struct seen *e = seen_find(p, v);
            if (e->key) {
                if (e->state == SEEN_OPEN)
                    e->state = SEEN_CYCLE;
                break;
            }
        }
        if (seen_add(p, v) != 0)
            return -2;
        n++;
        if (IS(v, T_VECTOR)) {
            for (size_t i = 0; i < COUNT(v); i++) {
                int rc = scan(p, VEC_ELTS(v)[i], depth + 1);
                if (rc)
                    return rc;
            }
            break;
        }
        int rc = scan(p, car(v), depth + 1);
        if (rc)
            return rc;
    }
    /* The spine just walked is no longer open. */
    v = start;
    for (size_t i = 0; i < n; i++, v = PAIR_P(v) ? cdr(v) : v) {
        struct seen *e = seen_find(p, v);
        if (e->state == SEEN_OPEN)
            e->state = SEEN_DONE;
    }
    return 0;
}

/* Print #n# and return 1 if v was printed before with a label; print #n= if v needs
 * one. Without a table (print_brief of a large structure), nothing. */
static int print_label(struct printer *p, val v)
{
    if (!p->cap)
        return 0;
    struct seen *e = seen_find(p, v);
    if (e->state >= 0) {
        fprintf(p->out, "#%ld#", (long)e->state);
        return 1;
    }
    if (e->state == SEEN_CYCLE) {
        e->state = p->labels++;
        fprintf(p->out, "#%ld=", (long)e->state);
    }
    return 0;
}

/* Does the list continue plainly after this pair, or must v print as a dotted,
 * labelled tail? */
static int plain_tail(const struct printer *p, val v)
{
    return PAIR_P(v) && (!p->cap || seen_find(p, v)->state == SEEN_DONE);
}

/* Text of n bytes, cut short under print_brief. */
static void print_text(struct printer *p, const char *s, size_t n)
{
    if (p->items_left >= 0 && n > 100) {
        fwrite(s, 1, 100, p->out);
        fputs("...", p->out);
        return;
    }
    fwrite(s, 1, n, p->out);
}

static void print_string(struct printer *p, val v)
{
    size_t n = COUNT(v);
    if (!p->write) {
        print_text(p, STR_CHARS(v), n);
        return;
    }
    if (p->items_left >= 0 && n > 100)
        n = 100;
    fputc('"', p->out);
    for (size_t i = 0; i < n; i++) {
        char c = STR_CHARS(v)[i];
        if (c == '"' || c == '\\')
            fputc('\\', p->out);
        if (c == '\n')
            fputs("\\n", p->out);
        else
            fputc(c, p->out);
    }
    fputs(n < COUNT(v) ? "...\"" : "\"", p->out);
}

static void print_atom(struct printer *p, val v)
{
    FILE *out = p->out;
    if (FIXNUM_P(v)) {
        fprintf(out, "%lld", (long long)FIXVAL(v));
    } else if (v == NIL) {
        fputs("()", out);
    } else if (v == TRUE_V) {
        fputs("#t", out);
    } else if (v == FALSE_V) {
        fputs("#f", out);
    } else if (v == UNSPEC || v == UNBOUND) {
        fputs("#<unspecified>", out);
    } else if (v == EOF_V) {
        fputs("#<eof>", out);
    } else if (CHAR_P(v)) {
        int c = CHARVAL(v);
        if (!p->write)
            fputc(c, out);
        else if (c == ' ')
            fputs("#\\space", out);
        else if (c == '\n')
            fputs("#\\newline", out);
        else
            fprintf(out, "#\\%c", c);
    } else if (PRIM_P(v)) {
        fprintf(out, "#<primitive %s>", prims[PRIMIDX(v)].name);
    } else {
        switch (TYPE(v)) {
        case T_SYMBOL: print_text(p, SYM_NAME(v), COUNT(v)); break;
        case T_STRING: print_string(p, v); break;
        case T_CLOSURE:
            if (SYMBOL_P(CLO_NAME(v)))
                fprintf(out, "#<procedure %s>", SYM_NAME(CLO_NAME(v)));
            else
                fputs("#<procedure>", out);
            break;
        case T_FLONUM: print_double(out, FLO(v)); break;
        case T_ENV: fputs("#<environment>", out); break;
        default: fprintf(out, "#<object type %d>", TYPE(v)); break;
        }
    }
}

/* Out of budget (print_brief): print "..." once instead. */
static int spent(struct printer *p)
{
    if (p->items_left < 0)
        return 0;
    if (p->items_left == 0) {
        fputs("...", p->out);
        return 1;
    }
    p->items_left--;
    return 0;
}

static void print_any(struct printer *p, val v, size_t depth)
{
    /* Shared (acyclic) structure reprints in full, and a path through it may be longer
     * than the scan's depth bound: the C stack still holds this one. */
    if (depth > 8 * LISP_MAX_DEPTH) {
        fputs("...", p->out);
        return;
    }
    if (spent(p))
        return;
    if (!compound(v)) {
        print_atom(p, v);
        return;
    }
    if (print_label(p, v))
        return;
    if (IS(v, T_VECTOR)) {
        fputs("#(", p->out);
        for (size_t i = 0; i < COUNT(v); i++) {
            if (i)
                fputc(' ', p->out);
            print_any(p, VEC_ELTS(v)[i], depth + 1);
            if (p->items_left == 0 && i + 1 < COUNT(v)) {
                fputs(" ...", p->out);
                break;
            }
        }
        fputc(')', p->out);
        return;
    }
    fputc('(', p->out);
    for (;;) {
        print_any(p, car(v), depth + 1);
        v = cdr(v);
        if (p->items_left == 0 && v != NIL) {
            fputs(" ...)", p->out);
            return;
        }
        if (!plain_tail(p, v))
            break;
        fputc(' ', p->out);
    }
    if (v != NIL) {
        fputs(" . ", p->out);
        print_any(p, v, depth + 1);
    }
    fputc(')', p->out);
}

int print_val(FILE *out, val v, int write)
{
    struct printer p = {.out = out, .write = write, .items_left = -1, .max_n = SIZE_MAX};
    int rc = compound(v) ? scan(&p, v, 0) : 0;
    if (rc == 0)
        print_any(&p, v, 0);
    free(p.tab);
    return rc;
}

void print_brief(FILE *out, val v, size_t limit)
{
    /* Labels when the structure is small; else none: the budget ends a cycle too. */
    struct printer p = {.out = out, .write = 1, .items_left = (long)limit, .max_n = 4096};
    if (compound(v) && scan(&p, v, 0) != 0) {
        free(p.tab);
        p.tab = NULL;
        p.cap = p.n = 0;
    }
    print_any(&p, v, 0);
    free(p.tab);
}
