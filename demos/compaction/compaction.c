/*
 * arena-compaction -- fragment a heap, collect it, and compare the remapping compactor
 * (mover AUTO: copy short runs, remap medium ones, 2 MiB-aligned mremap for long ones)
 * with a plain copying compactor (mover COPY) on the same heap shape.
 *
 *   arena-compaction [--heap SIZE] [--survive FRACTION|PERCENT%] [--seed N] [--page-size SIZE]
 *                    [--svg PATH | --no-svg]
 *
 * Prints what each compactor did side by side and writes an SVG heap map of the heap before
 * and after each collection. Exits 0 only when every surviving object was verified byte for
 * byte.
 */
#include "common.h"

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "heapmap.h"

/* Pages with less than this share of live bytes are evacuated object by object; the demo
 * sets it (the library's default) so that the heap map can tell an evacuated page by the
 * collector's own rule. */
enum { SPARSE_PERCENT = 75 };

struct obj {
    char *p;
    uint32_t size;
    bool live;
};

struct options {
    size_t heap, page;
    double survive; /* the fraction of objects that survive, 0..1 */
    uint64_t seed;
    const char *svg; /* NULL: no map */
};

static uint64_t rng;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t word_of(const struct obj *o, size_t i)
{
    uint64_t x = (uint64_t)o->size * 0x9E3779B97F4A7C15ull + i;
    x ^= x >> 29;
    return x * 0xBF58476D1CE4E5B9ull;
}

static void usage(FILE *f)
{
    fputs("usage: arena-compaction [--heap SIZE] [--survive FRACTION|PERCENT%] [--seed N] [--page-size SIZE]\n"
          "                        [--svg PATH | --no-svg]\n"
          "Fragments a heap (objects allocated together mostly die together), collects it once with the\n"
          "remapping compactor and once with a plain copying compactor on the same heap shape, verifies\n"
          "every survivor, prints what each did side by side and draws it as an SVG figure.\n"
          "  --heap SIZE       bytes of objects to allocate (default 64M; K, M, G suffixes; 1M to 1G)\n"
          "  --survive F       the share of objects that survive: a fraction (0.3) or a percentage (30%);\n"
          "                    default 0.3\n"
          "  --seed N          the heap shape (default 1)\n"
          "  --page-size SIZE  the arena's page size (default: the OS page)\n"
          "  --svg PATH        where the SVG heap map goes (default: compaction.svg next to this program)\n"
          "  --no-svg          write no heap map\n"
          "Exit status: 0 every survivor verified, 1 a survivor was lost or changed (or an error),\n"
          "64 a bad command line.\n", f);
}

/* "0.3" or "30%": the fraction of objects that survive. A bare number above 1 is refused
 * rather than guessed at: "30" could mean 30 % or be a slip. */
static double parse_survive(const char *text)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    bool percent = end != text && *end == '%';
    if (percent)
        end++;
    if (end == text || *end != '\0' || errno || !isfinite(v) || v < 0 || v > (percent ? 100 : 1))
        demo_usage_error("--survive: '%s' is neither a fraction from 0 to 1 (0.3) nor a percentage "
                         "from 0%% to 100%% (30%%)", text);
    return percent ? v / 100 : v;
}

/* compaction.svg in the directory of this program (build/ for the README's command). */
static const char *default_svg(void)
{
    static char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - sizeof "/compaction.svg");
    if (n <= 0)
        return "compaction.svg";
    path[n] = '\0';
    char *dir = dirname(path);
    if (dir != path)
        memmove(path, dir, strlen(dir) + 1);
    strcat(path, "/compaction.svg");
    return path;
}

