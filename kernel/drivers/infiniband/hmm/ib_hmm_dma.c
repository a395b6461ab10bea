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
#include <linux/pfn.h>

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

/**
 * ib_hmm_dma_table_init() - make @t the table of a DMA mirror of @dev
 * @t: a table just set up by ib_hmm_table_init()
 * @dev: the DMA device; the caller holds a reference for the table's life
 *
 * Chooses the mode and the node sizes: a level 1 node gets the DMA state of
 * its granules after its slots, and so does a leaf in page mode.
 *
 * Context: process context, may sleep.
 */
void ib_hmm_dma_table_init(struct ib_hmm_table *t, struct device *dev)
{
	t->dma_dev = dev;
	t->dma_iova = ib_hmm_dma_uses_iova(dev);
	t->order[0] = t->dma_iova ? 0 :
		get_order(PAGE_SIZE + IB_HMM_LEVEL_SLOTS * sizeof(dma_addr_t));
	t->order[1] = get_order(PAGE_SIZE + IB_HMM_LEVEL_SLOTS *
				sizeof(struct ib_hmm_dma_gran));
}

static enum dma_data_direction ib_hmm_dma_dir(bool write)
{
	return write ? DMA_BIDIRECTIONAL : DMA_TO_DEVICE;
}

/**
 * ib_hmm_dma_map() - map @size bytes of pages for the table's device
 * @t: a DMA table
 * @g: the granule's DMA state
 * @addr: page mode: where the DMA address goes
 * @off: offset of the first page in the granule
 * @pfn: first pfn (the pages are physically contiguous)
 * @size: PAGE_SIZE, or IB_HMM_GRANULE_SIZE for a huge entry
 * @write: the entry has WRITE: the device may write (else reads only)
 *
 * IOVA mode allocates the granule's range on its first mapping, links the
 * pages at @off and syncs the IOTLB for them.
 *
 * Context: mirror->lock held; does not sleep.
 * Return: 0, or -EIO if the DMA API could not map (or allocate the range).
 */
int ib_hmm_dma_map(struct ib_hmm_table *t, struct ib_hmm_dma_gran *g,
		   dma_addr_t *addr, u64 off, unsigned long pfn, size_t size,
		   bool write)
{
	enum dma_data_direction dir = ib_hmm_dma_dir(write);
	struct device *dev = t->dma_dev;

	if (t->dma_iova) {
#ifdef IB_HMM_HAVE_DMA_IOVA
		if (!dma_use_iova(&g->iova)) {
			if (!dma_iova_try_alloc(dev, &g->iova, 0,
						IB_HMM_GRANULE_SIZE))
				return -EIO;
			atomic64_inc(&ib_hmm_stats.dma_iova_ranges);
		}
		if (dma_iova_link(dev, &g->iova, PFN_PHYS(pfn), off, size, dir,
				  0))
			return -EIO;
		if (dma_iova_sync(dev, &g->iova, off, size)) {
			dma_iova_unlink(dev, &g->iova, off, size, dir, 0);
			return -EIO;
		}
#else
		return -EIO;
#endif
	} else {
		*addr = dma_map_page(dev, pfn_to_page(pfn), 0, size, dir);
		if (dma_mapping_error(dev, *addr)) {
			*addr = 0;
			return -EIO;
		}
	}
	atomic64_add(size >> PAGE_SHIFT, &ib_hmm_stats.dma_mapped_pages);
	return 0;
}

/**
 * ib_hmm_dma_unmap() - undo ib_hmm_dma_map()
 * @t: a DMA table
 * @g: the granule's DMA state
 * @addr: page mode: the DMA address (cleared)
 * @off: offset of the first page in the granule
 * @size: bytes; IOVA mode may unlink several entries' pages at once
 * @write: as mapped
 *
 * When this returns the device can no longer reach the pages (the IOTLB is
 * flushed, at once with iommu.strict=1).
 *
 * Context: mirror->lock held (and the granule's stripe for write when an
 * entry is zapped); does not sleep.
 */
void ib_hmm_dma_unmap(struct ib_hmm_table *t, struct ib_hmm_dma_gran *g,
		      dma_addr_t *addr, u64 off, size_t size, bool write)
{
	enum dma_data_direction dir = ib_hmm_dma_dir(write);

	if (t->dma_iova) {
#ifdef IB_HMM_HAVE_DMA_IOVA
		dma_iova_unlink(t->dma_dev, &g->iova, off, size, dir, 0);
#endif
	} else {
		dma_unmap_page(t->dma_dev, *addr, size, dir);
		*addr = 0;
	}
	atomic64_sub(size >> PAGE_SHIFT, &ib_hmm_stats.dma_mapped_pages);
}

/**
 * ib_hmm_dma_gran_free() - give back the IOVA range of an empty granule
 * @t: a DMA table
 * @g: the granule's DMA state; nothing may be linked in it
 *
 * Context: mirror->lock held, or the table is being destroyed.
 */
void ib_hmm_dma_gran_free(struct ib_hmm_table *t, struct ib_hmm_dma_gran *g)
{
#ifdef IB_HMM_HAVE_DMA_IOVA
	if (t->dma_iova && dma_use_iova(&g->iova)) {
		dma_iova_free(t->dma_dev, &g->iova);
		memset(&g->iova, 0, sizeof(g->iova));
		atomic64_dec(&ib_hmm_stats.dma_iova_ranges);
	}
#endif
}

/**
 * ib_hmm_dma_gran_base() - the DMA address of the first page of a granule
 * @t: a DMA table
 * @g: the granule's DMA state
 *
 * Context: mirror->lock held.
 * Return: the base of its IOVA range (IOVA mode) or of its huge entry's
 * mapping (page mode).
 */
dma_addr_t ib_hmm_dma_gran_base(struct ib_hmm_table *t,
				struct ib_hmm_dma_gran *g)
{
#ifdef IB_HMM_HAVE_DMA_IOVA
	if (t->dma_iova)
		return g->iova.addr;
#endif
	return g->addr;
}
