// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * hmmv_soak: data integrity of ODP MRs under sustained multi-QP traffic and an invalidation
 * storm.
 *
 *   hmmv_soak [-d DEV] [-T SECONDS] [-q QPS] [-D DEPTH] [-t ACK_TIMEOUT] [-m odp|pinned] [-S]
 *             [-s SEED] [-v] [--self-test]
 *
 *   -d DEV       RDMA device (default $HMMV_DEV, else rxe0)
 *   -T SECONDS   how long the traffic runs (default 30)
 *   -q QPS       RC QP pairs, loopback on DEV (default 4, at most 16)
 *   -D DEPTH     writes in flight per QP (default 4, at most 16)
 *   -t ACK_TIMEOUT  the QPs' local ACK timeout, 4.096 us << ACK_TIMEOUT (default: odp_verbs.c's);
 *                small values make the requester retransmit while the responder still faults
 *   -m pinned    the control group: the arena in one pinned MR (written and read back through
 *                it), no storm (it would break a pinned MR's view by design)
 *   -S           no storm
 *   -s SEED      seed of the slot choice, lengths and the storm (default: from the clock)
 *   -v           a progress line every 5 s and every storm operation's kind
 *   --self-test  flip one byte of the 10th completed write's target before it is verified:
 *                the run must then report one corruption and exit 1
 *
 * The arena is NSLOTS page-aligned slots of SLOT_PAGES pages (2 MiB, 2 MiB-aligned so that it
 * starts as a transparent huge page where THP is on) at a fixed address far from the kernel's
 * mmap area. Two ODP MRs cover it: an explicit one over the arena and the implicit one.
 *
 * Each QP keeps DEPTH RDMA writes in flight, each into an idle slot it claims, through one of
 * the two MRs. A message is a header (magic, QP, slot, sequence number, payload length,
 * FNV-1a of the payload) and a payload generated from (QP, sequence number). When a write
 * completes, its slot is verified: the CPU view (the header's checksum over the payload in
 * memory, then every byte against what was sent) and an RDMA read back through the other MR
 * (every byte again). Then the slot is idle again and the write counts as one op.
 *
 * A storm thread meanwhile picks idle slots and, while it holds one, applies MADV_DONTNEED, a
 * mprotect read-only then read-write flip, or munmap and mmap(MAP_FIXED) at the same address.
 * A slot is idle, in flight (write or read back) or held by the storm, and moves between these
 * states by compare-and-swap, so neither side ever touches a slot the other holds: every
 * write must succeed and land exactly, and the storm's invalidations only ever hit the pages
 * of neighbouring in-flight slots by sharing a VMA, a page-table page or a huge page with
 * them. Any error completion is unexpected; a corrupt slot is reported with its QP, sequence
 * number, slot and first bad byte.
 *
 * The last line: "soak: T s, N ops, I invalidations (...), C corruptions, U unexpected errors"
 * where I is the growth of the MRs' page_invalidations counters (rdma resource show) and the storm's
 * own count of operations is given beside it. Exit status 0 only with C == 0, U == 0, N > 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "rc_connect.h"

#define NSLOTS		128
#define SLOT_PAGES	4
#define SLOT_LEN	(SLOT_PAGES * PAGE)
#define ARENA_LEN	((uint64_t)NSLOTS * SLOT_LEN)
#define ARENA_BASE	0x300000000000ULL	/* 48 TiB: far below the mmap area */
#define MAX_QPS		16
#define MAX_DEPTH	16
#define MAGIC		0x534f414bU		/* "SOAK" */
#define STALL_SECS	60

enum slot_state { S_IDLE, S_BUSY, S_STORM };
enum storm_kind { ST_DONTNEED, ST_MPROTECT, ST_REMAP, ST_NR };
static const char *const storm_names[] = { "DONTNEED", "mprotect flips", "remaps" };

struct msg_hdr {
	uint32_t magic;
	uint16_t qp;
	uint16_t slot;
	uint64_t seq;
	uint32_t payload;	/* bytes after the header */
	uint32_t zero;
	uint64_t sum;		/* FNV-1a of the payload */
};

/* One write and its read back, in flight on a QP. */
struct op {
	int slot;		/* -1: free */
	uint64_t seq;
	uint32_t len;		/* header + payload */
	bool implicit;		/* written through the implicit MR, read back through the other */
	bool reading;
	uint8_t *sbuf, *rbuf;	/* the message as sent; the read back */
};

struct qpctx {
	struct pair p;
	struct op op[MAX_DEPTH];
	uint64_t seq;
};

struct soak {
	struct env e;
	int nqp, depth;
	struct qpctx q[MAX_QPS];
	uint8_t *arena;
	_Atomic int state[NSLOTS];	/* enum slot_state */
	struct ibv_mr *xmr, *imr;
	uint8_t *bufs;
	struct ibv_mr *bmr;
	struct rng rng;
	uint64_t seed;
	int ack_timeout;		/* 0: as pair_create() connects */
	bool pinned, no_storm;
	bool self_test;
	/* the storm thread's */
	pthread_t storm;
	atomic_bool stop;
	struct rng srng;
	unsigned long storm_ops[ST_NR], storm_concurrent, storm_failed;
	/* results */
	unsigned long ops, corruptions, unexpected, writes_done;
	uint64_t bytes;
};

static uint8_t *slot_addr(struct soak *s, int slot)
{
	return s->arena + (size_t)slot * SLOT_LEN;
}

/* --- the storm -------------------------------------------------------------------------------- */

static int busy_slots(struct soak *s)
{
	int n = 0;

	for (int i = 0; i < NSLOTS; i++)
		n += atomic_load(&s->state[i]) == S_BUSY;
	return n;
}

/* One invalidating change to an idle slot the storm holds; false if a call failed. */
static bool storm_one(struct soak *s, int slot, enum storm_kind k)
{
	uint8_t *a = slot_addr(s, slot);

	switch (k) {
	case ST_DONTNEED:
		return !madvise(a, SLOT_LEN, MADV_DONTNEED);
	case ST_MPROTECT:
		if (mprotect(a, SLOT_LEN, PROT_READ))
			return false;
		sched_yield();
		return !mprotect(a, SLOT_LEN, PROT_READ | PROT_WRITE);
	case ST_REMAP:
		if (munmap(a, SLOT_LEN))
			return false;
		sched_yield();
		return mmap(a, SLOT_LEN, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS,
			    -1, 0) == a;
	default:
		return false;
	}
}

static void *storm_main(void *arg)
{
	struct soak *s = arg;

	while (!atomic_load(&s->stop)) {
		int slot = (int)rng_below(&s->srng, NSLOTS), idle = S_IDLE;
		enum storm_kind k = (enum storm_kind)rng_below(&s->srng, ST_NR);

		if (!atomic_compare_exchange_strong(&s->state[slot], &idle, S_STORM)) {
			sched_yield();
			continue;
		}
		if (busy_slots(s))
			s->storm_concurrent++;
		if (!storm_one(s, slot, k)) {
			fprintf(stderr, "soak: storm: %s of slot %d: %s\n", storm_names[k], slot,
				strerror(errno));
			s->storm_failed++;
		}
		s->storm_ops[k]++;
		atomic_store(&s->state[slot], S_IDLE);
		sched_yield();
	}
	return NULL;
}

/* --- traffic ---------------------------------------------------------------------------------- */

static int claim_slot(struct soak *s)
{
	int start = (int)rng_below(&s->rng, NSLOTS);

	for (int i = 0; i < NSLOTS; i++) {
		int slot = (start + i) % NSLOTS, idle = S_IDLE;

		if (atomic_compare_exchange_strong(&s->state[slot], &idle, S_BUSY))
			return slot;
	}
	return -1;
}

static uint64_t payload_seed(int qp, uint64_t seq)
{
	return ((uint64_t)qp << 56) ^ seq ^ 0x5eed5eed5eedULL;
}

static void build_msg(struct op *o, int qp)
{
	struct msg_hdr h = {
		.magic = MAGIC,
		.qp = (uint16_t)qp,
		.slot = (uint16_t)o->slot,
		.seq = o->seq,
		.payload = o->len - (uint32_t)sizeof(h),
	};

	fill_stream(o->sbuf + sizeof(h), h.payload, payload_seed(qp, o->seq));
	h.sum = fnv1a64(o->sbuf + sizeof(h), h.payload);
	memcpy(o->sbuf, &h, sizeof(h));
}

static int post(struct soak *s, int qi, int oi, enum ibv_wr_opcode opc, uint8_t *laddr, struct ibv_mr *mr)
{
	struct op *o = &s->q[qi].op[oi];
	struct ibv_sge sge = { .addr = (uintptr_t)laddr, .length = o->len, .lkey = s->bmr->lkey };
	struct ibv_send_wr wr = {
		.wr_id = ((uint64_t)qi << 16) | (uint64_t)oi,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = opc,
		.send_flags = IBV_SEND_SIGNALED,
	}, *bad;
	int err;

	wr.wr.rdma.remote_addr = (uintptr_t)slot_addr(s, o->slot);
	wr.wr.rdma.rkey = mr->rkey;
	err = ibv_post_send(s->q[qi].p.req, &wr, &bad);
	if (err)
		fprintf(stderr, "soak: ibv_post_send (qp %d): %s\n", qi, strerror(err));
	return err;
}

/* Start a write on a free op of a QP, if an idle slot is there. */
static int start_write(struct soak *s, int qi, int oi)
{
	struct op *o = &s->q[qi].op[oi];
	int slot = claim_slot(s);

	if (slot < 0)
		return 0;
	o->slot = slot;
	o->seq = ++s->q[qi].seq;
	o->len = (uint32_t)(sizeof(struct msg_hdr) + 1 +
			    rng_below(&s->rng, SLOT_LEN - sizeof(struct msg_hdr)));
	o->implicit = rng_chance(&s->rng, 50);
	o->reading = false;
	build_msg(o, qi);
	return post(s, qi, oi, IBV_WR_RDMA_WRITE, o->sbuf, o->implicit ? s->imr : s->xmr);
}

/* @got against the message of @o: the first differing byte, or -1. */
static long first_diff(const struct op *o, const uint8_t *got, size_t *ndiff, size_t *nzero)
{
	long first = -1;

	*ndiff = *nzero = 0;
	for (size_t i = 0; i < o->len; i++) {
		if (got[i] == o->sbuf[i])
			continue;
		if (first < 0)
			first = (long)i;
		(*ndiff)++;
		*nzero += !got[i];
	}
	return first;
}

static void report(struct soak *s, int qi, const struct op *o, const char *view, const uint8_t *got)
{
	size_t nd, nz;
	long i = first_diff(o, got, &nd, &nz);

	if (i < 0) {
		printf("soak: CORRUPTION qp %d seq %" PRIu64 " slot %d len %u via the %s MR: %s: the payload's checksum does not match its header\n",
		       qi, o->seq, o->slot, o->len, o->implicit ? "implicit" : "explicit", view);
		return;
	}
	printf("soak: CORRUPTION qp %d seq %" PRIu64 " slot %d (arena +%#zx) len %u via the %s MR: %s: %zu bytes differ (%zu read 0%s), first at +%ld: 0x%02x, want 0x%02x\n",
	       qi, o->seq, o->slot, (size_t)o->slot * SLOT_LEN, o->len,
	       o->implicit ? "implicit" : "explicit", view, nd, nz, nz == nd ? ": a page the write did not reach?" : "", i, got[i], o->sbuf[i]);
}

/* The message as found in @p: its checksum and every byte. */
static bool msg_intact(const struct op *o, const uint8_t *p)
{
	struct msg_hdr h;

	memcpy(&h, p, sizeof(h));
	if (h.payload != o->len - sizeof(h) || h.sum != fnv1a64(p + sizeof(h), h.payload))
		return false;
	return !memcmp(p, o->sbuf, o->len);
}

/* A write completed: check the CPU view, then read it back through the other MR. */
static int write_done(struct soak *s, int qi, int oi, bool *bad)
{
	struct op *o = &s->q[qi].op[oi];
	uint8_t *p = slot_addr(s, o->slot);

	s->writes_done++;
	if (s->self_test && s->writes_done == 10) {
		p[sizeof(struct msg_hdr) + 5] ^= 0xff;
		printf("soak: --self-test: flipped byte +%zu of slot %d after qp %d seq %" PRIu64 " landed\n",
		       sizeof(struct msg_hdr) + 5, o->slot, qi, o->seq);
	}
	if (!msg_intact(o, p)) {
		report(s, qi, o, "CPU view", p);
		*bad = true;
	}
	o->reading = true;
	memset(o->rbuf, 0xee, o->len);
	return post(s, qi, oi, IBV_WR_RDMA_READ, o->rbuf, o->implicit ? s->xmr : s->imr);
}

static void read_done(struct soak *s, int qi, int oi, bool bad)
{
	struct op *o = &s->q[qi].op[oi];

	if (!msg_intact(o, o->rbuf)) {
		report(s, qi, o, "RDMA read back", o->rbuf);
		bad = true;
	}
	s->corruptions += bad;
	s->ops++;
	s->bytes += o->len;
	atomic_store(&s->state[o->slot], S_IDLE);
	o->slot = -1;
}

static const char *qp_state_str(struct ibv_qp *qp)
{
	static const char *const names[] = { "RESET", "INIT", "RTR", "RTS", "SQD", "SQE", "ERR" };
	struct ibv_qp_init_attr init;
	struct ibv_qp_attr a;

	if (ibv_query_qp(qp, &a, IBV_QP_STATE, &init))
		return "?";
	return a.qp_state < sizeof(names) / sizeof(names[0]) ? names[a.qp_state] : "?";
}

/* After an unexpected completion: what else completed (a second), and where each QP is. */
static void post_mortem(struct soak *s)
{
	double t0 = now_s();
	unsigned long flushed = 0;
	struct ibv_wc wc;

	while (now_s() - t0 < 1) {
		struct ibv_cq *cq = s->e.scq;
		int n = ibv_poll_cq(cq, 1, &wc);

		if (!n) {
			cq = s->e.rcq;
			n = ibv_poll_cq(cq, 1, &wc);
		}
		if (n <= 0) {
			usleep(10000);
			continue;
		}
		if (wc.status == IBV_WC_WR_FLUSH_ERR) {
			flushed++;
			continue;
		}
		printf("soak:   %s completion wr_id %#" PRIx64 " qp_num %#x opcode %d: %s\n",
		       cq == s->e.scq ? "requester" : "responder", (uint64_t)wc.wr_id, wc.qp_num, wc.opcode,
		       ibv_wc_status_str(wc.status));
	}
	printf("soak:   %lu more flushed completions\n", flushed);
	for (int qi = 0; qi < s->nqp; qi++)
		printf("soak:   qp %d: requester %#x %s, responder %#x %s\n", qi, s->q[qi].p.req->qp_num,
		       qp_state_str(s->q[qi].p.req), s->q[qi].p.resp->qp_num, qp_state_str(s->q[qi].p.resp));
}

/* One completion; -1 ends the traffic (an unexpected error). */
static int completion(struct soak *s, const struct ibv_wc *wc, bool *pending_bad)
{
	int qi = (int)(wc->wr_id >> 16), oi = (int)(wc->wr_id & 0xffff);
	struct op *o = &s->q[qi].op[oi];

	if (wc->status != IBV_WC_SUCCESS) {
		printf("soak: UNEXPECTED %s (%d) of the %s of qp %d seq %" PRIu64 " slot %d len %u via the %s MR\n",
		       ibv_wc_status_str(wc->status), wc->status, o->reading ? "read back" : "write", qi,
		       o->seq, o->slot, o->len, o->implicit ? "implicit" : "explicit");
		s->unexpected++;
		post_mortem(s);
		return -1;
	}
	if (!o->reading)
		return write_done(s, qi, oi, &pending_bad[qi * MAX_DEPTH + oi]) ? -1 : 0;
	read_done(s, qi, oi, pending_bad[qi * MAX_DEPTH + oi]);
	pending_bad[qi * MAX_DEPTH + oi] = false;
	return 0;
}

static int outstanding(struct soak *s)
{
	int n = 0;

	for (int qi = 0; qi < s->nqp; qi++)
		for (int oi = 0; oi < s->depth; oi++)
			n += s->q[qi].op[oi].slot >= 0;
	return n;
}

/* Traffic until @secs are over (then what is in flight completes), an error or a stall. */
static int traffic(struct soak *s, double secs)
{
	bool pending_bad[MAX_QPS * MAX_DEPTH] = { 0 };
	double t0 = now_s(), last = t0, shown = t0;
	struct ibv_wc wc[16];

	for (;;) {
		bool posting = now_s() - t0 < secs;
		int n;

		for (int qi = 0; posting && qi < s->nqp; qi++)
			for (int oi = 0; oi < s->depth; oi++)
				if (s->q[qi].op[oi].slot < 0 && start_write(s, qi, oi))
					return -1;
		if (!posting && !outstanding(s))
			return 0;
		n = ibv_poll_cq(s->e.scq, 16, wc);
		if (n < 0) {
			printf("soak: ibv_poll_cq failed\n");
			return -1;
		}
		for (int i = 0; i < n; i++)
			if (completion(s, &wc[i], pending_bad))
				return -1;
		if (n) {
			last = now_s();
		} else if (now_s() - last <= STALL_SECS) {
			sched_yield();
		} else {
			printf("soak: UNEXPECTED stall: no completion for %d s with %d operations in flight\n",
			       STALL_SECS, outstanding(s));
			s->unexpected++;
			return -1;
		}
		if (verbose && now_s() - shown >= 5) {
			shown = now_s();
			printf("soak: %.0f s: %lu ops, %lu corruptions, storm %lu/%lu/%lu\n", shown - t0, s->ops,
			       s->corruptions, s->storm_ops[0], s->storm_ops[1], s->storm_ops[2]);
		}
	}
}

/* --- setup and report ------------------------------------------------------------------------- */

/* Both QPs of a pair through RESET to RTS again, with the ACK timeout of -t. */
static int reconnect(struct soak *s, struct pair *p)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_RESET };
	struct hmmv_rc_attr rc = {
		.port = 1,
		.sgid_index = s->e.gid_index,
		.dgid = s->e.gid,
		.mtu = s->e.mtu,
		.rd_atomic = 16,
		.min_rnr_timer = 1,
		.access = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC,
		.timeout = (uint8_t)s->ack_timeout,
	};
	const char *step = "RESET";
	int err;

	if (ibv_modify_qp(p->req, &a, IBV_QP_STATE) || ibv_modify_qp(p->resp, &a, IBV_QP_STATE))
		return tfail("modify_qp RESET: %s", strerror(errno));
	rc.dest_qpn = p->resp->qp_num;
	err = hmmv_rc_connect(p->req, &rc, &step);
	if (!err) {
		rc.dest_qpn = p->req->qp_num;
		err = hmmv_rc_connect(p->resp, &rc, &step);
	}
	return err ? tfail("modify_qp %s: %s", step, strerror(err)) : 0;
}

