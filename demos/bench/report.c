/*
 * report.c -- the rows for a person: --summary prints a Markdown table (each row's value,
 * baseline, ratio, target, met or missed), --svg draws the ratios of the rows that have
 * a target against those targets on a log scale. Both use the rows kept by util.c, from
 * this run or read back from an earlier run's JSON (--from).
 */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define QUICK_NOTE "--quick: small sizes, not the README's conditions (those are `arena-bench --repeat 3`)"

/* The machine row (fault cost, kernel, date) when there is one. */
static const struct bench_rec *machine(void)
{
    size_t n;
    const struct bench_rec *r = bench_records(&n);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(r[i].bench, "machine"))
            return &r[i];
    return NULL;
}

static void fmt_value(char *out, size_t len, double v, const char *unit)
{
    if (isnan(v))
        snprintf(out, len, "—");
    else if (fabs(v) >= 1e4 || v == floor(v))
        snprintf(out, len, "%.0f %s", v, unit);
    else
        snprintf(out, len, "%.3g %s", v, unit);
}

static const char *verdict(const struct bench_rec *r)
{
    if (isnan(r->target))
        return "";
    if (isnan(r->ratio))
        return r->baseline == 0 ? "no ratio (baseline 0)" : "not measured";
    return r->ratio <= r->target ? "met" : "**missed**";
}

/* Whether the rows came from a --quick run (this one, or the one --from read). */
static bool was_quick(bool quick)
{
    const struct bench_rec *m = machine();
    return quick || (m && strstr(m->note, "--quick"));
}

void bench_summary(FILE *f, bool quick)
{
    const struct bench_rec *m = machine();
    quick = was_quick(quick);
    if (m)
        fprintf(f, "Minor page fault here: %.2f µs (first write to a fallocated memfd page, "
                   "measured in the same run)%s%s.\n",
                m->value / 1000, m->note[0] ? "; " : "", m->note);
    if (quick)
        fprintf(f, "\n**%s**\n", QUICK_NOTE);
    fputs("\n| row / metric | arena | baseline | ratio | target | |\n"
          "| --- | ---: | ---: | ---: | ---: | --- |\n", f);
    size_t n, met = 0, missed = 0;
    const struct bench_rec *r = bench_records(&n);
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(r[i].bench, "machine") || (isnan(r[i].ratio) && isnan(r[i].target) && !r[i].note[0]))
            continue;
        char v[48], b[48], ratio[32] = "—", target[32] = "—";
        fmt_value(v, sizeof v, r[i].value, r[i].unit);
        fmt_value(b, sizeof b, r[i].baseline, r[i].unit);
        if (!isnan(r[i].ratio))
            snprintf(ratio, sizeof ratio, "%.3g", r[i].ratio);
        if (!isnan(r[i].target))
            snprintf(target, sizeof target, "≤ %g", r[i].target);
        if (!isnan(r[i].target) && !isnan(r[i].ratio))
            r[i].ratio <= r[i].target ? met++ : missed++;
        fprintf(f, "| %s / %s | %s | %s | %s | %s | %s%s%s |\n", r[i].bench, r[i].metric, v, b,
                ratio, target, verdict(&r[i]), r[i].note[0] && verdict(&r[i])[0] ? ": " : "",
                r[i].note);
    }
    fprintf(f, "\nTargets met: %zu of %zu measured.\n", met, met + missed);
}

/* ------------------------------------------------------------------------ SVG -- */
static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: putc(*s, f);
        }
    }
}

