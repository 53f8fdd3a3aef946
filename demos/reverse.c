/*
 * arena-reverse -- the seed's remap_file_pages() example on an arena: a file of N pages,
 * each filled with its own pattern, and a view in which slot i shows file page N-1-i,
 * verified page by page.
 *
 * Since Linux 3.16 a reversed layout costs one mapping (VMA) per page whatever the
 * primitive, so past the arena's VMA budget the layout cannot be built by remapping:
 * the demo says so and exits with status 2, or with --fallback copy builds the same
 * contents by copying into fresh file pages shown by one linear mapping.
 */
#include "common.h"

#include <getopt.h>

struct options {
    size_t size;
    int mover;
    size_t vma_budget;
    bool fallback_copy;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: arena-reverse [--size BYTES] [--mover NAME] [--vma-budget N] [--fallback none|copy]\n"
            "\n"
            "Fills a backing file of --size bytes (default 10M) with a pattern per page, then builds\n"
            "a view whose slot i shows file page N-1-i and verifies it page by page.\n"
            "\n"
            "  --size BYTES      file size: 4096, 256K, 10M, 1G (rounded down to whole pages)\n"
            "  --mover NAME      how the reversed view is built:\n"
            "                      remap_file_pages|rfp, mmap_fixed|fixed, auto: map the file linearly,\n"
            "                        then rearrange it with arena_view_apply (as the seed does);\n"
            "                      mremap, copy: map the file at staging slots, then arena_view_move\n"
            "                        each page to its reversed slot\n"
            "  --vma-budget N    the arena's VMA budget (default: a safe share of vm.max_map_count)\n"
            "  --fallback copy   when the layout needs more mappings than the budget allows, copy\n"
            "                    the pages reversed into fresh file pages shown by one mapping\n"
            "  --fallback none   (default) report the shortfall and exit with status 2\n"
            "\n"
            "Exit status: 0 verified, 1 error or mismatch, 2 over the VMA budget, 64 bad usage.\n");
}

