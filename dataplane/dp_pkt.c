/* dp_pkt — Ethernet/IPv4/UDP on the poll lcore: validation of received packets (every drop
 * counted by kind), ARP and ICMP echo answered in place, RTP/RTCP handed on, and RTCP APP
 * packets built with full IPv4 and UDP checksums. Single-segment mbufs only. */
#include <rte_arp.h>
#include <rte_ethdev.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "dataplane/dp_int.h"

void dp_tx_flush(struct dp_ctx *ctx)
{
	if (ctx->n_tx == 0)
		return;
	uint16_t sent = rte_eth_tx_burst(ctx->cfg.port_id, ctx->cfg.tx_queue, ctx->tx,
					 (uint16_t)ctx->n_tx);
	DP_CNT_ADD(ctx, DP_CNT_TX_PKTS, sent);
	if (sent < ctx->n_tx) {
		DP_CNT_ADD(ctx, DP_CNT_TX_FAILED, ctx->n_tx - sent);
		rte_pktmbuf_free_bulk(&ctx->tx[sent], ctx->n_tx - sent);
	}
	ctx->n_tx = 0;
}

void dp_tx_push(struct dp_ctx *ctx, struct rte_mbuf *m)
{
	if (ctx->n_tx == DP_TX_BUF)
		dp_tx_flush(ctx);
	ctx->tx[ctx->n_tx++] = m;
}

static inline int dp_mac_is(const struct rte_ether_addr *a, const struct rte_ether_addr *b)
{
	return rte_is_same_ether_addr(a, b);
}

/* ARP request for our address: turned into the reply in place. */
static int dp_arp_rx(struct dp_ctx *ctx, struct rte_mbuf *m, struct rte_ether_hdr *eth,
		     uint32_t l2_len)
{
	if (l2_len < sizeof(struct rte_arp_hdr)) {
		DP_CNT_INC(ctx, DP_CNT_DROP_RUNT);
		return 0;
	}
	struct rte_arp_hdr *arp = (struct rte_arp_hdr *)(eth + 1);
	if (arp->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
	    arp->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) || arp->arp_hlen != 6 ||
	    arp->arp_plen != 4 || arp->arp_opcode != rte_cpu_to_be_16(RTE_ARP_OP_REQUEST) ||
	    arp->arp_data.arp_tip != ctx->cfg.ip) {
		DP_CNT_INC(ctx, DP_CNT_DROP_ARP);
		return 0;
	}
	struct rte_arp_ipv4 *a = &arp->arp_data;
	uint32_t peer_ip = a->arp_sip;
	struct rte_ether_addr peer_mac = a->arp_sha;
	arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
	a->arp_tha = peer_mac;
	a->arp_tip = peer_ip;
	a->arp_sha = ctx->mac;
	a->arp_sip = ctx->cfg.ip;
	eth->dst_addr = peer_mac;
	eth->src_addr = ctx->mac;
	uint32_t want = sizeof(*eth) + sizeof(*arp);
	rte_pktmbuf_trim(m, (uint16_t)(rte_pktmbuf_pkt_len(m) - want));
	dp_tx_push(ctx, m);
	DP_CNT_INC(ctx, DP_CNT_ARP_REPLIES);
	return 1;
}

