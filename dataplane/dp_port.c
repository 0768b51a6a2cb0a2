/* dp_port — a DPDK port with one RX/TX queue pair per poll lcore: RSS on IPv4 addresses when
 * the device offers it, one queue otherwise; the RX pool on the device's NUMA socket; a
 * bounded wait for the link. Set-up and tear-down only (never on the hot path). */
#include <rte_bus.h>
#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_ethdev.h>

#include "dataplane/dp_int.h"

#define DP_PORT_POOL_CACHE 256
#define DP_PORT_LINK_WAIT_MS 3000

static void dp_port_pool_name(char *buf, size_t len, uint16_t port_id)
{
	snprintf(buf, len, "dp_rxq_p%u", port_id);
}

/* Configures n queues (RSS when rss_hf != 0) and sets every queue up; 0 or -errno. */
static int dp_port_configure(uint16_t port_id, uint16_t n, uint64_t rss_hf, uint16_t nb_desc,
			     int socket, struct rte_mempool *mp)
{
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	if (rss_hf) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_key = NULL; /* the driver's default key */
		conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
	}
	int rc = rte_eth_dev_configure(port_id, n, n, &conf);
	if (rc < 0)
		return rc;
	uint16_t nb_rx = nb_desc, nb_tx = nb_desc;
	rc = DP_CHECK(rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &nb_rx, &nb_tx));
	if (rc < 0)
		return rc;
	unsigned sock = socket < 0 ? (unsigned)SOCKET_ID_ANY : (unsigned)socket;
	for (uint16_t q = 0; q < n; q++) {
		if ((rc = DP_CHECK(rte_eth_rx_queue_setup(port_id, q, nb_rx, sock, NULL, mp))) < 0 ||
		    (rc = DP_CHECK(rte_eth_tx_queue_setup(port_id, q, nb_tx, sock, NULL))) < 0)
			return rc;
	}
	return 0;
}

/* Drivers that advertise RSS but do not spread packets by the configured hash: net_tap's
 * queues are chosen by the kernel (tun hashes the UDP ports too, so a client's RTP and RTCP
 * would land on different queues unless rte_flow rules are installed). One queue for them. */
static int dp_port_rss_usable(const char *driver)
{
	return strcmp(driver, "net_tap") != 0;
}

int dp_port_setup(uint16_t port_id, unsigned n_queues, uint16_t nb_desc, unsigned n_mbufs,
		  struct dp_port_info *out)
{
	if (!out || nb_desc == 0)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!rte_eth_dev_is_valid_port(port_id)) {
		fprintf(stderr, "dp_port_setup: no port %u\n", port_id);
		return -ENODEV;
	}
	struct rte_eth_dev_info info;
	int rc = DP_CHECK(rte_eth_dev_info_get(port_id, &info));
	if (rc < 0)
		return rc;
	out->port_id = port_id;
	out->socket = rte_eth_dev_socket_id(port_id);
	if (out->socket < 0)
		out->socket = -1;
	snprintf(out->driver, sizeof(out->driver), "%s", info.driver_name ? info.driver_name : "?");
	snprintf(out->device, sizeof(out->device), "%s",
		 info.device ? rte_dev_name(info.device) : "?");
	uint16_t max_q = info.max_rx_queues < info.max_tx_queues ? info.max_rx_queues
								 : info.max_tx_queues;
	if (max_q == 0)
		max_q = 1;
	out->max_queues = max_q;

	/* RSS on addresses only: a client's RTP and RTCP (different UDP ports) must reach the
	 * same queue, since each queue has its own client table. */
	uint64_t capa = info.flow_type_rss_offloads;
	uint64_t rss_hf = RTE_ETH_RSS_IPV4 & capa;
	/* NICs that classify UDP apart from other IPv4 (i40e, ice) hash UDP only when asked for
	 * it; with the source-address-only input set it is still never hashed by port. */
	const uint64_t udp_src = RTE_ETH_RSS_NONFRAG_IPV4_UDP | RTE_ETH_RSS_L3_SRC_ONLY;
	if (rss_hf && (capa & udp_src) == udp_src)
		rss_hf |= udp_src;
	if (!dp_port_rss_usable(out->driver))
		rss_hf = 0;
	uint16_t n = (uint16_t)(n_queues == 0 ? 1 : n_queues > max_q ? max_q : n_queues);
	if (!rss_hf)
		n = 1;

	char name[RTE_MEMPOOL_NAMESIZE];
	dp_port_pool_name(name, sizeof(name), port_id);
	/* every RX descriptor holds an mbuf, plus per-lcore caches and bursts in flight */
	unsigned need = (unsigned)n * nb_desc + (unsigned)n * (DP_PORT_POOL_CACHE + DP_BURST_MAX) +
			1024;
	if (n_mbufs < need)
		n_mbufs = need;
	int socket = out->socket;
	struct rte_mempool *mp = rte_pktmbuf_pool_create(name, n_mbufs, DP_PORT_POOL_CACHE, 0,
							 RTE_MBUF_DEFAULT_BUF_SIZE,
							 socket < 0 ? SOCKET_ID_ANY : socket);
	if (!mp && socket >= 0) /* no memory on that socket (e.g. --no-huge): anywhere */
		mp = rte_pktmbuf_pool_create(name, n_mbufs, DP_PORT_POOL_CACHE, 0,
					     RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	if (!mp) {
		fprintf(stderr, "dp_port_setup: pool %s (%u mbufs): %s\n", name, n_mbufs,
			rte_strerror(rte_errno));
		return -rte_errno;
	}

	rc = dp_port_configure(port_id, n, n > 1 ? rss_hf : 0, nb_desc, socket, mp);
	if (rc < 0 && n > 1) {
		/* a driver that advertises RSS but refuses this set-up: one queue */
		fprintf(stderr, "dp_port_setup: port %u refused %u RSS queues (%s); using one\n",
			port_id, n, strerror(-rc));
		n = 1;
		rc = dp_port_configure(port_id, 1, 0, nb_desc, socket, mp);
	}
	if (rc < 0) {
		fprintf(stderr, "dp_port_setup: port %u: configure: %s\n", port_id, strerror(-rc));
		rte_mempool_free(mp);
		return rc;
	}
	if ((rc = DP_CHECK(rte_eth_dev_start(port_id))) < 0) {
		rte_eth_dev_close(port_id);
		rte_mempool_free(mp);
		return rc;
	}
	rte_eth_promiscuous_enable(port_id); /* not every driver has it; harmless */
	out->n_queues = n;
	out->rss = n > 1;

	struct rte_eth_link link;
	memset(&link, 0, sizeof(link));
	for (unsigned waited = 0; waited <= DP_PORT_LINK_WAIT_MS; waited += 50) {
		if (rte_eth_link_get_nowait(port_id, &link) == 0 &&
		    link.link_status == RTE_ETH_LINK_UP)
			break;
		rte_delay_us_sleep(50 * 1000);
	}
	out->link_up = link.link_status == RTE_ETH_LINK_UP;
	out->link_mbps = link.link_speed == RTE_ETH_SPEED_NUM_UNKNOWN ? 0 : link.link_speed;
	return n;
}

int dp_port_teardown(uint16_t port_id)
{
	if (!rte_eth_dev_is_valid_port(port_id))
		return -ENODEV;
	DP_CHECK(rte_eth_dev_stop(port_id));
	int rc = DP_CHECK(rte_eth_dev_close(port_id));
	char name[RTE_MEMPOOL_NAMESIZE];
	dp_port_pool_name(name, sizeof(name), port_id);
	rte_mempool_free(rte_mempool_lookup(name));
	return rc;
}
