/*
 * heapmap.c -- arena-compaction's SVG figure (see heapmap.h).
 *
 * Layout: a title and a line saying what a cell and a row are; the heap before the collection
 * (how full of survivors each page is) beside the two legends; then one column per compactor:
 * what happened to each page (in the layout before), where each page's contents came from (in
 * the layout after), and the numbers of that collection. Every panel has an address scale
 * (offset from the heap's start) on its left. Cells of one colour next to each other in a row
 * are drawn as one rectangle, and colours are CSS classes, to keep the file small.
 */
#include "heapmap.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum {
    PANEL_W = 512,  /* px; a panel is this wide whatever the heap */
    MAX_COLS = 256, /* cells per row at most ... */
    MIN_COLS = 16,
    MAX_ROWS = 96,  /* ... and rows; beyond, a cell stands for several pages */
    LEVELS = 10,    /* steps of the live-fraction colour scale */
    LEFT = 78,      /* room for the address scale */
    GAP = 96,       /* between the two columns */
    WIDTH = LEFT + PANEL_W + GAP + PANEL_W + 24,
};

static const struct {
    const char *css, *colour, *label;
} class_style[HM_CLASSES] = {
    [HM_NO_PAGE] = {"n", "#cdcdcd", "no page at this address (never used, or punched: memory returned)"},
    [HM_VACATED] = {"x", "#8c8c8c", "address left without a page after its contents moved (remapped)"},
    [HM_DEAD] = {"k", "#f3c4c4", "no survivor: the page is free (kept for reuse, or punched)"},
    [HM_EMPTY] = {"e", "#fbe98e", "free page kept resident and mapped for reuse (retained)"},
    [HM_IN_PLACE] = {"i", "#4c72b0", "live page left where it was"},
    [HM_REMAPPED] = {"r", "#2ca25f", "moved by remapping: same file page, new address, nothing copied"},
    [HM_COPIED] = {"c", "#f28e2b", "copied to a new address (into another file page)"},
    [HM_EVACUATED] = {"v", "#8e44ad", "evacuated: objects copied one by one out of a sparse page,"
                                      " or into a free one"},
};

/* ColorBrewer "Blues", light to dark: the live fraction of a page. */
static const char *const level_colour[LEVELS] = {
    "#f7fbff", "#e3eef9", "#cfe1f2", "#b5d4e9", "#93c3df",
    "#6daed5", "#4b97c9", "#2f7ebc", "#1864aa", "#0a4a90",
};

/* How the slots of a heap are laid out in a panel: rows of cols cells, a cell cw x ch px
 * (twice as high as wide) showing per pages. A small heap gets fewer, larger cells, so its
 * panel is not a thin strip. */
struct grid {
    size_t per, cols, rows;
    double cw, ch;
};

static struct grid grid_with(size_t slots, size_t cols)
{
    struct grid g = {.cols = cols};
    g.per = (slots + cols * MAX_ROWS - 1) / (cols * MAX_ROWS);
    if (g.per == 0)
        g.per = 1;
    size_t cells = (slots + g.per - 1) / g.per;
    g.rows = (cells + cols - 1) / cols;
    if (g.rows == 0)
        g.rows = 1;
    g.cw = (double)PANEL_W / (double)cols;
    g.ch = 2 * g.cw;
    return g;
}

static struct grid grid_for(size_t slots)
{
    struct grid g = grid_with(slots, MAX_COLS);
    while (g.cols > MIN_COLS && (double)g.rows * g.ch < 150)
        g = grid_with(slots, g.cols / 2);
    return g;
}

size_t hm_round_slots(size_t slots)
{
    struct grid g = grid_for(slots);
    return g.rows * g.cols * g.per;
}

/* "512 KiB", "1 MiB", "1.5 GiB" */
static void fmt_bytes(char *buf, size_t len, double bytes)
{
    static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB"};
    int u = 0;
    while (bytes >= 1024 && u < 3) {
        bytes /= 1024;
        u++;
    }
    if (bytes == 0)
        snprintf(buf, len, "0");
    else if (bytes == floor(bytes))
        snprintf(buf, len, "%.0f %s", bytes, unit[u]);
    else
        snprintf(buf, len, "%.1f %s", bytes, unit[u]);
}

static void text(FILE *f, double x, double y, const char *cls, const char *s)
{
    fprintf(f, "<text x='%.1f' y='%.1f' class='%s'>", x, y, cls);
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        default: fputc(*s, f);
        }
    }
    fputs("</text>\n", f);
}

