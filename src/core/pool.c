/* src/core/pool.c — persistent worker-thread pool with low-latency dispatch,
 * and the per-task scratch buffers the kernels borrow from it.
 *
 * A decode step dispatches ~10 small jobs per layer, so a dispatch must cost
 * microseconds, not a thread creation. Workers are created once and wait for a
 * generation counter to change: they spin (with `pause`) for a bounded time,
 * then sleep on a Linux futex (off Linux the sleep is a sched_yield loop).
 *
 * Tasks ith = 0..n-1 are claimed from a counter tagged with the run's
 * generation, by the caller and the workers alike; the caller returns when all
 * n are done. So a worker that the OS has not scheduled yet (a busy machine,
 * more threads than free cores) costs no waiting: the caller runs its task.
 *
 * Lost wake-ups are excluded by the usual Dekker pattern with seq_cst atomics:
 * a sleeper publishes "I am about to sleep" and re-checks the word inside the
 * futex call; the waker changes the word and then checks for sleepers.
 *
 * Left out: tasks finer than one per thread, nested runs (ct__pool_run is NOT
 * reentrant: one run at a time per pool, never from inside a task; misuse is
 * logged and run serially), thread pinning. */
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif
#include "core/internal.h"
#include "tensor/ops.h"

/* Spin iterations before sleeping (~40 cycles each: a few hundred µs). Long
 * enough to bridge the gaps between the matmuls of one decode step. */
#define SPIN_ITERS 8192
#define MAX_THREADS 512

/* One per thread (thread i runs the workers' loop for i > 0; scratch i
 * belongs to task index i, whichever thread runs it), on its own cache lines. */
typedef struct {
    _Alignas(64) void *scratch; /* ct__alloc_big'd, cap bytes */
    size_t cap;
    pthread_t tid;
    int started;
    struct ct_pool *pool;
} slot;

struct ct_pool {
    int n;                             /* threads including the caller */
    slot *slots;                       /* (n,) scratch per task index */
    ct_task_fn fn;                     /* current task, valid while tasks remain */
    void *ctx;
    _Alignas(64) _Atomic uint32_t gen; /* bumped per dispatch (futex word) */
    _Atomic int sleepers;              /* workers inside futex wait on gen */
    _Atomic int stop;
    _Alignas(64) _Atomic uint64_t claim; /* (run gen << 32) | next unclaimed ith */
    _Alignas(64) _Atomic uint32_t done;  /* tasks finished in this run (futex word) */
    _Atomic int caller_sleeping;
    _Atomic int busy;                  /* a run is in progress (misuse check) */
};

/* ---- futex ------------------------------------------------------------- */
static void word_wait(_Atomic uint32_t *w, uint32_t val) {
#if defined(__linux__)
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
#else
    (void)w; (void)val;
    sched_yield();
#endif
}
static void word_wake(_Atomic uint32_t *w) {
#if defined(__linux__)
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)w;
#endif
}

/* Wait until *w != old; returns the new value. */
static uint32_t wait_change(struct ct_pool *p, uint32_t old) {
    for (int i = 0; i < SPIN_ITERS; i++) {
        uint32_t g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g != old) return g;
        CPU_RELAX();
    }
    uint32_t g;
    atomic_fetch_add(&p->sleepers, 1);
    while ((g = atomic_load(&p->gen)) == old) word_wait(&p->gen, old);
    atomic_fetch_sub(&p->sleepers, 1);
    return g;
}

/* Claim and run tasks of the current run until none is left. fn and ctx are
 * read after a successful claim: an unfinished task keeps the caller (and so
 * fn, ctx) waiting in ct__pool_run. */
static void work(struct ct_pool *p) {
    uint64_t c = atomic_load_explicit(&p->claim, memory_order_acquire);
    for (;;) {
        uint32_t ith = (uint32_t)c;
        if (ith >= (uint32_t)p->n) return;
        if (!atomic_compare_exchange_weak_explicit(&p->claim, &c, c + 1, memory_order_acq_rel, memory_order_acquire))
            continue;
        p->fn(p->ctx, (int)ith, p->n);
        if (atomic_fetch_add(&p->done, 1) + 1 == (uint32_t)p->n && atomic_load(&p->caller_sleeping))
            word_wake(&p->done);
        c = atomic_load_explicit(&p->claim, memory_order_acquire);
    }
}

static void *worker_main(void *arg) {
    slot *s = arg;
    struct ct_pool *p = s->pool;
    uint32_t seen = 0;
    for (;;) {
        seen = wait_change(p, seen);
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        work(p);
    }
    return NULL;
}

