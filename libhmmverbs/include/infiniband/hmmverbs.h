/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * libhmmverbs: On-Demand-Paging memory regions (explicit and implicit), prefetch on any
 * rdma-core, and per-MR ODP statistics, for every device with ODP (rxe served by ib_hmm,
 * mlx5) behind one small API in the style of the direct-verbs libraries.
 *
 * Conventions: constructors return a pointer, or NULL with errno set; int calls return 0 or a
 * positive errno; comp_mask bits this version does not know are rejected with EINVAL.
 */
#ifndef INFINIBAND_HMMVERBS_H
#define INFINIBAND_HMMVERBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <infiniband/verbs.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The backend that serves a device, chosen from the device's kernel driver. */
enum hmmv_provider {
	HMMV_PROVIDER_NONE = 0,	/* a device without ODP: every call but query gives EOPNOTSUPP */
	HMMV_PROVIDER_RXE = 1,	/* Soft-RoCE (ODP and implicit ODP with the ib_hmm rxe) */
	HMMV_PROVIDER_MLX5 = 2,	/* mlx5 ODP */
};

/* hmmv_device_attr.flags */
enum hmmv_device_flags {
	HMMV_DEVICE_ODP = 1 << 0,		/* explicit ODP MRs (hmmv_reg_odp_mr) */
	HMMV_DEVICE_ODP_IMPLICIT = 1 << 1,	/* implicit ODP MRs (hmmv_reg_implicit_mr) */
	HMMV_DEVICE_PREFETCH = 1 << 2,		/* hmmv_advise_mr works */
	HMMV_DEVICE_PREFETCH_IOCTL = 1 << 3,	/* ...through the library's own ADVISE_MR ioctl
						 * where the verbs provider lacks ibv_advise_mr */
	HMMV_DEVICE_MR_STATS = 1 << 4,		/* hmmv_query_mr_stats works for ODP MRs */
	HMMV_DEVICE_HMM = 1 << 5,		/* ODP MRs are served by ib_hmm (mirror table) */
};

/* hmmv_device_attr.comp_mask: in, the optional fields wanted; out, the ones filled. */
enum hmmv_device_attr_mask {
	HMMV_DEVICE_ATTR_MASK_ODP_CAPS = 1 << 0,	/* general/rc/uc/ud/xrc_odp_caps */
	HMMV_DEVICE_ATTR_MASK_PAGE_SIZES = 1 << 1,	/* mirror_page_sizes */
	HMMV_DEVICE_ATTR_MASK_ALL = (1 << 2) - 1,
};

struct hmmv_device_attr {
	uint64_t comp_mask;
	uint64_t flags;			/* enum hmmv_device_flags */
	uint32_t provider;		/* enum hmmv_provider */
	uint32_t reserved;
	/* HMMV_DEVICE_ATTR_MASK_ODP_CAPS: as ibv_query_device_ex() reports them */
	uint64_t general_odp_caps;	/* enum ibv_odp_general_caps */
	uint32_t rc_odp_caps;		/* enum ibv_odp_transport_cap_bits */
	uint32_t uc_odp_caps;
	uint32_t ud_odp_caps;
	uint32_t xrc_odp_caps;
	/* HMMV_DEVICE_ATTR_MASK_PAGE_SIZES: bit n set = pages of 2^n bytes are mirrored as one */
	uint64_t mirror_page_sizes;
};

/* hmmv_mr_stats.comp_mask: in, the optional fields wanted; out, the ones filled. */
enum hmmv_mr_stats_mask {
	HMMV_MR_STATS_MASK_MIRROR = 1 << 0,	/* mapped_pages, mirror_bytes (ib_hmm only) */
	HMMV_MR_STATS_MASK_ALL = (1 << 1) - 1,
};

/* hmmv_mr_stats.flags */
enum hmmv_mr_stats_flags {
	HMMV_MR_STATS_IMPLICIT = 1 << 0,	/* the MR covers the whole address space */
};

struct hmmv_mr_stats {
	uint64_t comp_mask;
	uint64_t flags;				/* enum hmmv_mr_stats_flags */
	uint64_t page_faults;			/* pages made present by data-path faults */
	uint64_t page_faults_handled;		/* data-path fault events that completed */
	uint64_t page_invalidations;		/* pages of the MR zapped by invalidations */
	uint64_t page_invalidations_handled;	/* invalidations that zapped a page of the MR */
	uint64_t page_prefetch;			/* pages made present by prefetch */
	/* HMMV_MR_STATS_MASK_MIRROR */
	uint64_t mapped_pages;			/* 4 KiB pages of the MR present in the mirror now */
	uint64_t mirror_bytes;			/* bytes of the mirror table the MR views */
};

/* The largest sg_list hmmv_advise_mr() accepts (the uverbs attribute length is 16 bits). */
#define HMMV_ADVISE_MAX_SGE 4095u

bool hmmv_is_supported(struct ibv_device *device);
int hmmv_query_device(struct ibv_context *context, struct hmmv_device_attr *attr);

struct ibv_mr *hmmv_reg_implicit_mr(struct ibv_pd *pd, int access);
struct ibv_mr *hmmv_reg_odp_mr(struct ibv_pd *pd, void *addr, size_t length, int access);

int hmmv_advise_mr(struct ibv_pd *pd, enum ibv_advise_mr_advice advice, uint32_t flags,
		   struct ibv_sge *sg_list, uint32_t num_sge);

int hmmv_query_mr_stats(struct ibv_mr *mr, struct hmmv_mr_stats *stats);

#ifdef __cplusplus
}
#endif
#endif /* INFINIBAND_HMMVERBS_H */
