// SPDX-License-Identifier: LGPL-2.1-or-later
// What every fuzz target shares: libFuzzer's entry point, and a file the parsers that read
// from a path (templates, config) get their input through.
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes @data to this process's scratch file in /dev/shm; returns its path (static). */
const char *fuzz_scratch_file(const uint8_t *data, size_t size, const char *suffix);

/* @data as a NUL-terminated copy, to be g_free()d. */
char *fuzz_cstring(const uint8_t *data, size_t size);
