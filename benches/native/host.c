/*
 * Host shim for the native build of a popek guest workload (benches/compare.sh):
 * main() hands the program's arguments to kmain() as the guest's command line and prints
 * "NAME: PASS" the way the guest runtime does, so the output is the guest's byte for byte.
 */
#include <stdarg.h>
#include <stdlib.h>

#include "rt.h"

static int argc_;
static char **argv_;

/* The argument "key=..." or NULL. */
static const char *find_arg(const char *key) {
    size_t kl = strlen(key);
    for (int i = 1; i < argc_; i++)
        if (!strncmp(argv_[i], key, kl) && argv_[i][kl] == '=') return argv_[i] + kl + 1;
    return NULL;
}

uint32_t arg_uint(const char *key, uint32_t def) {
    const char *v = find_arg(key);
    if (!v || *v < '0' || *v > '9') return def;
    uint32_t n = 0;
    while (*v >= '0' && *v <= '9') n = n * 10 + (uint32_t)(*v++ - '0');
    return n;
}

int arg_str(const char *key, char *buf, size_t size) {
    const char *v = find_arg(key);
    if (!v) return 0;
    snprintf(buf, size, "%s", v);
    return 1;
}

void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("FAIL: ", stdout);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    exit(3);
}

int main(int argc, char **argv) {
    argc_ = argc;
    argv_ = argv;
    int r = kmain();
    if (r) fail("%s returned %d", guest_name, r);
    printf("%s: PASS\n", guest_name);
    return 0;
}