/* ICMP echo request: checksum verified, answered in place. */
static int dp_icmp_rx(struct dp_ctx *ctx, struct rte_mbuf *m, struct rte_ether_hdr *eth,
		      struct rte_ipv4_hdr *ip, uint32_t ihl, uint32_t ip_len)
{
	uint32_t icmp_len = ip_len - ihl;
	struct rte_icmp_hdr *icmp = (struct rte_icmp_hdr *)((uint8_t *)ip + ihl);
	if (icmp_len < sizeof(*icmp) || icmp->icmp_type != RTE_IP_ICMP_ECHO_REQUEST ||
	    icmp->icmp_code != 0 || rte_raw_cksum(icmp, icmp_len) != 0xffff) {
		DP_CNT_INC(ctx, DP_CNT_DROP_ICMP);
		return 0;
	}
	icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
	icmp->icmp_cksum = 0;
	icmp->icmp_cksum = (uint16_t)~rte_raw_cksum(icmp, icmp_len);
	ip->dst_addr = ip->src_addr;
	ip->src_addr = ctx->cfg.ip;
	ip->time_to_live = 64;
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	eth->dst_addr = eth->src_addr;
	eth->src_addr = ctx->mac;
	rte_pktmbuf_trim(m, (uint16_t)(rte_pktmbuf_pkt_len(m) - sizeof(*eth) - ip_len));
	dp_tx_push(ctx, m);
	DP_CNT_INC(ctx, DP_CNT_ICMP_REPLIES);
	return 1;
}

static void dp_udp_rx(struct dp_ctx *ctx, struct rte_mbuf *m, struct rte_ether_hdr *eth,
		      struct rte_ipv4_hdr *ip, uint32_t ihl, uint32_t ip_len, uint64_t now_ns)
{
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)((uint8_t *)ip + ihl);
	uint32_t avail = ip_len - ihl;
	if (avail < sizeof(*udp)) {
		DP_CNT_INC(ctx, DP_CNT_DROP_RUNT);
		return;
	}
	uint32_t ulen = rte_be_to_cpu_16(udp->dgram_len);
	if (ulen < sizeof(*udp) || ulen > avail ||
	    (m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_BAD) {
		DP_CNT_INC(ctx, DP_CNT_DROP_UDP_HDR);
		return;
	}
	uint16_t dport = rte_be_to_cpu_16(udp->dst_port);
	uint16_t sport = rte_be_to_cpu_16(udp->src_port);
	const uint8_t *pl = (const uint8_t *)(udp + 1);
	uint32_t plen = ulen - (uint32_t)sizeof(*udp);
	if (dport == ctx->cfg.media_port) {
		struct dp_rtp_hdr h;
		if (dp_rtp_parse(pl, plen, &h) != 0) {
			DP_CNT_INC(ctx, DP_CNT_DROP_RTP);
			return;
		}
		if (h.payload_type != DP_RTP_PT_JPEG && h.payload_type != ctx->cfg.raw_pt) {
			DP_CNT_INC(ctx, DP_CNT_DROP_RTP_PT); /* before it can take a table entry */
			return;
		}
		struct dp_client_key key = {.ip = ip->src_addr, .port = sport, .ssrc = h.ssrc};
		int created;
		struct dp_client *c = dp_client_get(ctx, &key, now_ns, &created);
		if (!c) {
			DP_CNT_INC(ctx, DP_CNT_DROP_TABLE_FULL);
			return;
		}
		c->mac = eth->src_addr;
		dp_reasm_rtp(ctx, c, &h, plen, now_ns);
	} else if (dport == (uint16_t)(ctx->cfg.media_port + 1)) {
		dp_rtcp_rx(ctx, &eth->src_addr, ip->src_addr, sport, pl, plen, now_ns);
	} else {
		DP_CNT_INC(ctx, DP_CNT_DROP_UDP_PORT);
	}
}

