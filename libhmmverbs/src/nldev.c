// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * rdma netlink (NETLINK_RDMA, client RDMA_NL_NLDEV) through libmnl: the kernel driver of a
 * device, and the ODP counters of an MR from its restrack entry.
 *
 * An MR is found by device index (the dump is filtered to it) and lkey + rkey. The kernel
 * reports keys only to callers with CAP_NET_ADMIN; without them an MR cannot be identified
 * and the lookup fails with EPERM. The counters are the driver attributes (name/value pairs
 * in RDMA_NLDEV_ATTR_DRIVER) that rxe with ib_hmm and mlx5 fill under the same names.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <rdma/rdma_netlink.h>

#include "hmmv_priv.h"

#define NL_BUF_SIZE 32768

/* Send the request in @buf and feed every answer to @cb; 0 or a positive errno. */
static int nl_transact(char *buf, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	struct mnl_socket *sock;
	unsigned int portid, seq;
	ssize_t len;
	int ret, err = 0;

	sock = mnl_socket_open(NETLINK_RDMA);
	if (!sock)
		return errno ? errno : EIO;
	if (mnl_socket_bind(sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = errno;
		goto close_sock;
	}
	portid = mnl_socket_get_portid(sock);
	seq = (unsigned int)time(NULL);
	nlh->nlmsg_seq = seq;
	if (mnl_socket_sendto(sock, nlh, nlh->nlmsg_len) < 0) {
		err = errno;
		goto close_sock;
	}
	do {
		len = mnl_socket_recvfrom(sock, buf, NL_BUF_SIZE);
		if (len < 0) {
			err = errno;
			break;
		}
		ret = mnl_cb_run(buf, len, seq, portid, cb, data);
		if (ret < 0) {
			err = errno ? errno : EIO;
			break;
		}
	} while (ret > 0);
close_sock:
	mnl_socket_close(sock);
	return err;
}

static struct nlmsghdr *nl_start(char *buf, uint16_t cmd, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	nlh->nlmsg_type = RDMA_NL_GET_TYPE(RDMA_NL_NLDEV, cmd);
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	return nlh;
}

/* mnl_attr_parse callback: keep attributes this header knows, by type. */
static int collect_attr(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (type >= 0 && type <= RDMA_NLDEV_ATTR_MAX)
		tb[type] = attr;
	return MNL_CB_OK;
}

static int chardev_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[RDMA_NLDEV_ATTR_MAX + 1] = {};
	uint32_t *driver_id = data;

	mnl_attr_parse(nlh, 0, collect_attr, tb);
	if (tb[RDMA_NLDEV_ATTR_UVERBS_DRIVER_ID] &&
	    mnl_attr_validate(tb[RDMA_NLDEV_ATTR_UVERBS_DRIVER_ID], MNL_TYPE_U32) >= 0)
		*driver_id = mnl_attr_get_u32(tb[RDMA_NLDEV_ATTR_UVERBS_DRIVER_ID]);
	return MNL_CB_OK;
}

int hmmv_nl_driver_id(uint32_t dev_index, uint32_t *driver_id)
{
	struct nlmsghdr *nlh;
	uint32_t id = UINT32_MAX;
	char *buf;
	int err;

	buf = malloc(NL_BUF_SIZE);
	if (!buf)
		return ENOMEM;
	nlh = nl_start(buf, RDMA_NLDEV_CMD_GET_CHARDEV, 0);
	mnl_attr_put_u32(nlh, RDMA_NLDEV_ATTR_DEV_INDEX, dev_index);
	mnl_attr_put_strz(nlh, RDMA_NLDEV_ATTR_CHARDEV_TYPE, "uverbs");
	err = nl_transact(buf, nlh, chardev_cb, &id);
	free(buf);
	if (!err && id == UINT32_MAX)
		err = ENOENT;
	if (!err)
		*driver_id = id;
	return err;
}

