/*
 * arena-nonlinear -- TLPI Figure 49-5 on an arena: three file pages A B C shown by a
 * three-slot view, then slots 0 and 2 swapped so the view reads C B A while the file
 * is unchanged. The seed did it with two remap_file_pages() calls; here it is two
 * arena_view_map() calls with the mover of your choice.
 */
#include "common.h"


static void usage(FILE *out)
{
    fprintf(out,
            "usage: arena-nonlinear [--mover NAME]\n"
            "\n"
            "TLPI Figure 49-5: a 3-page view of file pages A B C; slot 0 and slot 2 are swapped\n"
            "(slot 0 shows file page 2, slot 2 shows file page 0) and the view reads C B A.\n"
            "\n"
            "  --mover NAME   remap_file_pages|rfp (default), mmap_fixed|fixed, mremap, copy, auto\n"
            "                 (for arena_view_map the moving ones establish the mapping with mmap_fixed)\n"
            "\n"
            "Exit status: 0 verified, 1 error or mismatch, 64 bad usage.\n");
}

/* Print what each slot shows (its first byte, and the file page the arena says it
 * shows); return the slot contents as a string like "CBA", '?' for a page that is not
 * all one byte. */
static void show(const arena_view_t *v, size_t ps, size_t first, const char *title, char seen[4])
{
    const char *base = arena_view_base(v);
    printf("%s\n", title);
    for (size_t slot = 0; slot < 3; slot++) {
        const char *page = base + slot * ps;
        char ch = page[0];
        for (size_t i = 1; i < ps; i++)
            if (page[i] != ch) {
                ch = '?';
                break;
            }
        seen[slot] = ch;
        printf("  slot %zu at %p: '%c'  (file page %zu)\n", slot, (const void *)page, ch,
               arena_view_file_page(v, slot) - first);
    }
    seen[3] = '\0';
    printf("  mappings in /proc/self/maps for the view: %ld; the arena accounts %zu\n",
           demo_maps_count(base, base + 3 * ps), arena_view_vmas(v));
}

int main(int argc, char **argv)
{
    int mover = demo_mover_args(argc, argv, ARENA_MOVE_REMAP_FILE_PAGES, usage);

    arena_t *a;
    demo_check(arena_create(&a, NULL), "arena_create");
    size_t ps = arena_page_size(a), first;
    demo_check(arena_file_alloc(a, 3, &first), "arena_file_alloc");

    arena_view_t *v;
    demo_check(arena_view_open(a, ARENA_VIEW_EMPTY, 3, ARENA_PROT_READ | ARENA_PROT_WRITE, 0, &v),
               "arena_view_open");
    demo_check(arena_view_set_mover(v, mover), "arena_view_set_mover");
    demo_check(arena_view_map(v, 0, first, 3), "arena_view_map (linear)");
    char *base = arena_view_base(v);
    memset(base, 'A', ps);
    memset(base + ps, 'B', ps);
    memset(base + 2 * ps, 'C', ps);
    printf("a 3-page view of file pages 0 1 2 (file pages %zu..%zu of the arena), written A B C\n", first,
           first + 2);

    char before[4], after[4];
    show(v, ps, first, "before the remap:", before);

    printf("arena_view_map(v, 0, file page 2, 1); arena_view_map(v, 2, file page 0, 1)   [mover %s]\n",
           demo_mover_name(mover));
    demo_check(arena_view_map(v, 0, first + 2, 1), "arena_view_map (slot 0 -> file page 2)");
    demo_check(arena_view_map(v, 2, first + 0, 1), "arena_view_map (slot 2 -> file page 0)");
    show(v, ps, first, "after the remap:", after);

    if (strcmp(before, "ABC") != 0)
        demo_die("before the remap the view read %s, expected ABC", before);
    if (strcmp(after, "CBA") != 0)
        demo_die("after the remap the view reads %s, expected CBA", after);
    if (arena_view_file_page(v, 0) != first + 2 || arena_view_file_page(v, 1) != first + 1 ||
        arena_view_file_page(v, 2) != first)
        demo_die("the arena's slot table disagrees with what the view shows");

    /* The file itself did not change: a second, linear view still reads A B C. */
    arena_view_t *lin;
    demo_check(arena_view_open(a, ARENA_VIEW_EMPTY, 3, ARENA_PROT_READ, 0, &lin), "arena_view_open (linear)");
    demo_check(arena_view_map(lin, 0, first, 3), "arena_view_map (linear check)");
    const char *l = arena_view_base(lin);
    printf("the file is unchanged: a linear view reads %c %c %c\n", l[0], l[ps], l[2 * ps]);
    if (l[0] != 'A' || l[ps] != 'B' || l[2 * ps] != 'C')
        demo_die("the linear view does not read A B C");

    demo_check(arena_view_close(lin), "arena_view_close");
    demo_check(arena_view_close(v), "arena_view_close");
    arena_destroy(a);
    printf("Test passed: C B A\n");
    return 0;
}
