// SPDX-License-Identifier: LGPL-2.1-or-later
// A tiny test harness: TEST(name) { ... } registers a case, TEST_MAIN() runs them all.
// A case fails through g_assert*/check(); exit status 77 means "skipped" to meson.
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    const char *name;
    void (*fn)(void);
} TestCase;

#define TEST_MAX_CASES 256
extern TestCase test_cases[TEST_MAX_CASES];
extern unsigned test_ncases;

#define TEST(n)                                                                   \
    static void test_##n(void);                                                   \
    __attribute__((constructor)) static void test_register_##n(void)             \
    {                                                                             \
        g_assert(test_ncases < TEST_MAX_CASES);                                   \
        test_cases[test_ncases++] = (TestCase) { #n, test_##n };                   \
    }                                                                             \
    static void test_##n(void)

/* Runs every case, or only those named on the command line. */
int test_main(int argc, char **argv);

#define TEST_MAIN()                                                               \
    TestCase test_cases[TEST_MAX_CASES];                                          \
    unsigned test_ncases;                                                         \
    int main(int argc, char **argv) { return test_main(argc, argv); }