/* Set one counter of @r by its restrack name; false for a name that is no counter. */
static bool set_counter(struct hmmv_nl_mr *r, const char *name, uint64_t value)
{
	struct hmmv_mr_stats *s = &r->stats;

	if (!strcmp(name, "page_faults"))
		s->page_faults = value;
	else if (!strcmp(name, "page_faults_handled"))
		s->page_faults_handled = value;
	else if (!strcmp(name, "page_invalidations"))
		s->page_invalidations = value;
	else if (!strcmp(name, "page_invalidations_handled"))
		s->page_invalidations_handled = value;
	else if (!strcmp(name, "page_prefetch"))
		s->page_prefetch = value;
	else if (!strcmp(name, "hmm_mapped_pages")) {
		s->mapped_pages = value;
		r->has_mirror = true;
	} else if (!strcmp(name, "hmm_table_bytes")) {
		s->mirror_bytes = value;
		r->has_mirror = true;
	} else
		return false;
	r->has_counters = true;
	return true;
}

/*
 * RDMA_NLDEV_ATTR_DRIVER holds a flat list: DRIVER_STRING (the name), an optional
 * DRIVER_PRINT_TYPE, then the value (DRIVER_STRING, _S32, _U32, _S64 or _U64).
 */
static void parse_driver_attrs(struct hmmv_nl_mr *r, const struct nlattr *nest)
{
	const char *name = NULL;
	const struct nlattr *a;

	mnl_attr_for_each_nested(a, nest) {
		int type = mnl_attr_get_type(a);

		switch (type) {
		case RDMA_NLDEV_ATTR_DRIVER_STRING:
			if (!name) {
				name = mnl_attr_get_str(a);
				continue;
			}
			if (!strcmp(name, "odp") && !strcmp(mnl_attr_get_str(a), "implicit"))
				r->stats.flags |= HMMV_MR_STATS_IMPLICIT;
			break;
		case RDMA_NLDEV_ATTR_DRIVER_PRINT_TYPE:
			continue;
		case RDMA_NLDEV_ATTR_DRIVER_U32:
		case RDMA_NLDEV_ATTR_DRIVER_S32:
			if (name && mnl_attr_get_payload_len(a) >= 4)
				set_counter(r, name, mnl_attr_get_u32(a));
			break;
		case RDMA_NLDEV_ATTR_DRIVER_U64:
		case RDMA_NLDEV_ATTR_DRIVER_S64:
			if (name && mnl_attr_get_payload_len(a) >= 8)
				set_counter(r, name, mnl_attr_get_u64(a));
			break;
		default:
			break;
		}
		name = NULL;
	}
}

struct dump_ctx {
	hmmv_nl_mr_cb cb;
	void *arg;
	int stop;	/* a callback's non-zero return */
};

static void parse_mr_entry(struct dump_ctx *d, const struct nlattr *entry, uint32_t dev_index)
{
	const struct nlattr *tb[RDMA_NLDEV_ATTR_MAX + 1] = {};
	struct hmmv_nl_mr r = { .dev_index = dev_index };
	const struct nlattr *a;

	mnl_attr_for_each_nested(a, entry)
		collect_attr(a, tb);
	if (tb[RDMA_NLDEV_ATTR_RES_LKEY] && tb[RDMA_NLDEV_ATTR_RES_RKEY]) {
		r.has_keys = true;
		r.lkey = mnl_attr_get_u32(tb[RDMA_NLDEV_ATTR_RES_LKEY]);
		r.rkey = mnl_attr_get_u32(tb[RDMA_NLDEV_ATTR_RES_RKEY]);
	}
	if (tb[RDMA_NLDEV_ATTR_RES_MRLEN])
		r.length = mnl_attr_get_u64(tb[RDMA_NLDEV_ATTR_RES_MRLEN]);
	if (tb[RDMA_NLDEV_ATTR_RES_MRN])
		r.mrn = mnl_attr_get_u32(tb[RDMA_NLDEV_ATTR_RES_MRN]);
	if (tb[RDMA_NLDEV_ATTR_RES_PID])
		r.pid = mnl_attr_get_u32(tb[RDMA_NLDEV_ATTR_RES_PID]);
	if (tb[RDMA_NLDEV_ATTR_RES_KERN_NAME])
		r.comm = mnl_attr_get_str(tb[RDMA_NLDEV_ATTR_RES_KERN_NAME]);
	if (tb[RDMA_NLDEV_ATTR_DRIVER])
		parse_driver_attrs(&r, tb[RDMA_NLDEV_ATTR_DRIVER]);
	if (!d->stop)
		d->stop = d->cb(&r, d->arg);
}

