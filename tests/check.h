/* tests/check.h — tiny assertion helpers for C tests: each failed check prints
 * both operands with file:line and counts; ct_check_done() returns the exit code. */
#ifndef CT_TESTS_CHECK_H
#define CT_TESTS_CHECK_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int ct_test_fails, ct_test_checks;

#define CHECK(cond) do { ct_test_checks++; if (!(cond)) { ct_test_fails++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_EQ_INT(a, b) do { long long _a = (long long)(a), _b = (long long)(b); ct_test_checks++; \
    if (_a != _b) { ct_test_fails++; fprintf(stderr, "%s:%d: %s == %s failed: %lld vs %lld\n", \
    __FILE__, __LINE__, #a, #b, _a, _b); } } while (0)
#define CHECK_NEAR(a, b, tol) do { double _a = (double)(a), _b = (double)(b); ct_test_checks++; \
    if (!(fabs(_a - _b) <= (tol))) { ct_test_fails++; fprintf(stderr, \
    "%s:%d: |%s - %s| <= %g failed: %.9g vs %.9g\n", __FILE__, __LINE__, #a, #b, (double)(tol), _a, _b); } } while (0)
#define CHECK_OK(expr) do { ct_status _s = (expr); ct_test_checks++; if (_s != CT_OK) { ct_test_fails++; \
    fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #expr, ct_status_str(_s), ct_errmsg()); } } while (0)

/* Largest |a[i] - b[i]| over the largest |b[i]| (over 1 when b is all zero);
 * a NaN anywhere in a - b makes it NaN, which fails any <= tolerance. */
static inline double ct_test_max_rel(const float *a, const float *b, size_t n) {
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return md / (mb > 0 ? mb : 1);
}

/* Print a summary and return the process exit code. */
static inline int ct_check_done(const char *name) {
    printf("%s: %d checks, %d failed\n", name, ct_test_checks, ct_test_fails);
    return ct_test_fails ? 1 : 0;
}
#endif
