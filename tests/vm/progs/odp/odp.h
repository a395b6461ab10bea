/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * hmmv_odp_test: ODP semantics through real verbs on Soft-RoCE (rxe loopback).
 *
 * One process: QP "req" issues operations, QP "resp" (same device, connected through the
 * device's RoCE v2 IPv4 GID) is the target, so that a test can change the target's memory
 * between operations. Each test runs in a child process of its own (a crash or a hang is that
 * test's FAIL, not the run's end) with a fresh device context.
 */
#ifndef HMMV_ODP_H
#define HMMV_ODP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <infiniband/verbs.h>

#define PAGE 4096UL
#define MIB (1024UL * 1024)

/* Test outcome (also the exit status of a test's child). */
enum { T_PASS = 0, T_FAIL = 1, T_SKIP = 77 };

/* What memory the target of a test is registered with. */
enum kind { K_PINNED, K_ODP, K_IMPLICIT, K_NR };
#define KB(k) (1u << (k))
#define K_ALL (KB(K_PINNED) | KB(K_ODP) | KB(K_IMPLICIT))
#define K_ODPS (KB(K_ODP) | KB(K_IMPLICIT))
extern const char *const kind_names[K_NR];

#define ACC_ALL (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | \
		 IBV_ACCESS_REMOTE_ATOMIC)

/* Two QPs of one type on the device, "req" connected to "resp". */
struct pair {
	enum ibv_qp_type type;
	struct ibv_qp *req, *resp;
	struct ibv_srq *srq;	/* resp receives from it when set */
	struct ibv_ah *ah;	/* UD */
};

struct env {
	const char *dev;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *scq;	/* req's completions */
	struct ibv_cq *rcq;	/* resp's completions */
	int gid_index;
	union ibv_gid gid;
	enum ibv_mtu mtu;
	struct pair rc;
	enum kind kind;
	struct ibv_mr *implicit; /* the implicit MR (kind implicit) */
};

/* A local (requester-side) buffer: pinned unless said otherwise. */
struct lbuf {
	uint8_t *p;
	size_t len;
	struct ibv_mr *mr;
	bool own_mr;
};

struct tcase {
	const char *name;
	int (*fn)(struct env *e, const struct tcase *tc);
	unsigned int kinds;
	size_t size, off;	/* for the parametric data tests */
	unsigned int timeout;	/* seconds; 0: default */
};

/* hmmv_odp_test.c */
int tfail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int tskip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tnote(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern bool verbose;

/* odp_verbs.c */
int env_open(struct env *e, const char *dev, enum kind kind);
void env_close(struct env *e);
int pair_create(struct env *e, struct pair *p, enum ibv_qp_type type, bool srq);
void pair_destroy(struct pair *p);
int pair_reset(struct env *e, struct pair *p);
void drain_cqs(struct env *e);
struct ibv_mr *mr_get(struct env *e, enum kind kind, void *addr, size_t len, int access);
void mr_put(struct env *e, struct ibv_mr *mr);
int lbuf_get(struct env *e, struct lbuf *b, size_t len, enum kind kind);
void lbuf_put(struct env *e, struct lbuf *b);
void *map_anon(size_t len);
void *map_aligned(size_t len, size_t align);
void *reserve_va(size_t len);

#define XFER_TIMEOUT (-1)
#define XFER_POSTERR (-2)
int xfer(struct env *e, struct pair *p, enum ibv_wr_opcode op, void *laddr, uint32_t lkey,
	 size_t len, uint64_t raddr, uint32_t rkey, uint64_t cmp_add, uint64_t swap);
int wait_wc(struct env *e, struct ibv_cq *cq, struct ibv_wc *wc, unsigned int secs);
int post_recv(struct pair *p, void *addr, uint32_t lkey, size_t len);
const char *st_str(int st);
int expect_ok(int st, const char *what);
int expect_err(int st, enum ibv_wc_status want, const char *what);

uint8_t pattern(size_t i, unsigned int seed);
void fill(uint8_t *p, size_t len, unsigned int seed);
int check_region(const char *what, const uint8_t *buf, size_t len, size_t off, size_t msg,
		 int seed, uint8_t outside);
int check_pattern(const char *what, const uint8_t *p, size_t len, int seed);
int check_slice(const char *what, const uint8_t *p, size_t n, size_t base, int seed);
int check_zero(const char *what, const uint8_t *p, size_t n);
int wr(struct env *e, struct lbuf *l, size_t loff, size_t len, const void *raddr, uint32_t rkey);
int rd(struct env *e, struct lbuf *l, size_t loff, size_t len, const void *raddr, uint32_t rkey);
/* After a hostile case: the QPs reset, a checked write and read back through a fresh MR work. */
int sanity(struct env *e, const char *after);
/* One RDMA write or read posted without waiting (signalled or not); the errno of the post. */
int post_wr(struct ibv_qp *qp, enum ibv_wr_opcode op, void *laddr, uint32_t lkey, size_t len,
	    const void *raddr, uint32_t rkey, uint64_t id, bool signaled);
/* Reap child @pid: 0 when it exited with status 0, else T_FAIL with the reason reported. */
int child_wait(pid_t pid, const char *what);

/* odp_advise.c: the uverbs ADVISE_MR method, issued directly (rdma-core 44's rxe lacks it) */
int advise_mr_raw(struct ibv_pd *pd, uint64_t advice, uint64_t flags, const void *sges,
		  size_t sge_bytes);
int advise_mr(struct ibv_pd *pd, uint32_t advice, uint32_t flags, const struct ibv_sge *sg,
	      uint32_t num_sge);

/* odp_counters.c: per-MR counters from `rdma -j -dd resource show mr` */
struct mr_counters {
	long long faults, faults_handled, invalidations, invalidations_handled, prefetch;
	long long mapped_pages, table_bytes;
};
int mr_counters(const struct ibv_mr *mr, struct mr_counters *c);
int rdma_res_count_pid(const char *res, int pid, int *count);

/* the test groups */
extern const struct tcase data_tests[], inval_tests[], prefetch_tests[], bad_tests[];
/* the hostile-input and race matrix (suite hostile; not run by default) */
extern const struct tcase hostile_mem_tests[], hostile_verbs_tests[];

#endif
