/*
 * arena-alias -- one file page at several addresses: two slots of one view, a slot of a
 * second view and a read-only view. A write through any writable alias is read back
 * through all of them, because they are the same page of the backing file (the seed's
 * "same file page at multiple locations", extended across views).
 */
#include "common.h"

#include <signal.h>
#include <sys/wait.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: arena-alias [--mover NAME]\n"
            "\n"
            "One file page P shown at view A slots 0 and 3, view B slot 1 and read-only view C slot 0\n"
            "(other slots show other file pages). Writes through A slot 3 and through B slot 1 are read\n"
            "back through every alias; a write through C is shown to fault (in a child process).\n"
            "\n"
            "  --mover NAME   remap_file_pages|rfp, mmap_fixed|fixed (default), mremap, copy, auto\n"
            "\n"
            "Exit status: 0 verified, 1 error or mismatch, 64 bad usage.\n");
}

struct alias {
    const char *name;
    arena_view_t *view;
    size_t slot;
    bool is_p;   /* shows the shared file page P */
};

static char *addr_of(const struct alias *al, size_t ps)
{
    return (char *)arena_view_base(al->view) + al->slot * ps;
}

#define MSG_OFFSET 100

/* Print what every alias shows at MSG_OFFSET; every P alias must show msg, the others
 * must not. Returns the number of disagreements. */
static int read_all(const struct alias *als, size_t n, size_t ps, const char *msg)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        const char *at = addr_of(&als[i], ps) + MSG_OFFSET;
        bool shows = strncmp(at, msg, strlen(msg) + 1) == 0;
        printf("  %-14s %p  %s  \"%.40s\"\n", als[i].name, (void *)addr_of(&als[i], ps),
               als[i].is_p ? "P  " : "   ", at);
        if (shows != als[i].is_p) {
            fprintf(stderr, "%s: %s %s the message\n", program_invocation_short_name, als[i].name,
                    als[i].is_p ? "does not show" : "wrongly shows");
            bad++;
        }
    }
    return bad;
}

/* A write through the read-only alias must fault: try it in a child. */
static bool write_faults(char *ro)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        demo_die("fork: %s", strerror(errno));
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        *(volatile char *)ro = '!';
        _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid)
        demo_die("waitpid: %s", strerror(errno));
    return WIFSIGNALED(status) && (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS);
}

int main(int argc, char **argv)
{
    int mover = demo_mover_args(argc, argv, ARENA_MOVE_MMAP_FIXED, usage);

    arena_t *a;
    demo_check(arena_create(&a, NULL), "arena_create");
    size_t ps = arena_page_size(a), first;
    demo_check(arena_file_alloc(a, 3, &first), "arena_file_alloc");
    const size_t P = first, Q = first + 1, R = first + 2;
    const int rw = ARENA_PROT_READ | ARENA_PROT_WRITE;

    arena_view_t *va, *vb, *vc;
    demo_check(arena_view_open(a, ARENA_VIEW_EMPTY, 4, rw, 0, &va), "arena_view_open (A)");
    demo_check(arena_view_open(a, ARENA_VIEW_EMPTY, 2, rw, 0, &vb), "arena_view_open (B)");
    demo_check(arena_view_open(a, ARENA_VIEW_EMPTY, 1, ARENA_PROT_READ, 0, &vc), "arena_view_open (C)");
    demo_check(arena_view_set_mover(va, mover), "arena_view_set_mover");
    demo_check(arena_view_set_mover(vb, mover), "arena_view_set_mover");
    demo_check(arena_view_set_mover(vc, mover), "arena_view_set_mover");
    /* A: P Q R P (the seed's example 2), B: Q P, C: P read-only */
    const size_t table_a[4] = {P, Q, R, P}, table_b[2] = {Q, P};
    demo_check(arena_view_apply(va, 0, table_a, 4), "arena_view_apply (A)");
    demo_check(arena_view_apply(vb, 0, table_b, 2), "arena_view_apply (B)");
    demo_check(arena_view_map(vc, 0, P, 1), "arena_view_map (C)");

    const struct alias als[] = {
        {"A slot 0", va, 0, true}, {"A slot 1", va, 1, false}, {"A slot 2", va, 2, false},
        {"A slot 3", va, 3, true}, {"B slot 0", vb, 0, false}, {"B slot 1", vb, 1, true},
        {"C slot 0 (ro)", vc, 0, true},
    };
    const size_t nals = sizeof als / sizeof als[0];
    memset(addr_of(&als[0], ps), 'X', ps);   /* P */
    memset(addr_of(&als[1], ps), 'Y', ps);   /* Q */
    memset(addr_of(&als[2], ps), 'Z', ps);   /* R */
    printf("file pages P=%zu Q=%zu R=%zu; view A shows P Q R P, view B shows Q P, view C (read-only) shows P\n",
           P, Q, R);

    int bad = 0;
    const char *m1 = "written through A slot 3";
    strcpy(addr_of(&als[3], ps) + MSG_OFFSET, m1);
    printf("after a write through A slot 3, at offset %d of each slot:\n", MSG_OFFSET);
    bad += read_all(als, nals, ps, m1);

    const char *m2 = "then through B slot 1";
    strcpy(addr_of(&als[5], ps) + MSG_OFFSET, m2);
    printf("after a write through B slot 1:\n");
    bad += read_all(als, nals, ps, m2);

    char perms[5];
    demo_maps_perms(addr_of(&als[6], ps), perms);
    printf("view C is mapped \"%s\" in /proc/self/maps (arena_view_prot = %d)\n", perms, arena_view_prot(vc));
    if (perms[1] != '-' || arena_view_prot(vc) != ARENA_PROT_READ) {
        fprintf(stderr, "%s: view C is not read-only\n", program_invocation_short_name);
        bad++;
    }
    bool faults = write_faults(addr_of(&als[6], ps));
    printf("a write through view C %s\n", faults ? "faults, as it should" : "DID NOT fault");
    bad += !faults;

    printf("mappings: A %ld (arena: %zu), B %ld (arena: %zu), C %ld (arena: %zu)\n",
           demo_maps_count(arena_view_base(va), (char *)arena_view_base(va) + 4 * ps), arena_view_vmas(va),
           demo_maps_count(arena_view_base(vb), (char *)arena_view_base(vb) + 2 * ps), arena_view_vmas(vb),
           demo_maps_count(arena_view_base(vc), (char *)arena_view_base(vc) + ps), arena_view_vmas(vc));

    demo_check(arena_view_close(vc), "arena_view_close");
    demo_check(arena_view_close(vb), "arena_view_close");
    demo_check(arena_view_close(va), "arena_view_close");
    arena_destroy(a);
    if (bad)
        demo_die("%d check(s) failed", bad);
    printf("Test passed\n");
    return 0;
}