static int setup(struct soak *s, const char *dev)
{
	size_t blen = (size_t)s->nqp * s->depth * 2 * SLOT_LEN;
	int rc = env_open(&s->e, dev, K_ODP);

	if (rc)
		return rc;
	s->arena = mmap((void *)(uintptr_t)ARENA_BASE, ARENA_LEN, PROT_READ | PROT_WRITE,
			MAP_FIXED_NOREPLACE | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s->arena != (void *)(uintptr_t)ARENA_BASE)
		return tfail("mmap of the arena at %#llx: %s", ARENA_BASE, strerror(errno));
	madvise(s->arena, ARENA_LEN, MADV_HUGEPAGE);	/* where THP is on: start huge */
	memset(s->arena, 0, ARENA_LEN);
	s->xmr = ibv_reg_mr(s->e.pd, s->arena, ARENA_LEN, ACC_ALL | (s->pinned ? 0 : IBV_ACCESS_ON_DEMAND));
	s->imr = s->pinned ? s->xmr : ibv_reg_mr(s->e.pd, NULL, SIZE_MAX, ACC_ALL | IBV_ACCESS_ON_DEMAND);
	if (!s->xmr || !s->imr)
		return tfail("ODP registration (%s): %s", s->xmr ? "implicit" : "explicit", strerror(errno));
	s->bufs = map_anon(blen);
	s->bmr = s->bufs ? ibv_reg_mr(s->e.pd, s->bufs, blen, IBV_ACCESS_LOCAL_WRITE) : NULL;
	if (!s->bmr)
		return tfail("the pinned buffers: %s", strerror(errno));
	for (int qi = 0; qi < s->nqp; qi++) {
		if (pair_create(&s->e, &s->q[qi].p, IBV_QPT_RC, false) ||
		    (s->ack_timeout && reconnect(s, &s->q[qi].p)))
			return T_FAIL;
		for (int oi = 0; oi < s->depth; oi++) {
			struct op *o = &s->q[qi].op[oi];

			o->slot = -1;
			o->sbuf = s->bufs + ((size_t)qi * s->depth + oi) * 2 * SLOT_LEN;
			o->rbuf = o->sbuf + SLOT_LEN;
		}
	}
	return 0;
}