static void rect(FILE *f, double x, double y, double w, double h, const char *cls)
{
    fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' class='%s'/>\n", x, y, w, h, cls);
}

/* The CSS class of cell c: by live fraction (classes l0..l9, or the no-page class) or by the
 * majority class of its pages. */
static void cell_class(char *out, const float *live, const unsigned char *cls, size_t slots, size_t per,
                       size_t c)
{
    size_t lo = c * per, hi = lo + per < slots ? lo + per : slots;
    if (live) {
        double sum = 0;
        size_t mapped = 0;
        for (size_t s = lo; s < hi; s++)
            if (live[s] >= 0) {
                sum += live[s];
                mapped++;
            }
        if (!mapped) {
            strcpy(out, class_style[HM_NO_PAGE].css);
            return;
        }
        int level = (int)(sum / (double)mapped * LEVELS);
        sprintf(out, "l%d", level < 0 ? 0 : level >= LEVELS ? LEVELS - 1 : level);
        return;
    }
    size_t count[HM_CLASSES] = {0};
    for (size_t s = lo; s < hi; s++)
        count[cls[s] < HM_CLASSES ? cls[s] : HM_NO_PAGE]++;
    int best = HM_NO_PAGE;
    for (int k = 0; k < HM_CLASSES; k++)
        if (count[k] > count[best] || (count[k] == count[best] && count[k] && k > best))
            best = k;
    strcpy(out, class_style[best].css);
}

/* One panel at (x, y): a title above, an address scale on the left, a frame around. */
static void panel(FILE *f, double x, double y, const char *title, const float *live, const unsigned char *cls,
                  size_t slots, size_t page)
{
    struct grid g = grid_for(slots);
    double w = PANEL_W, h = (double)g.rows * g.ch;
    text(f, x, y - 8, "h2", title);
    for (size_t r = 0; r < g.rows; r++) {
        size_t c0 = r * g.cols, run = 0;
        char cur[8] = "", next[8];
        for (size_t c = c0; c <= c0 + g.cols; c++) {
            bool in = c < c0 + g.cols && c * g.per < slots;
            if (in)
                cell_class(next, live, cls, slots, g.per, c);
            if (run && (!in || strcmp(next, cur) != 0)) {
                rect(f, x + (double)(c - run - c0) * g.cw, y + (double)r * g.ch, (double)run * g.cw, g.ch, cur);
                run = 0;
            }
            if (!in)
                break;
            if (run == 0)
                strcpy(cur, next);
            run++;
        }
    }
    fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' class='frame'/>\n", x - 0.5, y - 0.5, w + 1,
            h + 1);
    /* Say what a large block of free pages or of "no page" at the top of the heap is. */
    if (cls && slots > 0 && cls[slots - 1] <= HM_EMPTY && cls[slots - 1] != HM_DEAD) {
        size_t top = slots, empty = 0;
        while (top > 0 && cls[top - 1] <= HM_EMPTY && cls[top - 1] != HM_DEAD)
            empty += cls[--top] == HM_EMPTY;
        unsigned char last = empty * 2 > slots - top ? HM_EMPTY : HM_NO_PAGE;
        size_t free_rows = g.rows - (top / g.per + g.cols - 1) / g.cols;
        if ((double)free_rows * g.ch >= 32) {
            double ty = y + h - (double)free_rows * g.ch / 2;
            fprintf(f, "<text x='%.1f' y='%.1f' class='note' text-anchor='middle'>%s</text>\n", x + w / 2, ty + 4,
                    last == HM_EMPTY ? "free pages: resident, kept for the next allocations"
                                     : "no page here: this memory is back with the system");
        }
    }
    /* the address scale: about five labels, at whole multiples of a power of two of rows */
    size_t every = 1;
    while (g.rows / every > 6 || (double)every * g.ch < 16)
        every *= 2;
    double row_bytes = (double)g.cols * (double)g.per * (double)page;
    for (size_t r = 0; r <= g.rows; r += every) {
        char lab[32], val[24];
        fmt_bytes(val, sizeof val, (double)r * row_bytes);
        snprintf(lab, sizeof lab, "+%s", val);
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' class='tick'/>\n", x - 5, y + (double)r * g.ch,
                x - 1, y + (double)r * g.ch);
        fprintf(f, "<text x='%.1f' y='%.1f' class='axis' text-anchor='end'>%s</text>\n", x - 7,
                y + (double)r * g.ch + 3.5, lab);
    }
}

static double panel_height(size_t slots)
{
    struct grid g = grid_for(slots);
    return (double)g.rows * g.ch;
}

