// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * libhmmv_preload.so, the shim hmmv-run puts in LD_PRELOAD: it answers every ibv_reg_mr()
 * (and ibv_reg_mr_iova/_iova2 with iova == addr) with ordinary access flags from one implicit
 * ODP MR per (PD, access flags), so an unmodified verbs program pins nothing. Optional access
 * flags (IBV_ACCESS_OPTIONAL_RANGE: relaxed ordering, which perftest asks for) are hints a
 * device may ignore, so they are dropped rather than sent to the real call. The caller gets
 * its own struct ibv_mr with that MR's lkey/rkey and the caller's addr/length; ibv_dereg_mr()
 * of it only frees the struct. The implicit MRs of a PD are released by ibv_dealloc_pd().
 *
 * Where a device has no implicit ODP (hmmv_reg_implicit_mr() fails), registration falls back
 * to the real call, with one note on stderr. Registrations with other flags (ODP already,
 * MW bind, zero-based, huge pages) and iova != addr go to the real call.
 * HMMV_RUN_VERBOSE=1 reports each registration on stderr: served, or passed on and why.
 *
 * This object has no symbol versions on purpose: its unversioned definitions then satisfy
 * the programs' versioned references (ibv_reg_mr@IBVERBS_1.1 ...).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <infiniband/hmmverbs.h>

#undef ibv_reg_mr
#undef ibv_reg_mr_iova

#define ORDINARY_ACCESS                                                                   \
	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |      \
	 IBV_ACCESS_REMOTE_ATOMIC)
#define SHIM_MAGIC 0x686d6d76u

/* One implicit MR per (PD, access flags); a caller's MR is a copy with a marker. */
struct implicit {
	struct implicit *next;
	struct ibv_pd *pd;
	int access;
	struct ibv_mr *mr;	/* NULL: the device cannot (fall back) */
};

struct shim_mr {
	struct ibv_mr mr;	/* first: callers see this */
	uint32_t magic;
	struct shim_mr *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct implicit *implicits;	/* protected by lock */
static struct shim_mr *shim_mrs;	/* protected by lock */
static __thread int in_real;		/* calls made by the shim go to libibverbs */
static int verbose = -1;

typedef struct ibv_mr *(*reg_mr_fn)(struct ibv_pd *, void *, size_t, int);
typedef struct ibv_mr *(*reg_mr_iova_fn)(struct ibv_pd *, void *, size_t, uint64_t, int);
typedef struct ibv_mr *(*reg_mr_iova2_fn)(struct ibv_pd *, void *, size_t, uint64_t,
					  unsigned int);
typedef int (*dereg_mr_fn)(struct ibv_mr *);
typedef int (*dealloc_pd_fn)(struct ibv_pd *);

static void *real(const char *name, const char *version)
{
	void *fn = dlvsym(RTLD_NEXT, name, version);

	if (!fn)
		fn = dlsym(RTLD_NEXT, name);
	if (!fn) {
		fprintf(stderr, "hmmv-run: %s not found in libibverbs\n", name);
		abort();
	}
	return fn;
}

static bool is_verbose(void)
{
	if (verbose < 0) {
		const char *v = getenv("HMMV_RUN_VERBOSE");

		verbose = v && *v && *v != '0';
	}
	return verbose;
}

/* The implicit MR for (pd, access), created on first use; NULL to fall back. */
static struct ibv_mr *implicit_mr(struct ibv_pd *pd, int access)
{
	struct implicit *im;
	int err;

	for (im = implicits; im; im = im->next)
		if (im->pd == pd && im->access == access)
			return im->mr;
	im = calloc(1, sizeof(*im));
	if (!im)
		return NULL;
	im->pd = pd;
	im->access = access;
	in_real++;
	im->mr = hmmv_reg_implicit_mr(pd, access);
	err = errno;
	in_real--;
	if (!im->mr)
		fprintf(stderr,
			"hmmv-run: no implicit ODP MR on %s (%s); registering memory the usual way\n",
			ibv_get_device_name(pd->context->device), strerror(err));
	else if (is_verbose())
		fprintf(stderr, "hmmv-run: implicit ODP MR lkey %#x rkey %#x for access %#x\n",
			im->mr->lkey, im->mr->rkey, access);
	im->next = implicits;
	implicits = im;
	return im->mr;
}

/*
 * Is [addr, addr + length) mapped? msync() fails with ENOMEM on a hole. A registration of a
 * range that is not is passed on, so the program gets the real call's error (EFAULT, EINVAL)
 * as it would without the shim, and nothing is pinned since that call fails.
 */
static const char *unmapped(void *addr, size_t length)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), start = (uintptr_t)addr & ~(page - 1);

	if (length > UINTPTR_MAX - (uintptr_t)addr)
		return "addr + length wraps";
	if (msync((void *)start, (uintptr_t)addr + length - start, MS_ASYNC) && errno == ENOMEM)
		return "range not mapped";
	return NULL;
}