static struct options parse(int argc, char **argv)
{
    struct options o = {.heap = 64u << 20, .survive = 0.3, .seed = 1, .svg = NULL};
    bool no_svg = false;
    static const struct option longopts[] = {
        {"heap", required_argument, NULL, 'H'}, {"survive", required_argument, NULL, 's'},
        {"seed", required_argument, NULL, 'S'}, {"page-size", required_argument, NULL, 'p'},
        {"svg", required_argument, NULL, 'o'},  {"no-svg", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},       {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'H': o.heap = demo_parse_size("--heap", optarg); break;
        case 's': o.survive = parse_survive(optarg); break;
        case 'S': o.seed = demo_parse_uint("--seed", optarg, 0, UINT64_MAX); break;
        case 'p': o.page = demo_parse_size("--page-size", optarg); break;
        case 'o': o.svg = optarg; break;
        case 'n': no_svg = true; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(DEMO_EXIT_USAGE);
        }
    }
    if (optind < argc)
        demo_usage_error("unexpected argument '%s' (see --help)", argv[optind]);
    if (o.heap < (1u << 20) || o.heap > ((size_t)1 << 30))
        demo_usage_error("--heap: from 1M to 1G");
    long os_page = sysconf(_SC_PAGESIZE);
    if (o.page != 0 && (o.page < (size_t)os_page || (o.page & (o.page - 1)) != 0))
        demo_usage_error("--page-size: a power of two, at least the OS page (%ld)", os_page);
    if (no_svg && o.svg)
        demo_usage_error("--svg and --no-svg together");
    if (!no_svg && !o.svg)
        o.svg = default_svg();
    return o;
}

static double uniform(void)
{
    return (double)(rnd() >> 11) * 0x1p-53;
}

/* The same heap shape for every run: the generator restarts from the seed.
 *
 * Objects allocated together tend to die together, so the heap is built as stretches
 * ("regions") of 1 to 512 pages' worth of objects (at most a 32nd of the heap), and a region is live (every object in it
 * survives), dead (none does) or, one in five, mixed (each object survives with probability
 * --survive, which leaves sparse pages). Whether a region is live or dead is drawn so that the
 * share of surviving bytes stays close to --survive all along, so the share of surviving
 * objects is close to what was asked for. That gives every case the compactor handles: dense
 * runs of every length to remap or copy, sparse pages to evacuate, dead pages to punch. */
static struct obj *build(arena_t *a, const struct options *o, size_t *count, const char *label)
{
    size_t cap = 1024, n = 0, bytes = 0, live_bytes = 0, region_left = 0;
    enum { DEAD, LIVE, MIXED } kind = DEAD;
    struct obj *objs = malloc(cap * sizeof *objs);
    rng = o->seed * 2654435761u + 1;
    size_t page = arena_page_size(a);
    unsigned longest = 0; /* regions of at most a 32nd of the heap, so small heaps get many */
    while (longest < 9 && (page << (longest + 1)) <= o->heap / 32)
        longest++;
    while (bytes < o->heap) {
        if (region_left == 0) {
            region_left = (page << (rnd() % (longest + 1))) + rnd() % page;
            if (uniform() < 0.2)
                kind = MIXED;
            else
                kind = (double)live_bytes + uniform() * (double)region_left <
                               o->survive * (double)(bytes + region_left) ? LIVE : DEAD;
        }
        uint64_t k = rnd() % 1000;
        size_t size = k < 900 ? 16 + rnd() % 240 : k < 995 ? 256 + rnd() % (page - 256) : page + rnd() % (8 * page);
        size = (size + 15) & ~(size_t)15;
        if (n == cap && (objs = realloc(objs, (cap *= 2) * sizeof *objs)) == NULL)
            demo_die("out of memory for the object table");
        struct obj *ob = &objs[n++];
        ob->p = arena_alloc(a, size);
        if (ob->p == NULL)
            demo_die("arena_alloc: %s", strerror(errno));
        ob->size = (uint32_t)size;
        ob->live = kind == LIVE || (kind == MIXED && uniform() < o->survive);
        uint64_t *w = (uint64_t *)ob->p;
        for (size_t i = 0; i < size / 8; i++)
            w[i] = word_of(ob, i);
        bytes += size;
        live_bytes += ob->live ? size : 0;
        region_left = size < region_left ? region_left - size : 0;
        if ((n & 1023) == 0 || bytes >= o->heap)
            demo_progress(label, (bytes < o->heap ? bytes : o->heap) >> 20, o->heap >> 20);
    }
    demo_progress_done();
    *count = n;
    return objs;
}