static void swatch(FILE *f, double x, double y, const char *cls, const char *label)
{
    rect(f, x, y - 9, 14, 10, cls);
    fprintf(f, "<rect x='%.1f' y='%.1f' width='15' height='11' class='frame'/>\n", x - 0.5, y - 9.5);
    text(f, x + 20, y, "t", label);
}

/* The live-fraction scale and the page legend, in the right column beside the "before" panel. */
static double legends(FILE *f, double x, double y, const bool present[HM_CLASSES])
{
    text(f, x, y - 8, "h2", "How full of survivors a page is (top panel)");
    for (int l = 0; l < LEVELS; l++)
        fprintf(f, "<rect x='%.1f' y='%.1f' width='30' height='12' class='l%d'/>\n", x + l * 30.0, y, l);
    fprintf(f, "<rect x='%.1f' y='%.1f' width='301' height='13' class='frame'/>\n", x - 0.5, y - 0.5);
    for (int t = 0; t <= 100; t += 25) {
        char lab[16];
        snprintf(lab, sizeof lab, "%d %%", t);
        double tx = x + t * 3.0;
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' class='tick'/>\n", tx, y + 12, tx, y + 17);
        fprintf(f, "<text x='%.1f' y='%.1f' class='axis' text-anchor='middle'>%s</text>\n", tx, y + 28, lab);
    }
    text(f, x, y + 44, "t", "of the page's bytes belong to surviving objects");

    y += 76;
    text(f, x, y, "h2", "What happened to a page (middle and bottom panels)");
    y += 20;
    static const int order[] = {HM_IN_PLACE, HM_REMAPPED, HM_COPIED, HM_EVACUATED, HM_DEAD, HM_EMPTY, HM_VACATED, HM_NO_PAGE};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++, y += 17)
        if (present[order[i]])
            swatch(f, x, y, class_style[order[i]].css, class_style[order[i]].label);
        else
            y -= 17;

    y += 16;
    static const char *const how[] = {
        "How to read it. Top: the heap once the program has allocated its",
        "objects and most have died; dark pages are full of survivors, white",
        "ones have none. Middle: the same addresses, coloured by what each",
        "collection did with each page. Bottom: the heap afterwards: the",
        "survivors packed at its low end; free pages above them stay resident",
        "for the next allocations (retained) until arena_trim() returns them,",
        "and addresses with no page hold no memory at all.",
    };
    static const char *const vacated[] = {
        "Dark grey stripes among the free pages are addresses whose file page",
        "was remapped down to the survivors; no page was put back there.",
    };
    for (size_t i = 0; i < sizeof how / sizeof how[0]; i++, y += 16)
        text(f, x, y, "t", how[i]);
    for (size_t i = 0; present[HM_VACATED] && i < sizeof vacated / sizeof vacated[0]; i++, y += 16)
        text(f, x, y, "t", vacated[i]);
    return y;
}