int bench_svg(const char *path, bool quick)
{
    size_t n, rows = 0;
    const struct bench_rec *r = bench_records(&n);
    double lo = 1, hi = 1;
    for (size_t i = 0; i < n; i++) {
        if (isnan(r[i].target))
            continue;
        rows++;
        double vals[2] = {r[i].target, r[i].ratio};
        for (int k = 0; k < 2; k++)
            if (!isnan(vals[k]) && vals[k] > 0) {
                lo = fmin(lo, vals[k]);
                hi = fmax(hi, vals[k]);
            }
    }
    quick = was_quick(quick);
    FILE *f = fopen(path, "we");
    if (!f)
        return -1;
    const double left = 330, plot = 560, top = 108, lane = 22, right = 120;
    /* Whole decades, with room so no mark sits on the edge. */
    double e0 = floor(log10(lo) - 0.05), e1 = ceil(log10(hi) + 0.05);
    if (e1 - e0 < 2)
        e1 = e0 + 2;
    double width = left + plot + right, height = top + lane * (double)(rows ? rows : 1) + 60;
#define X(v) (left + plot * (log10(v) - e0) / (e1 - e0))
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">\n",
            width, height, width, height);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"12\" y=\"22\" font-size=\"16\" font-weight=\"bold\">arena-bench: "
               "arena / baseline (log scale), each row against its target</text>\n");
    const struct bench_rec *m = machine();
    fprintf(f, "<text x=\"12\" y=\"42\" fill=\"#444\">");
    if (m) {
        fprintf(f, "minor page fault %.2f µs", m->value / 1000);
        if (m->note[0]) {
            fputs("; ", f);
            xml_text(f, m->note);
        }
    }
    fputs("</text>\n<text x=\"12\" y=\"58\" fill=\"#444\">Left of a row's target mark is better; "
          "left of 1, the arena beats the baseline measured in the same run.</text>\n", f);
    if (quick) {
        fprintf(f, "<text x=\"12\" y=\"76\" fill=\"#b00\" font-weight=\"bold\">");
        xml_text(f, QUICK_NOTE);
        fputs("</text>\n", f);
    }
    /* Decades: grid lines and labels; the line at 1 is the baseline. */
    for (double e = e0; e <= e1; e++) {
        double x = X(pow(10, e));
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"%s\" stroke-width=\"%s\"/>\n",
                x, top - 8, x, top + lane * (double)rows, e == 0 ? "#555" : "#ccc", e == 0 ? "1.5" : "1");
        fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\" fill=\"#444\">%g</text>\n", x,
                top - 12, pow(10, e));
        fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\" fill=\"#444\">%g</text>\n", x,
                top + lane * (double)rows + 16, pow(10, e));
    }
    size_t row = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(r[i].target))
            continue;
        double y = top + lane * (double)row + lane / 2;
        if (row++ % 2)
            fprintf(f, "<rect x=\"0\" y=\"%.1f\" width=\"%.0f\" height=\"%.0f\" fill=\"#f4f4f4\"/>\n",
                    y - lane / 2, width, lane);
        fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">", left - 10, y + 4);
        xml_text(f, r[i].bench);
        fputs(" / ", f);
        xml_text(f, r[i].metric);
        fputs("</text>\n", f);
        double tx = X(r[i].target);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\" stroke-width=\"3\"/>\n",
                tx, y - 8, tx, y + 8);
        if (isnan(r[i].ratio) || r[i].ratio <= 0) {
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#888\">%s</text>\n", tx + 8, y + 4,
                    verdict(&r[i]));
            continue;
        }
        bool ok = r[i].ratio <= r[i].target;
        const char *colour = ok ? "#1a7f37" : "#cf222e";
        double x = X(r[i].ratio);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\" opacity=\"0.5\"/>\n",
                tx, y, x, y, colour);
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"%s\"/>\n", x, y, colour);
        fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" fill=\"%s\">%.3g %s</text>\n", left + plot + 14, y + 4,
                colour, r[i].ratio, ok ? "met" : "missed");
    }
    double ly = top + lane * (double)rows + 40;
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\" stroke-width=\"3\"/>"
               "<text x=\"%.0f\" y=\"%.0f\">target (ratio ≤ mark)</text>\n",
            left, ly - 8, left, ly + 8, left + 8, ly + 4);
    fprintf(f, "<circle cx=\"%.0f\" cy=\"%.0f\" r=\"6\" fill=\"#1a7f37\"/><text x=\"%.0f\" y=\"%.0f\">met</text>\n",
            left + 180, ly, left + 190, ly + 4);
    fprintf(f, "<circle cx=\"%.0f\" cy=\"%.0f\" r=\"6\" fill=\"#cf222e\"/><text x=\"%.0f\" y=\"%.0f\">missed</text>\n",
            left + 240, ly, left + 250, ly + 4);
    fputs("</svg>\n", f);
#undef X
    return fclose(f) ? -1 : 0;
}