int dp_pkt_rx(struct dp_ctx *ctx, struct rte_mbuf *m, uint64_t now_ns)
{
	DP_CNT_INC(ctx, DP_CNT_RX_PKTS);
	DP_CNT_ADD(ctx, DP_CNT_RX_BYTES, rte_pktmbuf_pkt_len(m));
	if (m->nb_segs != 1) {
		DP_CNT_INC(ctx, DP_CNT_DROP_MULTISEG);
		return 0;
	}
	uint32_t len = rte_pktmbuf_data_len(m);
	if (len < sizeof(struct rte_ether_hdr)) {
		DP_CNT_INC(ctx, DP_CNT_DROP_RUNT);
		return 0;
	}
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	uint32_t l2_len = len - (uint32_t)sizeof(*eth);
	if (!dp_mac_is(&eth->dst_addr, &ctx->mac) && !rte_is_broadcast_ether_addr(&eth->dst_addr)) {
		DP_CNT_INC(ctx, DP_CNT_DROP_NOT_MINE);
		return 0;
	}
	if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP))
		return dp_arp_rx(ctx, m, eth, l2_len);
	if (eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) {
		DP_CNT_INC(ctx, DP_CNT_DROP_ETHERTYPE);
		return 0;
	}
	if (l2_len < sizeof(struct rte_ipv4_hdr)) {
		DP_CNT_INC(ctx, DP_CNT_DROP_RUNT);
		return 0;
	}
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	uint32_t ihl = (uint32_t)(ip->version_ihl & 0x0f) * 4;
	uint32_t ip_len = rte_be_to_cpu_16(ip->total_length);
	if ((ip->version_ihl >> 4) != 4 || ihl < sizeof(*ip) || ihl > l2_len || ip_len < ihl ||
	    ip_len > l2_len) {
		DP_CNT_INC(ctx, DP_CNT_DROP_IP_HDR);
		return 0;
	}
	if (rte_raw_cksum(ip, ihl) != 0xffff) {
		DP_CNT_INC(ctx, DP_CNT_DROP_IP_CKSUM);
		return 0;
	}
	if (ip->dst_addr != ctx->cfg.ip) {
		DP_CNT_INC(ctx, DP_CNT_DROP_NOT_MINE);
		return 0;
	}
	uint16_t frag = rte_be_to_cpu_16(ip->fragment_offset);
	if (frag & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) {
		DP_CNT_INC(ctx, DP_CNT_DROP_IP_FRAG);
		return 0;
	}
	switch (ip->next_proto_id) {
	case IPPROTO_UDP:
		dp_udp_rx(ctx, m, eth, ip, ihl, ip_len, now_ns);
		return 0;
	case IPPROTO_ICMP:
		return dp_icmp_rx(ctx, m, eth, ip, ihl, ip_len);
	default:
		DP_CNT_INC(ctx, DP_CNT_DROP_IP_PROTO);
		return 0;
	}
}

int dp_pkt_send_app(struct dp_ctx *ctx, const struct dp_client *c, const struct dp_app_msg *msg)
{
	const uint32_t hdrs = sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr) +
			      sizeof(struct rte_udp_hdr);
	struct rte_mbuf *m = rte_pktmbuf_alloc(ctx->tx_pool);
	if (!m) {
		DP_CNT_INC(ctx, DP_CNT_TX_FAILED);
		return -ENOBUFS;
	}
	uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(hdrs + DP_UDP_PAYLOAD_MAX));
	if (!p) {
		rte_pktmbuf_free(m);
		DP_CNT_INC(ctx, DP_CNT_TX_FAILED);
		return -ENOBUFS;
	}
	ssize_t n = dp_app_build(p + hdrs, DP_UDP_PAYLOAD_MAX, msg);
	if (n <= 0) {
		rte_pktmbuf_free(m);
		DP_CNT_INC(ctx, DP_CNT_TX_FAILED);
		return -EINVAL;
	}
	rte_pktmbuf_trim(m, (uint16_t)(DP_UDP_PAYLOAD_MAX - n));
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)p;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	eth->dst_addr = c->mac;
	eth->src_addr = ctx->mac;
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	memset(ip, 0, sizeof(*ip));
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + sizeof(*udp) + n));
	ip->packet_id = rte_cpu_to_be_16(ctx->ip_id++);
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->src_addr = ctx->cfg.ip;
	ip->dst_addr = c->key.ip;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	udp->src_port = rte_cpu_to_be_16((uint16_t)(ctx->cfg.media_port + 1));
	udp->dst_port = rte_cpu_to_be_16(c->st.rtcp_port);
	udp->dgram_len = rte_cpu_to_be_16((uint16_t)(sizeof(*udp) + n));
	udp->dgram_cksum = 0;
	udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
	dp_tx_push(ctx, m);
	return 0;
}