/* The numbers of one collection, under its column. */
static double summary(FILE *f, double x, double y, const struct hm_run *r)
{
    char line[256], a[24], b[24], live[24];
    const arena_collect_stats_t *st = &r->st;
    snprintf(line, sizeof line, "%s compactor (mover %s): the numbers", r->name, r->mover);
    line[0] = (char)(line[0] - 'a' + 'A');
    text(f, x, y, "h2", line);
    y += 20;
    size_t fate[HM_CLASSES] = {0}, after[HM_CLASSES] = {0};
    for (size_t s = 0; s < r->slots; s++) {
        fate[r->fate[s] < HM_CLASSES ? r->fate[s] : HM_NO_PAGE]++;
        after[r->origin[s] < HM_CLASSES ? r->origin[s] : HM_NO_PAGE]++;
    }
    /* The colours count pages by what happened to their survivors, as the panels show them;
     * the collector counts the pages after evacuation filled some (the terminal table). Both
     * are shown with the sum that relates them. */
    size_t sum = after[HM_IN_PLACE] + after[HM_REMAPPED] + after[HM_COPIED] + after[HM_EVACUATED];
    snprintf(line, sizeof line, "The %zu pages in use after the collection, by the colours of the bottom panel:", sum);
    text(f, x, y, "t", line);
    y += 18;
    char evac[96];
    snprintf(evac, sizeof evac, "filled by evacuation: %zu objects evacuated out of %zu sparse pages", st->objects_evacuated,
             fate[HM_EVACUATED]);
    struct {
        int cls;
        const char *what;
    } pages[] = {
        {HM_IN_PLACE, "live pages left in place"},
        {HM_REMAPPED, "live pages remapped (no byte copied)"},
        {HM_COPIED, "live pages copied whole"},
        {HM_EVACUATED, evac},
    };
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++, y += 16) {
        rect(f, x, y - 9, 10, 10, class_style[pages[i].cls].css);
        snprintf(line, sizeof line, "%zu %s", after[pages[i].cls], pages[i].what);
        text(f, x + 16, y, "t", line);
    }
    rect(f, x, y - 9, 10, 10, class_style[HM_DEAD].css);
    snprintf(line, sizeof line, "%zu pages with no survivor, now free", fate[HM_DEAD]);
    text(f, x + 16, y, "t", line);
    y += 20;
    snprintf(line, sizeof line, "The collector's own count (the terminal table) has %zu pages in use after,",
             st->pages_after);
    text(f, x, y, "t", line);
    y += 16;
    text(f, x, y, "t", "but counts a page filled by evacuation as left in place or copied, as the slide");
    y += 16;
    if (after[HM_IN_PLACE] + after[HM_EVACUATED] == st->pages_in_place)
        snprintf(line, sizeof line, "then treated it: %zu left in place (%zu + %zu filled by evacuation),",
                 st->pages_in_place, after[HM_IN_PLACE], after[HM_EVACUATED]);
    else
        snprintf(line, sizeof line, "then treated it: %zu left in place,", st->pages_in_place);
    text(f, x, y, "t", line);
    y += 16;
    snprintf(line, sizeof line, "%zu remapped, %zu copied (%zu into fresh file pages, %zu into retained ones);",
             st->pages_remapped, st->pages_copied + st->pages_slid, st->pages_copied, st->pages_slid);
    text(f, x, y, "t", line);
    y += 16;
    snprintf(line, sizeof line, "%zu free pages retained, %zu punched.", st->pages_retained, st->pages_released);
    text(f, x, y, "t", line);
    y += 20;
    char t[24];
    fmt_bytes(a, sizeof a, (double)r->before.resident_bytes);
    fmt_bytes(b, sizeof b, (double)r->after.resident_bytes);
    fmt_bytes(t, sizeof t, (double)r->trimmed.resident_bytes);
    fmt_bytes(live, sizeof live, (double)st->bytes_live);
    snprintf(line, sizeof line, "resident memory %s \xe2\x86\x92 %s after the collection \xe2\x86\x92 %s after", a, b, t);
    text(f, x, y, "t", line);
    y += 16;
    snprintf(line, sizeof line, "arena_trim(a, 0) released the retained pages, for %s of live data", live);
    text(f, x, y, "t", line);
    y += 16;
    snprintf(line, sizeof line, "heap pages in use %zu \xe2\x86\x92 %zu;  kernel mappings (VMAs) %zu \xe2\x86\x92 %zu",
             st->pages_before, st->pages_after, st->vmas_before, st->vmas_after);
    text(f, x, y, "t", line);
    y += 16;
    if (r->after.mover == ARENA_MOVE_AUTO) {
        snprintf(line, sizeof line, "runs of fewer than %zu pages are copied, longer ones remapped: below that",
                 r->after.copy_below);
        text(f, x, y, "t", line);
        y += 16;
        text(f, x, y, "t", "length copying is faster (measured when the arena starts).");
        y += 16;
    }
    snprintf(line, sizeof line, "pause %.2f ms;  %s", st->pause_ns / 1e6,
             r->bad ? "SOME SURVIVORS FAILED VERIFICATION" : "every survivor verified byte for byte");
    text(f, x, y, r->bad ? "bad" : "t", line);
    return y;
}

/* The title and the three lines under it. */
static void heading(FILE *f, const struct hm_heap *heap, const struct hm_run runs[2], size_t slots)
{
    struct grid g = grid_for(slots);
    char line[400], heap_s[24], page_s[24], row_s[24];
    fmt_bytes(heap_s, sizeof heap_s, (double)heap->heap_bytes);
    fmt_bytes(page_s, sizeof page_s, (double)heap->page_size);
    fmt_bytes(row_s, sizeof row_s, (double)g.cols * (double)g.per * (double)heap->page_size);
    snprintf(line, sizeof line, "Compacting a fragmented %s heap: remapping file pages vs copying them", heap_s);
    text(f, 12, 26, "h1", line);
    snprintf(line, sizeof line,
             "%zu objects, %.3g %% of them survive (seed %llu); objects allocated together mostly die together. "
             "Both compactors start from this same heap.",
             heap->objects, heap->survive * 100, heap->seed);
    text(f, 12, 48, "sub", line);
    snprintf(line, sizeof line,
             "Each cell is %zu page%s of %s; each row is %zu cells = %s of addresses; the numbers on the left are "
             "offsets from the heap's start.",
             g.per, g.per > 1 ? "s" : "", page_s, g.cols, row_s);
    text(f, 12, 66, "sub", line);
    size_t remapped = 0, copied[2] = {0, 0};
    for (int i = 0; i < 2; i++)
        for (size_t s = 0; s < runs[i].slots; s++) {
            remapped += i == 0 && runs[i].fate[s] == HM_REMAPPED;
            copied[i] += runs[i].fate[s] == HM_COPIED;
        }
    snprintf(line, sizeof line,
             "Of the heap's dense live pages, remapping moved %zu to new addresses without copying a byte and copied "
             "%zu; copying copied %zu. Pause %.1f ms (remapping) vs %.1f ms (copying).",
             remapped, copied[0], copied[1], runs[0].st.pause_ns / 1e6, runs[1].st.pause_ns / 1e6);
    text(f, 12, 84, "sub", line);
}

