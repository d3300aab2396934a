/* tests/unit/test_pool.c — ct__pool_*: every ith runs exactly once per call,
 * with nth = pool size; results are visible to the caller on return; many
 * rapid calls (spin path) and calls after a sleep (futex path); scratch
 * buffers are per thread, aligned and persistent; create/free with idle
 * workers, with sizes 1..8 and the NULL pool. */
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include "check.h"
#include "core/internal.h"
#include "tensor/ops.h"

#define MAXT 16

typedef struct {
    _Atomic int hits[MAXT];   /* times each ith ran */
    int nth_seen[MAXT];       /* nth passed to each ith */
    long plain[MAXT];         /* non-atomic writes: must be visible after run */
    _Atomic int bad;
    int round;
} ctx_t;

static void task(void *c, int ith, int nth) {
    ctx_t *x = c;
    if (ith < 0 || ith >= MAXT) { atomic_fetch_add(&x->bad, 1); return; }
    atomic_fetch_add(&x->hits[ith], 1);
    x->nth_seen[ith] = nth;
    x->plain[ith] = (long)x->round * 1000 + ith;
}

/* One call: each of ith 0..n-1 ran once with nth == n, and wrote its slot. */
static int one_call(ct_pool *p, ctx_t *x, int n, int round) {
    memset(x, 0, sizeof *x);
    x->round = round;
    ct__pool_run(p, task, x);
    int ok = atomic_load(&x->bad) == 0;
    for (int i = 0; i < MAXT; i++) {
        int want = i < n ? 1 : 0;
        if (atomic_load(&x->hits[i]) != want) ok = 0;
        if (i < n && (x->nth_seen[i] != n || x->plain[i] != (long)round * 1000 + i)) ok = 0;
    }
    return ok;
}

/* Sum 0..N-1 split by ith/nth: the shape of every kernel's row split. */
typedef struct { long partial[MAXT]; long n; } sum_t;
static void sum_task(void *c, int ith, int nth) {
    sum_t *s = c;
    long a = s->n * ith / nth, b = s->n * (ith + 1) / nth, acc = 0;
    for (long i = a; i < b; i++) acc += i;
    s->partial[ith] = acc;
}

static void sleep_ms(int ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

int main(void) {
    static ctx_t x;
    /* NULL pool: runs (0, 1) on the caller. */
    CHECK_EQ_INT(ct__pool_size(NULL), 1);
    CHECK(one_call(NULL, &x, 1, 7));

    for (int n = 1; n <= 8; n++) {
        ct_pool *p = NULL;
        CHECK_OK(ct__pool_create(n, &p));
        if (!p) continue;
        CHECK_EQ_INT(ct__pool_size(p), n);
        /* many rapid calls: workers still spinning between them */
        int ok = 1;
        for (int r = 0; r < (n <= 2 ? 5000 : 300); r++) ok &= one_call(p, &x, n, r);
        CHECK(ok);
        /* calls separated by sleeps: workers asleep on the futex */
        ok = 1;
        for (int r = 0; r < 3; r++) { sleep_ms(30); ok &= one_call(p, &x, n, 5000 + r); }
        CHECK(ok);
        /* a real reduction */
        sum_t s = {{0}, 1000003};
        ct__pool_run(p, sum_task, &s);
        long tot = 0;
        for (int i = 0; i < n; i++) tot += s.partial[i];
        CHECK_EQ_INT(tot, 1000003L * 1000002L / 2);
        /* scratch: distinct, aligned, kept while no bigger size is asked */
        void *a0 = ct__pool_scratch(p, 0, 1000), *a1 = ct__pool_scratch(p, n - 1, 1000);
        CHECK(a0 && a1);
        CHECK(((uintptr_t)a0 & 63) == 0);
        if (n > 1) CHECK(a0 != a1);
        CHECK(ct__pool_scratch(p, 0, 500) == a0);
        CHECK(ct__pool_scratch(p, 0, 1 << 20) != NULL);
        CHECK(ct__pool_scratch(p, n, 16) == NULL); /* ith out of range */
        ct__pool_free(p);                          /* workers idle (spinning) */
    }
    /* destroy after the workers went to sleep, and right after creation */
    ct_pool *p = NULL;
    CHECK_OK(ct__pool_create(4, &p));
    sleep_ms(50);
    ct__pool_free(p);
    CHECK_OK(ct__pool_create(3, &p));
    ct__pool_free(p);
    ct__pool_free(NULL);
    /* n <= 0: one thread per online CPU */
    CHECK_OK(ct__pool_create(0, &p));
    CHECK(ct__pool_size(p) >= 1);
    CHECK(one_call(p, &x, ct__pool_size(p), 1));
    ct__pool_free(p);
    CHECK(ct__pool_create(100000, &p) != CT_OK);
    CHECK(p == NULL);
    /* dispatch latency, for information */
    CHECK_OK(ct__pool_create(2, &p));
    double t0 = ct__now();
    for (int r = 0; r < 20000; r++) ct__pool_run(p, task, &x);
    printf("pool(2): %.2f us per ct__pool_run\n", (ct__now() - t0) / 20000 * 1e6);
    ct__pool_free(p);
    return ct_check_done("test_pool");
}
