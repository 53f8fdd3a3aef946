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

static _Noreturn void incomplete(struct reader *r)
{
    r->incomplete = 1;
    lisp_error("unexpected end of input");
}

static val read_list(struct reader *r, int close)
{
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
            cdr(tail) = item;
            skip_space(r);
            if (peekc(r) == EOF)
                incomplete(r);
            if (getc_r(r) != close)
                lisp_error("expected '%c' after the dotted tail", close);
            GC_RETURN(head);
        }
        item = read_form(r);
        if (item == EOF_V)
            incomplete(r);
        item = cons(item, NIL);
        if (tail == NIL)
            head = item;
        else
            cdr(tail) = item;
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
    char buf[256];
    size_t n = 0;
    while (!delimiter(peekc(r))) {
        int c = getc_r(r);
        if (n + 1 < sizeof buf)
            buf[n++] = (char)c;
    }
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
            VEC_ELTS(v)[i++] = car(p);
        GC_RETURN(v);
    }
    if (c == '\\') {
        r->pos++;
        char buf[32];
        size_t n = 0;
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

void print_val(FILE *out, val v, int write)
{
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
        if (!write)
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
        case T_PAIR:
            fputc('(', out);
            for (;;) {
                print_val(out, car(v), write);
                v = cdr(v);
                if (!PAIR_P(v))
                    break;
                fputc(' ', out);
            }
            if (v != NIL) {
                fputs(" . ", out);
                print_val(out, v, write);
            }
            fputc(')', out);
            break;
        case T_SYMBOL: fputs(SYM_NAME(v), out); break;
        case T_STRING:
            if (!write) {
                fwrite(STR_CHARS(v), 1, COUNT(v), out);
                break;
            }
            fputc('"', out);
            for (size_t i = 0; i < COUNT(v); i++) {
                char c = STR_CHARS(v)[i];
                if (c == '"' || c == '\\')
                    fputc('\\', out);
                if (c == '\n')
                    fputs("\\n", out);
                else
                    fputc(c, out);
            }
            fputc('"', out);
            break;
        case T_VECTOR:
            fputs("#(", out);
            for (size_t i = 0; i < COUNT(v); i++) {
                if (i)
                    fputc(' ', out);
                print_val(out, VEC_ELTS(v)[i], write);
            }
            fputc(')', out);
            break;
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