static int mr_dump_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[RDMA_NLDEV_ATTR_MAX + 1] = {};
	const struct nlattr *entry;
	uint32_t dev_index = 0;

	mnl_attr_parse(nlh, 0, collect_attr, tb);
	if (tb[RDMA_NLDEV_ATTR_DEV_INDEX])
		dev_index = mnl_attr_get_u32(tb[RDMA_NLDEV_ATTR_DEV_INDEX]);
	if (!tb[RDMA_NLDEV_ATTR_RES_MR])
		return MNL_CB_OK;
	mnl_attr_for_each_nested(entry, tb[RDMA_NLDEV_ATTR_RES_MR])
		if (mnl_attr_get_type(entry) == RDMA_NLDEV_ATTR_RES_MR_ENTRY)
			parse_mr_entry(data, entry, dev_index);
	return MNL_CB_OK;
}

int hmmv_nl_parse_mr_msg(const struct nlmsghdr *nlh, hmmv_nl_mr_cb cb, void *arg)
{
	struct dump_ctx d = { .cb = cb, .arg = arg };

	mr_dump_cb(nlh, &d);
	return d.stop;
}

int hmmv_nl_mr_dump(uint32_t dev_index, hmmv_nl_mr_cb cb, void *arg)
{
	struct dump_ctx d = { .cb = cb, .arg = arg };
	struct nlmsghdr *nlh;
	char *buf;
	int err;

	buf = malloc(NL_BUF_SIZE);
	if (!buf)
		return ENOMEM;
	nlh = nl_start(buf, RDMA_NLDEV_CMD_RES_MR_GET, NLM_F_DUMP);
	mnl_attr_put_u32(nlh, RDMA_NLDEV_ATTR_DEV_INDEX, dev_index);
	err = nl_transact(buf, nlh, mr_dump_cb, &d);
	free(buf);
	return err ? err : d.stop;
}

struct mr_lookup {
	uint32_t lkey, rkey;
	bool saw_entries;	/* the device has MRs at all */
	bool saw_keys;		/* the kernel showed keys (we have CAP_NET_ADMIN) */
	bool found;
	struct hmmv_nl_mr mr;	/* the MR's record (strings not kept) */
};

static int lookup_cb(const struct hmmv_nl_mr *r, void *arg)
{
	struct mr_lookup *lk = arg;

	lk->saw_entries = true;
	if (!r->has_keys)
		return 0;
	lk->saw_keys = true;
	if (lk->found || r->lkey != lk->lkey || r->rkey != lk->rkey)
		return 0;
	lk->found = true;
	lk->mr = *r;
	lk->mr.comm = NULL;
	return 0;
}

int hmmv_nl_mr_stats(struct ibv_mr *mr, struct hmmv_mr_stats *stats)
{
	struct mr_lookup lk = { .lkey = mr->lkey, .rkey = mr->rkey };
	int index, err;

	index = ibv_get_device_index(mr->context->device);
	if (index < 0)
		return ENODEV;
	err = hmmv_nl_mr_dump(index, lookup_cb, &lk);
	if (err)
		return err;
	if (!lk.found)
		return lk.saw_entries && !lk.saw_keys ? EPERM : ENOENT;
	if (!lk.mr.has_counters)
		return EOPNOTSUPP;	/* not an ODP MR, or a driver that reports no counters */
	lk.mr.stats.comp_mask = stats->comp_mask;
	if (!lk.mr.has_mirror) {
		lk.mr.stats.comp_mask &= ~(uint64_t)HMMV_MR_STATS_MASK_MIRROR;
		lk.mr.stats.mapped_pages = 0;
		lk.mr.stats.mirror_bytes = 0;
	} else if (!(stats->comp_mask & HMMV_MR_STATS_MASK_MIRROR)) {
		lk.mr.stats.mapped_pages = 0;
		lk.mr.stats.mirror_bytes = 0;
	}
	*stats = lk.mr.stats;
	return 0;
}
