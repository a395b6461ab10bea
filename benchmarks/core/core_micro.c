// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * core_micro: the ib_hmm mirror against the kernel's own ib_umem_odp, side by side on one
 * kernel, through one ABI (<uapi/rdma/ib_hmm_test.h>): /dev/ib_hmm_test (ib_hmm, the mock
 * device) and /dev/ib_umem_odp_test (the same requests served by ib_umem_odp). Runs inside
 * the VM (benchmarks/core-micro loads the modules). Prints one JSON line per result:
 *
 *   {"suite":"core-micro","kernel":K,"mode":"hmm"|"umem_odp","test":T,"size":BYTES,"qps":0,
 *    "metric":M,"value":MEDIAN,"unit":U,"runs":N,"spread":(MAX-MIN)/MEDIAN}
 *
 * Tests: register (µs per MR vs size, sparse: nothing is touched), fault (ns per resident
 * page made present by PREFETCH, as a fault handler would), lookup (ns per one-page lookup),
 * invalidate and invalidate16 (extra ns per page that MADV_DONTNEED costs with 1 or 16
 * overlapping MRs mapping the range, over the same madvise without MRs), memory (mirror or
 * page-list bytes per touched and per untouched page, and an empty implicit MR's table).
 *
 *   core_micro [-r RUNS] [-s FAULT_BYTES] [-i INVAL_BYTES] [-g MAX_REG_GIB]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <uapi/rdma/ib_hmm_test.h>

#define PAGE 4096ull
#define MAX_RUNS 15

enum mode { HMM, UMEM, NMODES };
static const char *const mode_names[NMODES] = { "hmm", "umem_odp" };
static const char *const devices[NMODES] = { IB_HMM_TEST_DEVICE, IB_UMEM_ODP_TEST_DEVICE };
static const uint64_t ACCESS = IB_HMM_TEST_ACCESS_LOCAL_READ | IB_HMM_TEST_ACCESS_LOCAL_WRITE |
			       IB_HMM_TEST_ACCESS_REMOTE_READ | IB_HMM_TEST_ACCESS_REMOTE_WRITE;

static int runs = 5;
static struct utsname uts;

static void die(const char *what)
{
	fprintf(stderr, "core_micro: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One result line from n samples: the median and the relative spread. */
static void report(enum mode m, const char *test, uint64_t size, const char *metric,
		   const char *unit, double *v, int n)
{
	double med = median(v, n);

	printf("{\"suite\":\"core-micro\",\"kernel\":\"%s\",\"mode\":\"%s\",\"test\":\"%s\","
	       "\"size\":%llu,\"qps\":0,\"metric\":\"%s\",\"value\":%.6g,\"unit\":\"%s\","
	       "\"runs\":%d,\"spread\":%.4f}\n",
	       uts.release, mode_names[m], test, (unsigned long long)size, metric, med, unit, n,
	       med > 0 ? (v[n - 1] - v[0]) / med : 0.0);
	fflush(stdout);
}

static int dev_open(enum mode m)
{
	int fd = open(devices[m], O_RDWR | O_CLOEXEC);

	if (fd < 0)
		die(devices[m]);
	return fd;
}

static uint64_t mr_create(int fd, void *start, uint64_t length)
{
	struct ib_hmm_test_mr_create c = { .start = (uintptr_t)start, .length = length,
					   .access = ACCESS };

	if (ioctl(fd, IB_HMM_TEST_IOC_MR_CREATE, &c))
		die("MR_CREATE");
	return c.handle;
}

static void mr_destroy(int fd, uint64_t handle)
{
	struct ib_hmm_test_mr_destroy d = { .handle = handle };

	if (ioctl(fd, IB_HMM_TEST_IOC_MR_DESTROY, &d))
		die("MR_DESTROY");
}

static void fault_in(int fd, uint64_t handle, void *p, uint64_t len)
{
	struct ib_hmm_test_prefetch f = { .handle = handle, .iova = (uintptr_t)p, .length = len,
					  .flags = IB_HMM_TEST_PREFETCH_WRITE };

	if (ioctl(fd, IB_HMM_TEST_IOC_PREFETCH, &f))
		die("PREFETCH");
}

static struct ib_hmm_test_counters counters(int fd, uint64_t handle)
{
	struct ib_hmm_test_counters c = { .handle = handle };

	if (ioctl(fd, IB_HMM_TEST_IOC_COUNTERS, &c))
		die("COUNTERS");
	return c;
}

static void *map(uint64_t len, int extra)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1,
		       0);

	if (p == MAP_FAILED)
		die("mmap");
	/* Small pages: the comparison is per 4 KiB page. */
	madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

/* Registration time vs size; sparse: none of the range is ever touched. */
static void bench_register(enum mode m, unsigned int max_gib)
{
	uint64_t sizes[] = { PAGE, 1ull << 20, 1ull << 30, 64ull << 30 };
	double v[MAX_RUNS];
	int fd = dev_open(m);

	for (unsigned int s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		void *p;

		if (sizes[s] > ((uint64_t)max_gib << 30))
			continue;
		p = map(sizes[s], MAP_NORESERVE);
		mr_destroy(fd, mr_create(fd, p, sizes[s]));	/* warm-up, not counted */
		for (int r = 0; r < runs; r++) {
			double t0 = now_ns();
			uint64_t h = mr_create(fd, p, sizes[s]);

			v[r] = (now_ns() - t0) / 1e3;
			mr_destroy(fd, h);
		}
		report(m, "register", sizes[s], "register_time", "us", v, runs);
		munmap(p, sizes[s]);
	}
	if (m == HMM) {
		mr_destroy(fd, mr_create(fd, NULL, IB_HMM_TEST_IMPLICIT_LENGTH));
		for (int r = 0; r < runs; r++) {
			double t0 = now_ns();
			uint64_t h = mr_create(fd, NULL, IB_HMM_TEST_IMPLICIT_LENGTH);

			v[r] = (now_ns() - t0) / 1e3;
			mr_destroy(fd, h);
		}
		report(m, "register-implicit", 0, "register_time", "us", v, runs);
	}
	close(fd);
}

/* Fault cost per resident page, lookup cost, and table bytes per touched page. */
static void bench_fault_lookup(enum mode m, uint64_t len)
{
	double vf[MAX_RUNS], vl[MAX_RUNS], vb[MAX_RUNS];
	uint64_t npages = len / PAGE;

	for (int r = 0; r < runs; r++) {
		int fd = dev_open(m);	/* a fresh device: a fresh mirror */
		uint8_t *p = map(len, 0);
		struct ib_hmm_test_lookup l;
		struct ib_hmm_test_counters c;
		uint64_t h;
		double t0;

		memset(p, 1, len);	/* resident: only the device side is measured */
		h = mr_create(fd, p, len);
		t0 = now_ns();
		fault_in(fd, h, p, len);
		vf[r] = (now_ns() - t0) / (double)npages;
		l = (struct ib_hmm_test_lookup){ .handle = h, .iova = (uintptr_t)p,
						 .npages = npages };
		if (ioctl(fd, IB_HMM_TEST_IOC_LOOKUP, &l))
			die("LOOKUP");
		if (l.found != npages) {
			fprintf(stderr, "core_micro: %s: %llu of %llu pages present after the fault\n",
				mode_names[m], (unsigned long long)l.found,
				(unsigned long long)npages);
			exit(1);
		}
		vl[r] = (double)l.ns / (double)npages;
		/* Per present page, as LOOKUP found them (a umem of a device without DMA, as
		 * on 7.3, does not count its pages). */
		c = counters(fd, h);
		vb[r] = (double)c.table_bytes / (double)l.found;
		mr_destroy(fd, h);
		close(fd);
		munmap(p, len);
	}
	report(m, "fault", len, "fault_ns_per_page", "ns", vf, runs);
	report(m, "lookup", len, "lookup_ns", "ns", vl, runs);
	report(m, "memory", len, "bytes_per_touched_page", "B", vb, runs);
}

/* Table bytes per page of a range that is never touched; an empty implicit MR's table. */
static void bench_memory_untouched(enum mode m, uint64_t len)
{
	double v[MAX_RUNS];

	for (int r = 0; r < runs; r++) {
		int fd = dev_open(m);
		void *p = map(len, MAP_NORESERVE);
		uint64_t h = mr_create(fd, p, len);

		v[r] = (double)counters(fd, h).table_bytes / (double)(len / PAGE);
		mr_destroy(fd, h);
		close(fd);
		munmap(p, len);
	}
	report(m, "memory-untouched", len, "bytes_per_untouched_page", "B", v, runs);
	if (m == HMM) {
		for (int r = 0; r < runs; r++) {
			int fd = dev_open(m);
			uint64_t h = mr_create(fd, NULL, IB_HMM_TEST_IMPLICIT_LENGTH);

			v[r] = (double)counters(fd, h).table_bytes;
			mr_destroy(fd, h);
			close(fd);
		}
		report(m, "memory-implicit", 0, "implicit_table_bytes", "B", v, runs);
	}
}

/* Time of MADV_DONTNEED over a touched range, with nmrs MRs mapping all of it (0: none). */
static double dontneed_ns(enum mode m, uint8_t *p, uint64_t len, int nmrs)
{
	uint64_t h[16];
	int fd = nmrs ? dev_open(m) : -1;
	double t0, t;

	memset(p, 2, len);
	for (int i = 0; i < nmrs; i++) {
		h[i] = mr_create(fd, p, len);
		fault_in(fd, h[i], p, len);
	}
	t0 = now_ns();
	if (madvise(p, len, MADV_DONTNEED))
		die("madvise");
	t = now_ns() - t0;
	for (int i = 0; i < nmrs; i++) {
		struct ib_hmm_test_lookup l = { .handle = h[i], .iova = (uintptr_t)p,
						.npages = len / PAGE };

		if (ioctl(fd, IB_HMM_TEST_IOC_LOOKUP, &l))
			die("LOOKUP");
		if (l.found) {
			fprintf(stderr, "core_micro: %s: %llu pages still mapped after MADV_DONTNEED\n",
				mode_names[m], (unsigned long long)l.found);
			exit(1);
		}
		mr_destroy(fd, h[i]);
	}
	if (fd >= 0)
		close(fd);
	return t;
}

/*
 * Extra time per page that invalidation through 1 and 16 overlapping MRs adds to
 * MADV_DONTNEED: the median with MRs minus the median without, sampled alternately so that
 * both see the same machine; the spread is that of the samples with MRs.
 */
static void bench_invalidate(enum mode m, uint64_t len)
{
	const int counts[] = { 1, 16 };
	double base[MAX_RUNS], with[MAX_RUNS], v[MAX_RUNS], b;
	uint8_t *p = map(len, 0);

	for (int k = 0; k < 2; k++) {
		for (int r = 0; r < runs; r++) {
			base[r] = dontneed_ns(m, p, len, 0);
			with[r] = dontneed_ns(m, p, len, counts[k]);
		}
		/* The median of v is median(with) - median(base), per page. */
		b = median(base, runs);
		for (int r = 0; r < runs; r++)
			v[r] = (with[r] - b) / (double)(len / PAGE);
		report(m, counts[k] == 1 ? "invalidate" : "invalidate16", len,
		       "invalidate_ns_per_page", "ns", v, runs);
	}
	munmap(p, len);
}

int main(int argc, char **argv)
{
	uint64_t fault_len = 64ull << 20, inval_len = 64ull << 20;
	unsigned int max_gib = 64;
	int opt;

	while ((opt = getopt(argc, argv, "r:s:i:g:")) != -1) {
		switch (opt) {
		case 'r': runs = atoi(optarg); break;
		case 's': fault_len = strtoull(optarg, NULL, 0); break;
		case 'i': inval_len = strtoull(optarg, NULL, 0); break;
		case 'g': max_gib = (unsigned int)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: core_micro [-r RUNS] [-s FAULT_BYTES] [-i INVAL_BYTES] [-g MAX_REG_GIB]\n");
			return 2;
		}
	}
	if (runs < 3 || runs > MAX_RUNS || fault_len < PAGE || inval_len < PAGE ||
	    fault_len / PAGE > IB_HMM_TEST_SNAPSHOT_MAX || inval_len / PAGE > IB_HMM_TEST_SNAPSHOT_MAX) {
		fprintf(stderr, "core_micro: runs 3..%d; sizes at least a page, at most 4 GiB\n",
			MAX_RUNS);
		return 2;
	}
	fault_len &= ~(PAGE - 1);
	inval_len &= ~(PAGE - 1);
	uname(&uts);
	for (enum mode m = HMM; m < NMODES; m++) {
		bench_register(m, max_gib);
		bench_fault_lookup(m, fault_len);
		bench_memory_untouched(m, fault_len);
		bench_invalidate(m, inval_len);
	}
	return 0;
}