/* ---- lifetime ---------------------------------------------------------- */
static int online_cpus(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int c = CPU_COUNT(&set);
        if (c > 0) return c;
    }
#endif
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c > 0 ? (int)c : 1;
}

ct_status ct__pool_create(int n_threads, ct_pool **out) {
    *out = NULL;
    int n = n_threads > 0 ? n_threads : online_cpus();
    if (n > MAX_THREADS) return ct__err(CT_ERR_ARG, "thread pool: %d threads requested, at most %d", n, MAX_THREADS);
    struct ct_pool *p = ct__calloc(1, sizeof *p);
    if (!p) return ct__err(CT_ERR_NOMEM, "thread pool: out of memory");
    p->n = n;
    p->slots = aligned_alloc(64, sizeof(slot) * (size_t)n);
    if (!p->slots) { free(p); return ct__err(CT_ERR_NOMEM, "thread pool: out of memory"); }
    memset(p->slots, 0, sizeof(slot) * (size_t)n);
    for (int i = 0; i < n; i++) p->slots[i].pool = p;
    for (int i = 1; i < n; i++) {
        int rc = pthread_create(&p->slots[i].tid, NULL, worker_main, &p->slots[i]);
        if (rc != 0) {
            ct__pool_free(p);
            return ct__err(CT_ERR_NOMEM, "thread pool: cannot start thread %d of %d (error %d)", i, n, rc);
        }
        p->slots[i].started = 1;
    }
    *out = p;
    return CT_OK;
}

void ct__pool_free(ct_pool *p) {
    if (!p) return;
    atomic_store(&p->stop, 1);
    atomic_fetch_add(&p->gen, 1);
    word_wake(&p->gen);
    for (int i = 1; i < p->n; i++)
        if (p->slots[i].started) pthread_join(p->slots[i].tid, NULL);
    for (int i = 0; i < p->n; i++) ct__free_big(p->slots[i].scratch, p->slots[i].cap);
    free(p->slots);
    free(p);
}

int ct__pool_size(const ct_pool *p) { return p ? p->n : 1; }

/* ---- dispatch ---------------------------------------------------------- */
void ct__pool_run(ct_pool *p, ct_task_fn fn, void *ctx) {
    if (!p || p->n == 1) { fn(ctx, 0, 1); return; }
    if (atomic_exchange(&p->busy, 1)) {
        /* Misuse (nested or concurrent run): stay correct, lose parallelism.
         * Tasks that use pool scratch must not be run this way. */
        ct__log(CT_LOG_ERROR, "ct__pool_run: pool already running a task; running serially");
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    uint32_t g = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1; /* only callers write gen */
    atomic_store_explicit(&p->claim, (uint64_t)g << 32, memory_order_release); /* publishes fn/ctx/done */
    atomic_store(&p->gen, g);
    if (atomic_load(&p->sleepers)) word_wake(&p->gen);
    work(p);
    /* Wait for tasks other threads claimed: spin, then sleep on done. */
    const uint32_t n = (uint32_t)p->n;
    int i = 0;
    for (; i < SPIN_ITERS; i++) {
        if (atomic_load_explicit(&p->done, memory_order_acquire) == n) break;
        CPU_RELAX();
    }
    if (i == SPIN_ITERS) {
        atomic_store(&p->caller_sleeping, 1);
        uint32_t v;
        while ((v = atomic_load(&p->done)) != n) word_wait(&p->done, v);
        atomic_store(&p->caller_sleeping, 0);
    }
    atomic_store_explicit(&p->busy, 0, memory_order_release);
}

/* ---- scratch ----------------------------------------------------------- */
/* Fallback scratch for p == NULL, one per calling thread; it lives until the
 * thread exits (a bounded, reachable buffer, released by the OS). */
static _Thread_local void *tl_scratch;
static _Thread_local size_t tl_cap;

static void *grow(void **buf, size_t *cap, size_t bytes) {
    if (bytes <= *cap) return *buf;
    size_t want = bytes + bytes / 4 + 4096;
    want = (want + 4095) & ~(size_t)4095;
    void *nb = ct__alloc_big(want);
    if (!nb) return NULL;
    ct__free_big(*buf, *cap);
    *buf = nb;
    *cap = want;
    return nb;
}

void *ct__pool_scratch(ct_pool *p, int ith, size_t bytes) {
    if (!p) return grow(&tl_scratch, &tl_cap, bytes);
    if (ith < 0 || ith >= p->n) return NULL;
    slot *s = &p->slots[ith];
    return grow(&s->scratch, &s->cap, bytes);
}
