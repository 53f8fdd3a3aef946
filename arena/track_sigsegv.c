/*
 * track_sigsegv.c -- the libsigsegv tracking backend (docs/design.md §8, .req.track.sigsegv-handler, .req.track.foreign-faults).
 *
 * One process-wide handler, installed once through sigsegv_install_handler. Tracked views
 * are areas of one sigsegv_dispatcher. The dispatcher is not thread-safe and
 * sigsegv_register mallocs, so registration happens only in normal context, under a mutex,
 * and waits until no handler is inside the dispatcher (a reader count the handler raises
 * around sigsegv_dispatch); handlers arriving meanwhile spin until it is done. The
 * registering thread blocks its other signals, so no handler on that very thread can wait
 * for it.
 *
 * libsigsegv does not chain to the SIGSEGV handler that was installed before it, and its
 * handler does not pass the siginfo and context on. So its sigaction is wrapped by a
 * trampoline that keeps both for the thread, and a fault outside every tracked area goes
 * to the prior handler with them; with no prior handler the default action is restored
 * and the fault, re-executed, kills the process with SIGSEGV as it would have without us.
 *
 * Tracking layer, below track.c (docs/design.md §2): calls view.c, map.c, os.c and
 * libsigsegv; reaches track.c only through the `fault` hook of struct arena__track.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sigsegv.h>
#include <string.h>

#include "track_impl.h"

/* Area handler results: sigsegv_dispatch answers 0 for an address of no area. */
#define AREA_OPENED 1
#define AREA_NOTHING 2
#define AREA_BUSY 3

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static sigsegv_dispatcher dispatcher;
static bool installed;
static struct sigaction prior;      /* SIGSEGV disposition before ours */
static struct sigaction lib_action; /* libsigsegv's own, wrapped by trampoline() */
static _Atomic unsigned readers;    /* handlers inside the dispatcher */
static _Atomic int writer;          /* a registration is changing it */
static _Atomic unsigned long epoch; /* bumped at every registration change */

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

static int area_handler(void *addr, void *arg)
{
    struct arena__track *t = arg;
    int r = t->fault(t, addr);
    return r > 0 ? AREA_OPENED : r == 0 ? AREA_NOTHING : AREA_BUSY;
}

static int on_fault(void *addr, int serious)
{
    (void)serious;
    for (;;) {
        atomic_fetch_add(&readers, 1);
        if (!atomic_load(&writer))
            break;
        atomic_fetch_sub(&readers, 1);
        while (atomic_load(&writer))
            ;
    }
    int r = sigsegv_dispatch(&dispatcher, addr);
    atomic_fetch_sub(&readers, 1);
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
    sigsegv_init(&dispatcher);
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
    prior = before;
    installed = true;
    return 0;
}

static void writer_enter(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    pthread_sigmask(SIG_BLOCK, &all, old);
    atomic_store(&writer, 1);
    while (atomic_load(&readers) != 0)
        sched_yield();
}

static void writer_leave(const sigset_t *old)
{
    atomic_fetch_add(&epoch, 1);
    atomic_store(&writer, 0);
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

int arena__tsig_attach(struct arena__track *t)
{
    pthread_mutex_lock(&reg_lock);
    int err = install_locked();
    if (err == 0) {
        sigset_t old;
        writer_enter(&old);
        t->ticket = sigsegv_register(&dispatcher, t->base, t->nslots << t->shift, area_handler, t);
        writer_leave(&old);
        if (t->ticket == NULL)
            err = ARENA_ENOMEM;
    }
    pthread_mutex_unlock(&reg_lock);
    return err;
}

void arena__tsig_detach(struct arena__track *t)
{
    if (t->ticket == NULL)
        return;
    pthread_mutex_lock(&reg_lock);
    sigset_t old;
    writer_enter(&old);
    sigsegv_unregister(&dispatcher, t->ticket);
    writer_leave(&old);
    t->ticket = NULL;
    pthread_mutex_unlock(&reg_lock);
}

/* In a forked child only the forking thread exists: whatever the other threads held
 * (the registration mutex, a place inside the dispatcher) is gone with them. */
void arena__tsig_forget(struct arena__track *t)
{
    (void)t;
    pthread_mutex_init(&reg_lock, NULL);
    atomic_store(&readers, 0);
    atomic_store(&writer, 0);
}