/* Live fraction of each heap slot before the collection; -1 where the slot shows no page. */
static float *live_fraction(arena_t *a, const struct obj *objs, size_t n, size_t slots)
{
    arena_view_t *hv = arena_heap_view(a);
    float *d = calloc(slots, sizeof *d);
    if (d == NULL)
        demo_die("out of memory for the heap map");
    for (size_t s = 0; s < slots; s++)
        if (arena_view_file_page(hv, s) == ARENA_NO_PAGE)
            d[s] = -1;
    const char *base = arena_view_base(hv);
    size_t page = arena_page_size(a);
    for (size_t i = 0; i < n; i++) {
        if (!objs[i].live)
            continue;
        size_t off = (size_t)(objs[i].p - base);
        for (size_t b = off; b < off + objs[i].size;) {
            size_t s = b / page, end = (s + 1) * page < off + objs[i].size ? (s + 1) * page : off + objs[i].size;
            if (s < slots && d[s] >= 0)
                d[s] += (float)(end - b) / (float)page;
            b = end;
        }
    }
    return d;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* Give the slots [off, off + size) of the heap the class cls unless they already have a
 * higher one (a page holding objects of several fates shows the most eventful). */
static void paint(unsigned char *map, size_t slots, size_t page, size_t off, size_t size, unsigned char cls)
{
    for (size_t s = off / page; s < slots && s * page < off + size; s++)
        if (map[s] < cls)
            map[s] = cls;
}

/* What happened to each page and where each page's contents came from, from where every
 * survivor was (old[i]) and is (objs[i].p) and which file page each slot showed before
 * (file_before) and shows now. A page moved as a whole when every survivor that starts in it
 * moved by the same whole number of pages, its new page holds survivors of no other page and
 * it was not sparse by the collector's rule (a lone survivor at the start of a sparse page can
 * be evacuated to the start of its target page, which would look like a page copy): remapped
 * if its new slot shows the same file page, copied if not. Any other move of a survivor is an
 * evacuation. A slot that showed a page and shows none now had its file page remapped
 * elsewhere (the heap still shows it) or punched (it does not). */
static void classify(arena_t *a, const struct obj *objs, char *const *old, size_t n, const size_t *file_before,
                     struct hm_run *m)
{
    arena_view_t *hv = arena_heap_view(a);
    const char *base = arena_view_base(hv);
    size_t page = arena_page_size(a), slots = m->slots;
    ptrdiff_t *delta = malloc(slots * sizeof *delta);
    unsigned char *seen = calloc(slots, 1); /* 0 none yet, 1 one delta, 2 several */
    size_t *src_of = malloc(slots * sizeof *src_of); /* per new slot: the one old slot its survivors came from */
    size_t *live_small = calloc(slots, sizeof *live_small); /* per old slot: bytes of small survivors */
    for (size_t s = 0; src_of != NULL && s < slots; s++)
        src_of[s] = SIZE_MAX;
    m->fate = malloc(slots);
    m->origin = malloc(slots);
    if (!delta || !seen || !src_of || !live_small || !m->fate || !m->origin)
        demo_die("out of memory for the heap map");
    size_t *now = malloc(slots * sizeof *now); /* the file pages the heap shows now, sorted */
    if (now == NULL)
        demo_die("out of memory for the heap map");
    for (size_t s = 0; s < slots; s++) {
        m->fate[s] = file_before[s] == ARENA_NO_PAGE ? HM_NO_PAGE : HM_DEAD;
        now[s] = arena_view_file_page(hv, s);
    }
    qsort(now, slots, sizeof *now, cmp_size);
    for (size_t s = 0; s < slots; s++) {
        size_t fp = arena_view_file_page(hv, s);
        bool moved_away = fp == ARENA_NO_PAGE && file_before[s] != ARENA_NO_PAGE &&
                          bsearch(&file_before[s], now, slots, sizeof *now, cmp_size) != NULL;
        m->origin[s] = fp != ARENA_NO_PAGE ? HM_EMPTY : moved_away ? HM_VACATED : HM_NO_PAGE;
    }
    for (size_t i = 0; i < n; i++) {
        if (!objs[i].live || objs[i].p == NULL)
            continue;
        size_t s = (size_t)(old[i] - base) / page;
        ptrdiff_t d = objs[i].p - old[i];
        if (s >= slots)
            continue;
        live_small[s] += objs[i].size <= page ? objs[i].size : 2 * page; /* a large object: never sparse */
        if (seen[s] == 0)
            delta[s] = d, seen[s] = 1;
        else if (delta[s] != d)
            seen[s] = 2;
        size_t t = (size_t)(objs[i].p - base) / page;
        if (t < slots) {
            if (src_of[t] == SIZE_MAX)
                src_of[t] = s;
            else if (src_of[t] != s)
                src_of[t] = SIZE_MAX - 1;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!objs[i].live || objs[i].p == NULL)
            continue;
        size_t from = (size_t)(old[i] - base), to = (size_t)(objs[i].p - base), s = from / page;
        if (s >= slots)
            continue;
        ptrdiff_t d = objs[i].p - old[i];
        unsigned char cls;
        bool sparse = live_small[s] * 100 < page * SPARSE_PERCENT;
        if (seen[s] == 1 && d % (ptrdiff_t)page == 0 && src_of[to / page] == s && !(sparse && d != 0))
            cls = arena_view_file_page(hv, to / page) != file_before[s] ? HM_COPIED
                  : d == 0                                              ? HM_IN_PLACE
                                                                        : HM_REMAPPED;
        else
            cls = HM_EVACUATED;
        paint(m->fate, slots, page, from, objs[i].size, cls);
        paint(m->origin, slots, page, to, objs[i].size, cls);
    }
    free(delta);
    free(seen);
    free(src_of);
    free(live_small);
    free(now);
}

static void run(const struct options *o, int mover, const char *label, struct hm_run *r)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.mover = mover;
    cfg.sparse_percent = SPARSE_PERCENT;
    cfg.page_size = o->page;
    cfg.reserve = o->heap * 4 + ((size_t)64 << 20);
    arena_t *a = NULL;
    demo_check(arena_create(&a, &cfg), "arena_create");
    size_t n;
    struct obj *objs = build(a, o, &n, label);
    arena_stats(a, &r->before);
    arena_view_t *hv = arena_heap_view(a);
    size_t slots = r->before.heap_pages + 1;
    for (size_t s = slots; s < arena_view_slots(hv) && s < slots * 2 + 4096; s++)
        if (arena_view_file_page(hv, s) != ARENA_NO_PAGE)
            slots = s + 1;
    if (hm_round_slots(slots) <= arena_view_slots(hv))
        slots = hm_round_slots(slots);
    r->slots = slots;
    bool map = o->svg != NULL;
    char **old = map ? malloc(n * sizeof *old) : NULL;
    size_t *file_before = map ? malloc(slots * sizeof *file_before) : NULL;
    if (map) {
        if (!old || !file_before)
            demo_die("out of memory for the heap map");
        r->live_before = live_fraction(a, objs, n, slots);
        for (size_t s = 0; s < slots; s++)
            file_before[s] = arena_view_file_page(hv, s);
        for (size_t i = 0; i < n; i++)
            old[i] = objs[i].p;
    }
    for (size_t i = 0; i < n; i++)
        if (objs[i].live && arena_mark(a, objs[i].p + objs[i].size / 2) != 0)
            r->bad++;
    int err = arena_collect(a, &r->st);
    if (err < 0) {
        fprintf(stderr, "arena-compaction: arena_collect: %s\n", arena_strerror(err));
        r->bad++;
    }
    arena_stats(a, &r->after);
    for (size_t i = 0; i < n; i++) {
        char *now = arena_forward(a, objs[i].p);
        if (!objs[i].live) {
            r->bad += now != NULL;
            objs[i].p = NULL;
            continue;
        }
        objs[i].p = now;
        const uint64_t *w = (const uint64_t *)now;
        bool ok = now != NULL && arena_object_size(a, now) == objs[i].size;
        for (size_t k = 0; ok && k < objs[i].size / 8; k++)
            ok = w[k] == word_of(&objs[i], k);
        r->bad += !ok;
    }
    if (map)
        classify(a, objs, old, n, file_before, r);
    /* The collection keeps free pages resident for reuse; trimming shows what is left without them. */
    err = arena_trim(a, 0);
    if (err != 0)
        fprintf(stderr, "arena-compaction: arena_trim: %s\n", arena_strerror(err));
    arena_stats(a, &r->trimmed);
    free(old);
    free(file_before);
    free(objs);
    arena_destroy(a);
}

