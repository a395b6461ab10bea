// SPDX-License-Identifier: GPL-2.0
/* The two-step DMA IOVA API (dma_iova_try_alloc and friends). */
#include <linux/dma-mapping.h>

bool ib_hmm_probe_dma_iova(struct device *dev, struct dma_iova_state *state,
			   phys_addr_t phys, size_t size);

bool ib_hmm_probe_dma_iova(struct device *dev, struct dma_iova_state *state,
			   phys_addr_t phys, size_t size)
{
	return dma_iova_try_alloc(dev, state, phys, size);
}
