// SPDX-License-Identifier: GPL-2.0
/* The hmm_dma_map helpers (HMM_PFN_DMA_MAPPED, hmm_dma_map_alloc). */
#include <linux/hmm.h>
#include <linux/hmm-dma.h>

int ib_hmm_probe_hmm_dma_map(struct device *dev, struct hmm_dma_map *map,
			     size_t nr);

int ib_hmm_probe_hmm_dma_map(struct device *dev, struct hmm_dma_map *map,
			     size_t nr)
{
	return hmm_dma_map_alloc(dev, map, nr, PAGE_SIZE);
}