static void teardown(struct soak *s)
{
	for (int qi = 0; qi < s->nqp; qi++)
		pair_destroy(&s->q[qi].p);
	if (s->bmr)
		ibv_dereg_mr(s->bmr);
	if (s->imr && s->imr != s->xmr)
		ibv_dereg_mr(s->imr);
	if (s->xmr)
		ibv_dereg_mr(s->xmr);
	env_close(&s->e);
}

/*
 * A counter (page_invalidations, hmm_mapped_pages...) of the two MRs from one listing of
 * `rdma -dd resource show mr` (so that nothing happens between the two readings; -1 where not
 * reported). Not mr_counters() of odp_counters.c: its next_object() restarts its depth count
 * at every call, so it only ever examines the first MR of the listing. popen() spawns without
 * copying this address space, so the reading itself does not invalidate anything.
 */
static void mr_counter(struct soak *s, const char *name, long long *x, long long *i)
{
	FILE *p = popen("rdma -dd resource show mr 2>/dev/null", "r");
	char line[2048], xkey[32], ikey[32], field[64];

	*x = *i = -1;
	if (!p)
		return;
	snprintf(xkey, sizeof(xkey), " rkey 0x%x ", s->xmr->rkey);
	snprintf(ikey, sizeof(ikey), " rkey 0x%x ", s->imr->rkey);
	snprintf(field, sizeof(field), " drv_%s ", name);
	while (fgets(line, sizeof(line), p)) {
		char *c = strstr(line, field);

		if (c && strstr(line, xkey))
			*x = strtoll(c + strlen(field), NULL, 10);
		else if (c && strstr(line, ikey))
			*i = strtoll(c + strlen(field), NULL, 10);
	}
	pclose(p);
}

