/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * Shared by hmmv_fuzz and hmmv_soak: the reporting hooks that odp/odp_verbs.c expects of its
 * program (tfail, tskip, tnote, verbose, kind_names), a seeded PRNG, FNV-1a, and reading our
 * own memory through /proc/self/mem, which fails cleanly on an unmapped page instead of
 * faulting and (with the kernel's FOLL_FORCE) reads PROT_NONE pages too.
 */
#ifndef HMMV_FUZZ_COMMON_H
#define HMMV_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "odp/odp.h"

/* xoshiro256** seeded through splitmix64: the whole sequence follows from one 64-bit seed. */
struct rng {
	uint64_t s[4];
};

uint64_t splitmix64(uint64_t *state);
void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);

/* 0 .. n - 1 (0 for n == 0); the modulo bias does not matter here. */
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

static inline bool rng_chance(struct rng *r, unsigned int percent)
{
	return rng_below(r, 100) < percent;
}

/* @n bytes of the stream @seed names (the same seed always gives the same bytes). */
void fill_stream(uint8_t *p, size_t n, uint64_t seed);
uint64_t fnv1a64(const void *p, size_t n);
double now_s(void);

/* Program name for tfail()'s messages. */
extern const char *fuzz_prog;

/* /proc/self/mem of the calling process (open it again after fork: it names one mm). */
int self_mem_open(void);
/* Bytes read (short or -1 at an unmapped page). */
ssize_t self_mem_read(int fd, uint64_t addr, void *buf, size_t len);
/* Whether /proc/self/mem reads PROT_NONE memory here (kernel proc_mem.force_override). */
bool self_mem_reads_none(int fd);

#endif /* HMMV_FUZZ_COMMON_H */