/* The figure is drawn into memory first: its height is known only once the legends and the
 * numbers are laid out. */
int hm_write_svg(FILE *f, const struct hm_heap *heap, const struct hm_run runs[2])
{
    char *body = NULL;
    size_t body_len = 0;
    FILE *m = open_memstream(&body, &body_len);
    if (m == NULL)
        return -1;
    size_t slots = runs[0].slots > runs[1].slots ? runs[0].slots : runs[1].slots;
    double ph = panel_height(slots), x0 = LEFT, x1 = LEFT + PANEL_W + GAP, y_before = 118;

    heading(m, heap, runs, slots);
    panel(m, x0, y_before, "Before the collection: survivors in each page", runs[0].live_before, NULL, slots,
          heap->page_size);
    bool present[HM_CLASSES] = {false};
    for (int i = 0; i < 2; i++)
        for (size_t s = 0; s < runs[i].slots; s++) {
            present[runs[i].fate[s] < HM_CLASSES ? runs[i].fate[s] : HM_NO_PAGE] = true;
            present[runs[i].origin[s] < HM_CLASSES ? runs[i].origin[s] : HM_NO_PAGE] = true;
        }
    for (size_t s = 0; s < runs[0].slots; s++)
        present[HM_NO_PAGE] |= runs[0].live_before[s] < 0;
    double legend_end = legends(m, x1, y_before, present);
    double y_fate = (y_before + ph > legend_end ? y_before + ph : legend_end) + 62;
    double y_after = y_fate + ph + 62, y_sum = y_after + ph + 36, height = 0;
    char line[200];
    for (int i = 0; i < 2; i++) {
        double x = i ? x1 : x0;
        snprintf(line, sizeof line, "%c%s compactor (%s): what happened to each page", runs[i].name[0] - 'a' + 'A',
                 runs[i].name + 1, runs[i].mover);
        panel(m, x, y_fate, line, NULL, runs[i].fate, slots, heap->page_size);
        snprintf(line, sizeof line, "After, %s: where each page's contents came from", runs[i].name);
        panel(m, x, y_after, line, NULL, runs[i].origin, slots, heap->page_size);
        double end = summary(m, x, y_sum, &runs[i]);
        height = end > height ? end : height;
    }
    height += 24;
    if (fclose(m) != 0) {
        free(body);
        return -1;
    }

    fprintf(f,
            "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%.0f' viewBox='0 0 %d %.0f'>\n"
            "<style>\n"
            "text{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;fill:#222}\n"
            ".h1{font-size:18px;font-weight:bold} .h2{font-size:13px;font-weight:bold}\n"
            ".t{font-size:12px} .sub{font-size:12px;fill:#444} .axis{font-size:10px;fill:#444}\n"
            ".bad{font-size:12px;fill:#c00;font-weight:bold} .note{font-size:13px;fill:#555;font-style:italic}\n"
            ".frame{fill:none;stroke:#555;stroke-width:1} .tick{stroke:#555;stroke-width:1}\n",
            WIDTH, height, WIDTH, height);
    for (int k = 0; k < HM_CLASSES; k++)
        fprintf(f, ".%s{fill:%s}\n", class_style[k].css, class_style[k].colour);
    for (int l = 0; l < LEVELS; l++)
        fprintf(f, ".l%d{fill:%s}\n", l, level_colour[l]);
    fputs("</style>\n<rect width='100%' height='100%' fill='white'/>\n", f);
    fwrite(body, 1, body_len, f);
    free(body);
    fputs("</svg>\n", f);
    return ferror(f) ? -1 : 0;
}