static long long delta(long long a, long long b)
{
	return a < 0 || b < 0 ? -1 : b - a;
}

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [-d DEV] [-T SECONDS] [-q QPS] [-D DEPTH] [-t ACK_TIMEOUT] [-s SEED] [-v] "
		"[--self-test]\n", argv0);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "self-test", no_argument, NULL, 'X' },
		{ 0 },
	};
	static struct soak sk = { .nqp = 4, .depth = 4 };
	struct soak *s = &sk;
	long long x0, x1, i0, i1, mx, mi;
	const char *dev = getenv("HMMV_DEV");
	double secs = 30, t0, took;
	bool seeded = false;
	unsigned long storm = 0;
	long long ix, ii;
	int opt, rc;

	if (!dev || !*dev)
		dev = "rxe0";
	while ((opt = getopt_long(argc, argv, "d:T:q:D:t:m:Ss:vh", lopts, NULL)) != -1) {
		switch (opt) {
		case 'd': dev = optarg; break;
		case 'T': secs = strtod(optarg, NULL); break;
		case 'q': s->nqp = atoi(optarg); break;
		case 'D': s->depth = atoi(optarg); break;
		case 't': s->ack_timeout = atoi(optarg); break;
		case 'm':
			if (strcmp(optarg, "odp") && strcmp(optarg, "pinned"))
				usage(argv[0]);
			s->pinned = !strcmp(optarg, "pinned");
			break;
		case 'S': s->no_storm = true; break;
		case 's': s->seed = strtoull(optarg, NULL, 0); seeded = true; break;
		case 'v': verbose = true; break;
		case 'X': s->self_test = true; break;
		default: usage(argv[0]);
		}
	}
	if (s->nqp < 1 || s->nqp > MAX_QPS || s->depth < 1 || s->depth > MAX_DEPTH || secs <= 0 ||
	    s->ack_timeout < 0 || s->ack_timeout > 31)
		usage(argv[0]);
	if (!seeded) {
		uint64_t t = (uint64_t)(now_s() * 1e9) ^ ((uint64_t)getpid() << 32);

		s->seed = splitmix64(&t) % 1000000000000ULL;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	fuzz_prog = "soak";
	rng_seed(&s->rng, s->seed);
	rng_seed(&s->srng, s->seed + 1);
	s->no_storm |= s->pinned;
	printf("soak: seed %" PRIu64 " on %s: %d QPs x %d writes in flight, %d slots of %d KiB, %s MRs, %s, %.0f s%s\n",
	       s->seed, dev, s->nqp, s->depth, NSLOTS, (int)(SLOT_LEN / 1024), s->pinned ? "pinned" : "ODP",
	       s->no_storm ? "no storm" : "a storm", secs, s->ack_timeout ? ", ACK timeout set by -t" : "");
	if (setup(s, dev)) {
		printf("soak: setup failed\n");
		return 2;
	}
	mr_counter(s, "page_invalidations", &x0, &i0);
	t0 = now_s();
	if (!s->no_storm && pthread_create(&s->storm, NULL, storm_main, s)) {
		printf("soak: pthread_create failed\n");
		return 2;
	}
	rc = traffic(s, secs);
	atomic_store(&s->stop, true);
	if (!s->no_storm)
		pthread_join(s->storm, NULL);
	took = now_s() - t0;
	mr_counter(s, "page_invalidations", &x1, &i1);
	mr_counter(s, "hmm_mapped_pages", &mx, &mi);
	ix = delta(x0, x1);
	ii = delta(i0, i1);
	for (int k = 0; k < ST_NR; k++)
		storm += s->storm_ops[k];
	/* Both MRs view the arena only: the mirror should hold nothing else. */
	printf("soak: hmm_mapped_pages at the end: explicit MR %lld, implicit MR %lld\n", mx, mi);
	printf("soak: %.1f MB verified, %.1f ops/s; storm: %lu DONTNEED, %lu mprotect flips, %lu remaps, %lu of them with writes in flight, %lu failed calls\n",
	       s->bytes / 1e6, s->ops / took, s->storm_ops[ST_DONTNEED], s->storm_ops[ST_MPROTECT],
	       s->storm_ops[ST_REMAP], s->storm_concurrent, s->storm_failed);
	printf("soak: %.0f s, %lu ops, %lld invalidations (page_invalidations: explicit MR %lld + implicit MR %lld; storm: %lu ops), %lu corruptions, %lu unexpected errors\n",
	       took, s->ops, ix < 0 || ii < 0 ? -1 : ix + ii, ix, ii, storm, s->corruptions, s->unexpected);
	if (rc)
		printf("soak: the traffic stopped early (seed %" PRIu64 ")\n", s->seed);
	teardown(s);
	return !s->corruptions && !s->unexpected && !s->storm_failed && s->ops && !rc ? 0 : 1;
}
