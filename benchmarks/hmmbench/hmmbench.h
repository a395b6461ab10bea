/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * hmmbench's shared definitions: the bench (device, QPs, source MR), results, memory checks
 * and the verbs helpers the tests use. See hmmbench.c for the program and its tests.
 */
#ifndef HMMBENCH_H
#define HMMBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/utsname.h>

#include <infiniband/hmmverbs.h>
#include <infiniband/verbs.h>

#define KIB UINT64_C(1024)
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)
#define PAGE UINT64_C(4096)
#define PAGE_WORDS (PAGE / 8)
#define MSG (64 * KIB)		/* message size of the bandwidth tests */
#define WINDOW 16		/* messages outstanding */
#define MAX_REPEATS 15
#define PINNED_CAP (256 * MIB)	/* the guest has 2 GiB: pin no more than this */
#define NOVERLAP 16
#define CQ_TIMEOUT_S 30		/* no completion for this long: the transfer is stuck */
#define STORM_CHUNK MIB

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ACCESS (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ)

enum mode { M_PINNED, M_ODP, M_IMPLICIT };

struct options {
	enum mode mode;
	const char *mode_name;
	const char *dev;
	const char *tests;
	bool quick;
	bool stock;
	int repeats;
};

extern struct options opt;
extern struct utsname uts;
extern int failures;		/* measured operations that failed (not with --stock) */

struct bench {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;	/* the requester's completions */
	struct ibv_cq *rcq;	/* the responder's (RDMA WRITE gives none) */
	struct ibv_qp *req, *resp;
	int gid_index;
	union ibv_gid gid;
	enum ibv_mtu mtu;
	uint64_t *src;		/* WINDOW slots of MSG bytes */
	struct ibv_mr *src_mr;
	bool stats_noted;	/* "no counters" said once */
};

enum agg { AGG_MEDIAN, AGG_MIN, AGG_MAX };

struct series {
	double v[MAX_REPEATS];
	int n;
};

/*
 * What the target holds after an RDMA WRITE from the source slots: word w of a message is
 * pat(w, seed), except the first word of every 4 KiB page, which is stamp(its address, seed),
 * so that a page that received another page's data is caught as well as one that lost its
 * data. No byte of pat() and no stamp() is zero (the value of never-written memory).
 */
static inline uint64_t pat(uint64_t w, uint32_t seed)
{
	return ((w + 1) * 0x9e3779b97f4a7c15ull ^ (seed + 1ull) * 0xd1b54a32d192ed03ull) |
	       0x0101010101010101ull;
}

static inline uint64_t stamp(uint64_t va, uint32_t seed)
{
	return 0xa500000000000000ull | ((uint64_t)(seed & 0xff) << 48) | (va & 0xffffffffffffull);
}

struct check {
	uint64_t bad_bytes;	/* in 8-byte words that differ */
	uint64_t zero_bytes;	/* ...of which hold zero (never written) */
	uint64_t first_bad;	/* address of the first one */
	uint64_t first_got, first_want;
};

struct xfer {
	double secs;
	uint64_t bytes;		/* written by successful completions */
	int wc_errors;		/* completions with an error status (or a stuck transfer) */
	enum ibv_wc_status first_status;
};

/* hmmbench.c: messages, results, memory */
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void die_err(const char *what, int err) __attribute__((noreturn));
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
double now_s(void);
void add(struct series *s, double v);
void report(const char *test, uint64_t size, const char *metric, const char *unit,
	    struct series *s, enum agg how, const char *extra);
void *xmap(size_t len);
void check_msgs(uint64_t base, uint64_t nmsg, uint64_t stride, uint64_t msglen,
		uint32_t seed, struct check *c);
void verify(const char *what, uint64_t base, uint64_t nmsg, uint64_t stride,
	    uint64_t msglen, uint32_t seed, struct series *ok, struct series *bad);
int64_t meminfo_kernel(int64_t *slab_vm);

/* bench_verbs.c */
void bench_open(struct bench *b);
void bench_close(struct bench *b);
struct ibv_mr *reg_target(struct bench *b, void *p, size_t len);
struct ibv_mr *xreg_target(struct bench *b, void *p, size_t len);
void xdereg(struct ibv_mr *mr);
int mr_stats(struct bench *b, struct ibv_mr *mr, struct hmmv_mr_stats *s);
bool has_mirror(const struct hmmv_mr_stats *s);
int prefetch(struct bench *b, struct ibv_mr *mr, void *p, uint64_t len);
bool write_msgs(struct bench *b, uint64_t raddr, uint32_t rkey, uint64_t nmsg,
		uint64_t stride, uint64_t msglen, uint32_t seed, struct xfer *x);
double mbps(const struct xfer *x);
const char *wc_str(const struct xfer *x);

/* bench_transfer.c: the tests reg, first-touch and steady, invalidation-storm */
void test_reg(struct bench *b);
void test_first_touch(struct bench *b);
void test_storm(struct bench *b);

/* bench_memory.c: the tests overlap16, mirror-per-page, mirror-untouched, implicit-fixed */
void test_overlap(struct bench *b);
void test_mirror(struct bench *b);

#endif /* HMMBENCH_H */