/* Serve a registration from the implicit MR; NULL (errno untouched) to use the real call. */
static struct ibv_mr *serve(struct ibv_pd *pd, void *addr, size_t length, uint64_t iova,
			    unsigned int access)
{
	struct shim_mr *m = NULL;
	const char *why = NULL;
	struct ibv_mr *imr;
	int err = errno;

	if (in_real || !pd || !length)
		return NULL;
	access &= ~(unsigned int)IBV_ACCESS_OPTIONAL_RANGE;
	if (access & ~ORDINARY_ACCESS)
		why = "access flags beyond local/remote read/write/atomic";
	else if (iova != (uintptr_t)addr)
		why = "iova differs from addr";
	else
		why = unmapped(addr, length);
	errno = err;
	if (why) {
		if (is_verbose())
			fprintf(stderr,
				"hmmv-run: ibv_reg_mr(%p, %zu, iova %#" PRIx64
				", access %#x) passed on: %s\n",
				addr, length, iova, access, why);
		return NULL;
	}
	pthread_mutex_lock(&lock);
	imr = implicit_mr(pd, (int)access);
	if (imr)
		m = calloc(1, sizeof(*m));
	if (m) {
		m->mr = *imr;
		m->mr.addr = addr;
		m->mr.length = length;
		m->magic = SHIM_MAGIC;
		m->next = shim_mrs;
		shim_mrs = m;
	}
	pthread_mutex_unlock(&lock);
	if (m && is_verbose())
		fprintf(stderr, "hmmv-run: ibv_reg_mr(%p, %zu) -> implicit lkey %#x rkey %#x\n",
			addr, length, m->mr.lkey, m->mr.rkey);
	return m ? &m->mr : NULL;
}

struct ibv_mr *ibv_reg_mr(struct ibv_pd *pd, void *addr, size_t length, int access)
{
	static reg_mr_fn fn;
	struct ibv_mr *mr = serve(pd, addr, length, (uintptr_t)addr, (unsigned int)access);

	if (mr)
		return mr;
	if (!fn)
		fn = (reg_mr_fn)real("ibv_reg_mr", "IBVERBS_1.1");
	in_real++;
	mr = fn(pd, addr, length, access);
	in_real--;
	return mr;
}

struct ibv_mr *ibv_reg_mr_iova(struct ibv_pd *pd, void *addr, size_t length, uint64_t iova,
			       int access)
{
	static reg_mr_iova_fn fn;
	struct ibv_mr *mr = serve(pd, addr, length, iova, (unsigned int)access);

	if (mr)
		return mr;
	if (!fn)
		fn = (reg_mr_iova_fn)real("ibv_reg_mr_iova", "IBVERBS_1.7");
	in_real++;
	mr = fn(pd, addr, length, iova, access);
	in_real--;
	return mr;
}

struct ibv_mr *ibv_reg_mr_iova2(struct ibv_pd *pd, void *addr, size_t length, uint64_t iova,
				unsigned int access)
{
	static reg_mr_iova2_fn fn;
	struct ibv_mr *mr = serve(pd, addr, length, iova, access);

	if (mr)
		return mr;
	if (!fn)
		fn = (reg_mr_iova2_fn)real("ibv_reg_mr_iova2", "IBVERBS_1.8");
	in_real++;
	mr = fn(pd, addr, length, iova, access);
	in_real--;
	return mr;
}

int ibv_dereg_mr(struct ibv_mr *mr)
{
	static dereg_mr_fn fn;
	struct shim_mr **p, *found = NULL;
	int ret;

	pthread_mutex_lock(&lock);
	for (p = &shim_mrs; *p; p = &(*p)->next) {
		if (&(*p)->mr == mr && (*p)->magic == SHIM_MAGIC) {
			found = *p;
			*p = found->next;
			break;
		}
	}
	pthread_mutex_unlock(&lock);
	if (found) {
		found->magic = 0;
		free(found);
		return 0;
	}
	if (!fn)
		fn = (dereg_mr_fn)real("ibv_dereg_mr", "IBVERBS_1.1");
	in_real++;
	ret = fn(mr);
	in_real--;
	return ret;
}

int ibv_dealloc_pd(struct ibv_pd *pd)
{
	static dealloc_pd_fn fn;
	static dereg_mr_fn dereg;
	struct implicit **p = &implicits, *im, *gone = NULL;
	int ret;

	if (!fn) {
		fn = (dealloc_pd_fn)real("ibv_dealloc_pd", "IBVERBS_1.1");
		dereg = (dereg_mr_fn)real("ibv_dereg_mr", "IBVERBS_1.1");
	}
	/* The PD's implicit MRs go first, or the PD stays busy; unlinked under the lock,
	 * deregistered outside it. */
	pthread_mutex_lock(&lock);
	while ((im = *p)) {
		if (im->pd != pd) {
			p = &im->next;
			continue;
		}
		*p = im->next;
		im->next = gone;
		gone = im;
	}
	pthread_mutex_unlock(&lock);
	in_real++;
	while ((im = gone)) {
		gone = im->next;
		if (im->mr)
			dereg(im->mr);
		free(im);
	}
	ret = fn(pd);
	in_real--;
	return ret;
}
