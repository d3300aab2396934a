/* src/core/status.c — status strings, per-thread error messages, logging. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "core/internal.h"

#define MSG_CAP 1024
static _Thread_local char g_msg[MSG_CAP];

const char *ct_status_str(ct_status s) {
    switch (s) {
#define CT__STATUS_CASE(name, val, desc) case name: return desc;
        CT_STATUS_LIST(CT__STATUS_CASE)
#undef CT__STATUS_CASE
    }
    return "unknown status";
}

const char *ct_errmsg(void) { return g_msg[0] ? g_msg : "no error message"; }

ct_status ct__err(ct_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, MSG_CAP, fmt, ap);
    va_end(ap);
    return s;
}

ct_status ct__err_prefix(ct_status s, const char *fmt, ...) {
    char pre[512], old[MSG_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, g_msg, MSG_CAP);
    /* pre, ": ", then as much of the old message as fits */
    size_t n = strlen(pre);
    if (n > MSG_CAP - 3) n = MSG_CAP - 3;
    memcpy(g_msg, pre, n);
    memcpy(g_msg + n, ": ", 2);
    size_t rest = MSG_CAP - 1 - (n + 2), o = strnlen(old, MSG_CAP - 1);
    if (o > rest) o = rest;
    memcpy(g_msg + n + 2, old, o);
    g_msg[n + 2 + o] = '\0';
    return s;
}

static void default_log(int level, const char *msg, void *ud) {
    (void)ud;
    static const char *names[] = {"debug", "info", "warning", "error"};
    fprintf(stderr, "ctune %s: %s\n", names[level < 0 ? 0 : level > 3 ? 3 : level], msg);
}

static ct_log_fn g_log = default_log;
static void *g_log_ud;
static int g_log_min = CT_LOG_WARN;

void ct_set_log(ct_log_fn fn, void *userdata, int min_level) {
    g_log = fn ? fn : default_log;
    g_log_ud = userdata;
    g_log_min = min_level;
}

void ct__log(int level, const char *fmt, ...) {
    if (level < g_log_min) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_log(level, buf, g_log_ud);
}
