// SPDX-License-Identifier: GPL-2.0
/*
 * ib_hmm DMA mirrors: a mirror bound to a struct device maps for that
 * device what it installs and unmaps what it zaps.
 *
 * Two ways to map, chosen once per mirror:
 * - IOVA mode (kernels with the two-step IOVA API, IB_HMM_HAVE_DMA_IOVA, and
 *   a device behind an IOMMU that uses it): one IOVA range of 2 MiB per
 *   granule that holds entries, allocated with the granule's first entry
 *   and freed when the granule empties; each entry's pages are linked into
 *   it at their offset. Nothing is stored per page: the DMA address of a
 *   page is the range's base plus the page's offset in the granule.
 * - page mode (older kernels, or no IOMMU / direct mapping, where
 *   dma_iova_try_alloc() says no): dma_map_page() per entry (a huge entry is
 *   one 2 MiB mapping), its address kept beside the entry.
 * A page is mapped DMA_BIDIRECTIONAL if its entry has WRITE, else
 * DMA_TO_DEVICE, so that an IOMMU refuses device writes through entries
 * that were not faulted for write (invariant 3).
 *
 * Everything here runs under mirror->lock; mapping never sleeps (the DMA
 * API maps with GFP_ATOMIC). Unmapping runs in the invalidate callback,
 * under the stripe of the granule, before the callback returns.
 */
#include <linux/device.h>
#include <linux/dma-mapping.h>
#include <linux/export.h>

#include "ib_hmm_priv.h"

/**
 * ib_hmm_dma_uses_iova() - whether DMA mirrors of @dev use IOVA mode
 * @dev: the DMA device
 *
 * Context: process context, may sleep.
 * Return: true if a 2 MiB IOVA range could be allocated for @dev with the
 * two-step IOVA API (then given back), false if DMA mirrors of @dev map
 * page by page.
 */
bool ib_hmm_dma_uses_iova(struct device *dev)
{
#ifdef IB_HMM_HAVE_DMA_IOVA
	struct dma_iova_state state;

	if (!dma_iova_try_alloc(dev, &state, 0, IB_HMM_GRANULE_SIZE))
		return false;
	dma_iova_free(dev, &state);
	return true;
#else
	return false;
#endif
}
EXPORT_SYMBOL_GPL(ib_hmm_dma_uses_iova);