/* Returns 0, or 1 when the figure could not be written (an error: the exit status says so). */
static int write_map(const struct options *o, const struct hm_run runs[2])
{
    FILE *f = fopen(o->svg, "we");
    if (f == NULL) {
        fprintf(stderr, "arena-compaction: cannot write the heap map %s: %s\n", o->svg, strerror(errno));
        return 1;
    }
    struct hm_heap h = {.heap_bytes = o->heap, .page_size = runs[0].before.page_size,
                        .objects = runs[0].st.objects_live + runs[0].st.objects_freed,
                        .survive = o->survive, .seed = (unsigned long long)o->seed};
    int err = hm_write_svg(f, &h, runs);
    if (fclose(f) != 0 || err != 0) {
        fprintf(stderr, "arena-compaction: writing the heap map %s failed: %s\n", o->svg, strerror(errno));
        return 1;
    }
    printf("\nheap map: %s\n", o->svg);
    return 0;
}

/* One line of the side-by-side table: what, unit, the AUTO figure, the COPY figure. */
static void line(const char *what, const char *unit, double a, double c, int decimals)
{
    printf("  %-48s %-4s %12.*f %12.*f\n", what, unit, decimals, a, decimals, c);
}

static void print_table(const struct options *o, const struct hm_run *ra, const struct hm_run *rc)
{
    const arena_collect_stats_t *a = &ra->st, *c = &rc->st;
    size_t all = a->objects_live + a->objects_freed;
    printf("heap %zu MiB of objects (seed %" PRIu64 ", %zu-byte pages): %zu objects, %zu survive "
           "(%.1f %%; asked for %.3g %%)\n\n",
           o->heap >> 20, o->seed, ra->before.page_size, all, a->objects_live,
           all ? 100.0 * (double)a->objects_live / (double)all : 0.0, o->survive * 100);
    printf("  %-48s %-4s %12s %12s\n", "", "", "remapping", "copying");
    printf("  %-48s %-4s %12s %12s\n", "", "", "(mover auto)", "(mover copy)");
    line("live data (surviving objects)", "MiB", a->bytes_live / 1048576.0, c->bytes_live / 1048576.0, 1);
    line("resident memory before the collection", "MiB", ra->before.resident_bytes / 1048576.0,
         rc->before.resident_bytes / 1048576.0, 1);
    line("resident memory after the collection", "MiB", ra->after.resident_bytes / 1048576.0,
         rc->after.resident_bytes / 1048576.0, 1);
    line("  of it free pages kept for reuse (retained)", "MiB", ra->after.retained_bytes / 1048576.0,
         rc->after.retained_bytes / 1048576.0, 1);
    line("resident memory after arena_trim(a, 0)", "MiB", ra->trimmed.resident_bytes / 1048576.0,
         rc->trimmed.resident_bytes / 1048576.0, 1);
    line("  that / live data", "",
         a->bytes_live ? (double)ra->trimmed.resident_bytes / (double)a->bytes_live : 0,
         c->bytes_live ? (double)rc->trimmed.resident_bytes / (double)c->bytes_live : 0, 2);
    line("heap pages in use before", "", (double)a->pages_before, (double)c->pages_before, 0);
    line("  free pages kept resident for reuse (retained)", "", (double)a->pages_retained,
         (double)c->pages_retained, 0);
    line("  free pages punched out of the file", "", (double)a->pages_released, (double)c->pages_released, 0);
    line("  live pages left where they were", "", (double)a->pages_in_place, (double)c->pages_in_place, 0);
    line("  live pages moved by remapping (no copy)", "", (double)a->pages_remapped, (double)c->pages_remapped, 0);
    line("    of them in whole 2 MiB mremap runs", "runs", (double)a->runs_mremap_2m, (double)c->runs_mremap_2m, 0);
    line("  live pages copied into fresh file pages", "", (double)a->pages_copied, (double)c->pages_copied, 0);
    line("  live pages copied into retained pages", "", (double)a->pages_slid, (double)c->pages_slid, 0);
    line("objects evacuated out of sparse pages", "", (double)a->objects_evacuated, (double)c->objects_evacuated, 0);
    line("heap pages in use after", "", (double)a->pages_after, (double)c->pages_after, 0);
    line("kernel mappings (VMAs) before", "", (double)a->vmas_before, (double)c->vmas_before, 0);
    line("kernel mappings (VMAs) after", "", (double)a->vmas_after, (double)c->vmas_after, 0);
    line("pause (wall time of arena_collect)", "ms", a->pause_ns / 1e6, c->pause_ns / 1e6, 2);
    printf("  %-48s %-4s %12s %12s\n", "every survivor checked byte for byte", "", ra->bad ? "FAILED" : "verified",
           rc->bad ? "FAILED" : "verified");
    if (ra->origin == NULL || rc->origin == NULL)
        return;
    /* The heap map's count: it colours a page by what happened to its survivors, so the
     * pages evacuation filled are a class of their own there, while the collector counts
     * them with the pages the slide then left in place or copied. */
    size_t na[HM_CLASSES] = {0}, nc[HM_CLASSES] = {0};
    for (size_t s = 0; s < ra->slots; s++)
        na[ra->origin[s]]++;
    for (size_t s = 0; s < rc->slots; s++)
        nc[rc->origin[s]]++;
    printf("\n  the heap map counts the pages after the collection by where their contents came from;\n"
           "  the collector (above) counts a page filled by evacuated objects as left in place or copied:\n");
    line("  live pages left where they were", "", (double)na[HM_IN_PLACE], (double)nc[HM_IN_PLACE], 0);
    line("  live pages moved by remapping (no copy)", "", (double)na[HM_REMAPPED], (double)nc[HM_REMAPPED], 0);
    line("  live pages copied whole", "", (double)na[HM_COPIED], (double)nc[HM_COPIED], 0);
    line("  pages filled by evacuated objects", "", (double)na[HM_EVACUATED], (double)nc[HM_EVACUATED], 0);
    line("  together: heap pages in use after", "",
         (double)(na[HM_IN_PLACE] + na[HM_REMAPPED] + na[HM_COPIED] + na[HM_EVACUATED]),
         (double)(nc[HM_IN_PLACE] + nc[HM_REMAPPED] + nc[HM_COPIED] + nc[HM_EVACUATED]), 0);
}

int main(int argc, char **argv)
{
    struct options o = parse(argc, argv);
    struct hm_run runs[2] = {{.name = "remapping", .mover = "auto"}, {.name = "copying", .mover = "copy"}};
    run(&o, ARENA_MOVE_AUTO, "building the heap for auto (MiB)", &runs[0]);
    run(&o, ARENA_MOVE_COPY, "building the heap for copy (MiB)", &runs[1]);
    print_table(&o, &runs[0], &runs[1]);
    int map_failed = o.svg != NULL ? write_map(&o, runs) : 0;
    for (int i = 0; i < 2; i++) {
        free(runs[i].live_before);
        free(runs[i].fate);
        free(runs[i].origin);
    }
    return runs[0].bad || runs[1].bad || map_failed ? 1 : 0;
}
