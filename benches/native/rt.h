/*
 * Host stand-in for guests/runtime/rt.h: just what guests/kernels/compute.c uses, so that the
 * very same compute.c builds as a 32-bit Linux program (benches/compare.sh, "native" runner).
 * printf comes from the host C library; the string routines are the guest runtime's own
 * (guests/runtime/strings.c, linked in by compare.sh), so the native run does the guest's work.
 */
#ifndef POPEK_HOST_RT_H
#define POPEK_HOST_RT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* "key=N" among the program's arguments, or def. */
uint32_t arg_uint(const char *key, uint32_t def);
/* Copies the value of "key=WORD" into buf; 1 if the key was given, else 0. */
int arg_str(const char *key, char *buf, size_t size);
/* Prints "FAIL: ..." and exits with status 3 (what the guest's exit(1) gives). */
void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
#define CHECK(cond, ...)                \
    do {                                \
        if (!(cond)) fail(__VA_ARGS__); \
    } while (0)

extern const char guest_name[];
int kmain(void);

#endif
