/*
 * track_sigsegv.c -- the libsigsegv tracking backend (docs/design.md §8, .req.track.sigsegv-handler, .req.track.foreign-faults).
 *
 * One process-wide handler, installed once through sigsegv_install_handler. It finds the
 * tracker of a faulting address through the view registry (arena__view_visit): a tracked
 * view's tracker is published in the view (arena__view_set_track) before its pages are
 * protected and given up after they are opened again; the handler opens the page inside
 * the registry's reader bracket, so the tracker is not freed while the handler uses it
 * (setting it NULL waits for a grace period). The handler takes no lock, mallocs nothing
 * and never waits, so registration needs no lock against it.
 *
 * libsigsegv does not chain to the SIGSEGV handler that was installed before it, and its
 * handler does not pass the siginfo and context on. So its sigaction is wrapped by a
 * trampoline that keeps both for the thread, and a fault outside every tracked view goes
 * to the prior handler with them; with no prior handler the default action is restored
 * and the fault, re-executed, kills the process with SIGSEGV as it would have without us.
 *
 * Tracking layer, below track.c (docs/design.md §2): calls view.c, map.c, os.c and
 * libsigsegv; reaches track.c only through the `fault` hook of struct arena__track.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sigsegv.h>
#include <string.h>

#include "track_impl.h"

/* What the handler found: 0 is "no tracked view here". */
#define AREA_OPENED 1
#define AREA_NOTHING 2
#define AREA_BUSY 3

/* Installation only. Taken by arena__tsig_attach, which runs under an arena lock, and
 * fork's prepare handler holds every arena lock: no thread holds it at fork(). */
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static bool installed;
static struct sigaction prior;      /* SIGSEGV disposition before ours */
static struct sigaction lib_action; /* libsigsegv's own, wrapped by trampoline() */
static _Atomic unsigned long epoch; /* bumped whenever a tracker is published or given up */

#define TLS __thread __attribute__((tls_model("initial-exec")))
static TLS siginfo_t *fault_info;
static TLS void *fault_context;
static TLS void *retry_addr;
static TLS unsigned long retry_epoch;

static void trampoline(int sig, siginfo_t *info, void *context)
{
    siginfo_t *outer_info = fault_info;
    void *outer_context = fault_context;
    fault_info = info;
    fault_context = context;
    if (lib_action.sa_flags & SA_SIGINFO)
        lib_action.sa_sigaction(sig, info, context);
    else
        lib_action.sa_handler(sig);
    fault_info = outer_info;
    fault_context = outer_context;
}

/* .req.track.foreign-faults: a fault that is not ours goes where it would have gone without the arena. */
static int chain(void *addr)
{
    struct sigaction p = prior;
    if ((p.sa_flags & SA_SIGINFO) && p.sa_sigaction != NULL) {
        siginfo_t synth;
        siginfo_t *info = fault_info;
        if (info == NULL) {
            memset(&synth, 0, sizeof synth);
            synth.si_signo = SIGSEGV;
            synth.si_code = SEGV_MAPERR;
            synth.si_addr = addr;
            info = &synth;
        }
        p.sa_sigaction(SIGSEGV, info, fault_context);
        return 1;
    }
    if (!(p.sa_flags & SA_SIGINFO) && p.sa_handler != SIG_DFL && p.sa_handler != SIG_IGN) {
        p.sa_handler(SIGSEGV);
        return 1;
    }
    /* Returning re-executes the instruction, which now meets the default action. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGSEGV, &dfl, NULL);
    return 1;
}

/* Runs inside the registry's reader bracket: t stays allocated until it returns. A view
 * tracked by userfaultfd has nothing for this handler. */
static int fault_in_view(arena_view_t *v, size_t slot, void *addr)
{
    (void)slot;
    struct arena__track *t = arena__view_track(v);
    if (t == NULL || t->backend != ARENA_TRACKER_SIGSEGV)
        return 0;
    int r = t->fault(t, addr);
    return r > 0 ? AREA_OPENED : r == 0 ? AREA_NOTHING : AREA_BUSY;
}

static int on_fault(void *addr, int serious)
{
    (void)serious;
    int r = arena__view_visit(addr, fault_in_view, addr);
    if (r == AREA_OPENED) {
        retry_addr = NULL;
        return 1;
    }
    if (r == AREA_BUSY)
        return 1;
    /* Nothing to open, or no area: a stop or another thread may have opened the page just
     * now, so try the instruction once more before calling the fault foreign. */
    unsigned long e = atomic_load(&epoch);
    if (retry_addr != addr || retry_epoch != e) {
        retry_addr = addr;
        retry_epoch = e;
        return 1;
    }
    retry_addr = NULL;
    return chain(addr);
}

static int install_locked(void)
{
    if (installed)
        return 0;
    struct sigaction before, bus_before, ours;
    if (sigaction(SIGSEGV, NULL, &before) != 0 || sigaction(SIGBUS, NULL, &bus_before) != 0)
        return arena__os_error(ARENA_EIO);
    prior = before; /* a foreign fault may reach on_fault as soon as it is installed */
    if (sigsegv_install_handler(on_fault) != 0)
        return ARENA_ENOTSUP;
    /* Some libsigsegv builds take SIGBUS as well; tracking never needs it. */
    sigaction(SIGBUS, &bus_before, NULL);
    if (sigaction(SIGSEGV, NULL, &lib_action) != 0) {
        int err = arena__os_error(ARENA_EIO);
        sigsegv_deinstall_handler();
        sigaction(SIGSEGV, &before, NULL);
        return err;
    }
    ours = lib_action;
    ours.sa_flags |= SA_SIGINFO;
    ours.sa_sigaction = trampoline;
    if (sigaction(SIGSEGV, &ours, NULL) != 0) {
        int err = arena__os_error(ARENA_EIO);
        sigsegv_deinstall_handler();
        sigaction(SIGSEGV, &before, NULL);
        return err;
    }
    installed = true;
    return 0;
}

int arena__tsig_attach(struct arena__track *t)
{
    pthread_mutex_lock(&install_lock);
    int err = install_locked();
    pthread_mutex_unlock(&install_lock);
    if (err != 0)
        return err;
    arena__view_set_track(t->view, t);
    atomic_fetch_add(&epoch, 1);
    return 0;
}

void arena__tsig_detach(struct arena__track *t)
{
    if (arena__view_track(t->view) != t)
        return;
    arena__view_set_track(t->view, NULL); /* returns once no handler still uses t */
    atomic_fetch_add(&epoch, 1);
}
