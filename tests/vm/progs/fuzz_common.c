// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Helpers of hmmv_fuzz and hmmv_soak (see fuzz_common.h); hmmv_faultinj reports through
 * its tfail/tskip/tnote too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_common.h"

const char *const kind_names[K_NR] = { "pinned", "odp", "implicit" };
bool verbose;
const char *fuzz_prog = "fuzz";

/* odp_verbs.c reports through these; here they go straight to stderr. */
static void say(const char *tag, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: %s", fuzz_prog, tag);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int tfail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say("error: ", fmt, ap);
	va_end(ap);
	return T_FAIL;
}

int tskip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say("skip: ", fmt, ap);
	va_end(ap);
	return T_SKIP;
}

void tnote(const char *fmt, ...)
{
	va_list ap;

	if (!verbose)
		return;
	va_start(ap, fmt);
	say("", fmt, ap);
	va_end(ap);
}

uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

void fill_stream(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t st = seed;

	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = splitmix64(&st);

		memcpy(p + i, &v, n - i < 8 ? n - i : 8);
	}
}

uint64_t fnv1a64(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int self_mem_open(void)
{
	return open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
}

ssize_t self_mem_read(int fd, uint64_t addr, void *buf, size_t len)
{
	size_t done = 0;

	/* pread() stops at the first page it cannot reach: that is the answer. */
	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(addr + done));

		if (n <= 0)
			return done ? (ssize_t)done : -1;
		done += n;
	}
	return (ssize_t)done;
}

bool self_mem_reads_none(int fd)
{
	uint8_t *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t b = 0;
	bool ok;

	if (p == MAP_FAILED)
		return false;
	p[0] = 0x5a;
	ok = !mprotect(p, PAGE, PROT_NONE) && self_mem_read(fd, (uintptr_t)p, &b, 1) == 1 && b == 0x5a;
	munmap(p, PAGE);
	return ok;
}