static struct options parse(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"size", required_argument, NULL, 's'},
        {"mover", required_argument, NULL, 'm'},
        {"vma-budget", required_argument, NULL, 'b'},
        {"fallback", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    struct options o = {.size = (size_t)10 << 20, .mover = ARENA_MOVE_REMAP_FILE_PAGES};
    int c;
    while ((c = getopt_long(argc, argv, "s:m:b:f:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's': o.size = demo_parse_size("--size", optarg); break;
        case 'm': o.mover = demo_parse_mover(optarg); break;
        case 'b': o.vma_budget = demo_parse_size("--vma-budget", optarg); break;
        case 'f':
            if (strcmp(optarg, "copy") == 0)
                o.fallback_copy = true;
            else if (strcmp(optarg, "none") != 0)
                demo_usage_error("--fallback: 'none' or 'copy', not '%s'", optarg);
            break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(DEMO_EXIT_USAGE);
        }
    }
    if (optind < argc)
        demo_usage_error("unexpected argument '%s' (see --help)", argv[optind]);
    return o;
}

/* Word w of logical page p: distinct for every page and every word, so a page shown at
 * the wrong slot, or a torn page, cannot pass. */
static inline uint64_t pattern(size_t page, size_t word)
{
    return ((uint64_t)page + 1) * 0x9E3779B97F4A7C15u ^ (uint64_t)word;
}

static void fill(char *base, size_t npages, size_t ps)
{
    for (size_t p = 0; p < npages; p++) {
        uint64_t *w = (uint64_t *)(base + p * ps);
        for (size_t i = 0; i < ps / sizeof *w; i++)
            w[i] = pattern(p, i);
        demo_progress("filling", p + 1, npages);
    }
    demo_progress_done();
}

/* Slot i of rev must show logical page n-1-i; returns the first bad slot, or n. */
static size_t verify(const char *rev, const char *orig, size_t n, size_t ps)
{
    for (size_t i = 0; i < n; i++) {
        const uint64_t *w = (const uint64_t *)(rev + i * ps);
        for (size_t k = 0; k < ps / sizeof *w; k++)
            if (w[k] != pattern(n - 1 - i, k))
                return i;
        /* and, as the seed does, against the original mapping read backwards */
        if (memcmp(rev + i * ps, orig + (n - 1 - i) * ps, ps) != 0)
            return i;
        demo_progress("verifying", i + 1, n);
    }
    demo_progress_done();
    return n;
}

/* The seed's way: map the file linearly, then rearrange the mapping in place. */
static int reverse_in_place(arena_view_t *rev, size_t first, size_t n)
{
    int err = arena_view_map(rev, 0, first, n);
    if (err)
        return err;
    size_t *table = malloc(n * sizeof *table);
    if (!table)
        return ARENA_ENOMEM;
    for (size_t i = 0; i < n; i++)
        table[i] = first + n - 1 - i;
    err = arena_view_apply(rev, 0, table, n);
    free(table);
    return err;
}

/* The moving primitives: the file sits linearly at slots n..2n-1 of the view and each
 * page is moved to its reversed slot below n. */
static int reverse_by_moves(arena_view_t *rev, size_t first, size_t n)
{
    int err = arena_view_map(rev, n, first, n);
    for (size_t j = 0; !err && j < n; j++) {
        err = arena_view_move(rev, n - 1 - j, n + j, 1);
        demo_progress("moving", j + 1, n);
    }
    demo_progress_done();
    return err;
}

/* The fallback: the same contents in fresh file pages, in order, so one mapping shows
 * them all. */
static int reverse_by_copy(arena_t *a, const char *orig, size_t n, arena_view_t **out)
{
    size_t ps = arena_page_size(a), first;
    int err = arena_file_alloc(a, n, &first);
    if (err)
        return err;
    err = arena_view_open(a, ARENA_VIEW_EMPTY, n, ARENA_PROT_READ | ARENA_PROT_WRITE, 0, out);
    if (!err)
        err = arena_view_map(*out, 0, first, n);
    if (err)
        return err;
    char *dst = arena_view_base(*out);
    for (size_t i = 0; i < n; i++) {
        memcpy(dst + i * ps, orig + (n - 1 - i) * ps, ps);
        demo_progress("copying", i + 1, n);
    }
    demo_progress_done();
    return 0;
}

static bool is_budget_error(int err)
{
    return err == ARENA_EVMA || err == ARENA_ENOMEM;
}

int main(int argc, char **argv)
{
    struct options o = parse(argc, argv);
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.mover = o.mover;
    cfg.vma_budget = o.vma_budget;
    arena_t *a;
    demo_check(arena_create(&a, &cfg), "arena_create");

    size_t ps = arena_page_size(a);
    size_t n = o.size / ps;
    if (n == 0)
        demo_usage_error("--size %zu is smaller than one page (%zu bytes)", o.size, ps);

    size_t first;
    demo_check(arena_file_alloc(a, n, &first), "arena_file_alloc");
    arena_view_t *orig;
    demo_check(arena_view_open(a, ARENA_VIEW_EMPTY, n, ARENA_PROT_READ | ARENA_PROT_WRITE, 0, &orig),
               "arena_view_open (original)");
    demo_check(arena_view_map(orig, 0, first, n), "arena_view_map (original)");
    printf("writing %zu pages of %zu bytes (%.1f MiB) to file pages %zu..%zu, a pattern per page\n", n, ps,
           (double)(n * ps) / (1 << 20), first, first + n - 1);
    fill(arena_view_base(orig), n, ps);

    bool by_moves = o.mover == ARENA_MOVE_MREMAP || o.mover == ARENA_MOVE_COPY;
    printf("reversing with %s (%s): slot i of a new view shows file page %zu-i\n", demo_mover_name(o.mover),
           by_moves ? "linear at staging slots, then arena_view_move page by page"
                    : "linear map, then arena_view_apply of the reversed table",
           first + n - 1);

    arena_view_t *rev;
    demo_check(arena_view_open(a, ARENA_VIEW_EMPTY, by_moves ? 2 * n : n,
                               ARENA_PROT_READ | ARENA_PROT_WRITE, 0, &rev),
               "arena_view_open (reversed)");
    demo_check(arena_view_set_mover(rev, o.mover), "arena_view_set_mover");
    uint64_t t0 = demo_now_ns();
    int err = by_moves ? reverse_by_moves(rev, first, n) : reverse_in_place(rev, first, n);
    uint64_t t1 = demo_now_ns();
    const char *how = demo_mover_name(o.mover);

    if (err && is_budget_error(err)) {
        arena_stats_t st;
        demo_check(arena_stats(a, &st), "arena_stats");
        fprintf(stderr,
                "%s: the reversed layout needs %zu mappings (one per page) against a VMA budget of %zu "
                "(the arena holds %zu now; the view %zu by its count, %ld in /proc/self/maps): %s\n",
                program_invocation_short_name, n, st.vma_budget, st.vmas, arena_view_vmas(rev),
                demo_maps_count(arena_view_base(rev),
                                (char *)arena_view_base(rev) + arena_view_slots(rev) * arena_page_size(a)),
                arena_strerror(err));
        if (!o.fallback_copy)
            demo_exit(DEMO_EXIT_BUDGET, "not built; rerun with --fallback copy, a larger --vma-budget or a "
                                        "smaller --size");
        demo_check(arena_view_close(rev), "arena_view_close");
        printf("fallback: copying the pages reversed into %zu fresh file pages, shown by one mapping\n", n);
        t0 = demo_now_ns();
        err = reverse_by_copy(a, arena_view_base(orig), n, &rev);
        t1 = demo_now_ns();
        if (is_budget_error(err))
            demo_exit(DEMO_EXIT_BUDGET, "even the copy fallback is over the budget: %s", arena_strerror(err));
        demo_check(err, "copy fallback");
        how = "copy fallback";
    }
    demo_check(err, "reversing");

    const char *rev_base = arena_view_base(rev);
    long maps = demo_maps_count(rev_base, rev_base + n * ps);
    arena_stats_t st;
    demo_check(arena_stats(a, &st), "arena_stats");
    printf("reversed %zu pages by %s in %.3f ms (%.2f us/page)\n", n, how, (double)(t1 - t0) / 1e6,
           (double)(t1 - t0) / 1e3 / (double)n);
    printf("VMAs of the reversed slots: %ld in /proc/self/maps; the arena accounts %zu for the view, "
           "%zu in all (budget %zu)\n",
           maps, arena_view_vmas(rev), st.vmas, st.vma_budget);

    t0 = demo_now_ns();
    size_t bad = verify(rev_base, arena_view_base(orig), n, ps);
    t1 = demo_now_ns();
    if (bad != n)
        demo_die("MISMATCH: slot %zu does not show logical page %zu (the view says file page %zu)", bad,
                 n - 1 - bad, arena_view_file_page(rev, bad));
    printf("verified %zu pages in %.3f ms: slot i shows page %zu-i\n", n, (double)(t1 - t0) / 1e6, n - 1);

    demo_check(arena_view_close(rev), "arena_view_close");
    demo_check(arena_view_close(orig), "arena_view_close");
    arena_destroy(a);
    printf("Test passed\n");
    return 0;
}
