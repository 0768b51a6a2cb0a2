/* flood_gen — see flood_gen.h. Frames are built here byte by byte (not with the codec's
 * builders) so that the lies are exactly the ones intended. */
#include "flood_gen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *const flood_names[FLOOD__COUNT] = {
	[FLOOD_RANDOM_UDP] = "random_udp",     [FLOOD_RTP_TRUNC] = "rtp_truncated",
	[FLOOD_RTP_CSRC] = "rtp_csrc_lie",     [FLOOD_RTP_EXT] = "rtp_ext_lie",
	[FLOOD_RTP_PAD] = "rtp_pad_lie",       [FLOOD_RTP_PT] = "rtp_unknown_pt",
	[FLOOD_RTCP_LEN] = "rtcp_len_lie",     [FLOOD_RTCP_APP_NAME] = "rtcp_app_unknown_name",
	[FLOOD_UNKNOWN_SSRC] = "unknown_ssrc", [FLOOD_IP_CKSUM] = "ip_bad_cksum",
	[FLOOD_IP_FRAG] = "ip_fragment",       [FLOOD_IP_LEN] = "ip_len_lie",
	[FLOOD_UDP_LEN] = "udp_len_lie",       [FLOOD_UDP_PORT] = "udp_other_port",
	[FLOOD_RUNT] = "runt",
};

const char *flood_kind_name(unsigned kind) { return kind < FLOOD__COUNT ? flood_names[kind] : NULL; }

static uint64_t fl_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void fl_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void fl_put32(uint8_t *p, uint32_t v)
{
	fl_put16(p, (uint16_t)(v >> 16));
	fl_put16(p + 2, (uint16_t)v);
}

static uint16_t fl_ip_cksum(const uint8_t *ip)
{
	uint32_t s = 0;
	for (unsigned i = 0; i < 20; i += 2)
		s += (uint32_t)ip[i] << 8 | ip[i + 1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* Ethernet + IPv4 + UDP around a payload already at f + 42; UDP checksum 0 (none). Returns
 * the frame length. */
static size_t fl_udp(uint8_t *f, const struct flood_cfg *c, const uint8_t *src_mac,
		     uint16_t sport, uint16_t dport, size_t plen)
{
	memcpy(f, c->dst_mac, 6);
	memcpy(f + 6, src_mac, 6);
	fl_put16(f + 12, 0x0800);
	uint8_t *ip = f + 14, *udp = f + 34;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	fl_put16(ip + 2, (uint16_t)(28 + plen));
	fl_put16(ip + 4, 0x4d2);
	ip[8] = 64;
	ip[9] = 17;
	fl_put32(ip + 12, c->src_ip);
	fl_put32(ip + 16, c->dst_ip);
	fl_put16(ip + 10, fl_ip_cksum(ip));
	fl_put16(udp, sport);
	fl_put16(udp + 2, dport);
	fl_put16(udp + 4, (uint16_t)(8 + plen));
	fl_put16(udp + 6, 0);
	return 42 + plen;
}

static void fl_rtp(uint8_t *b, uint8_t b0, uint8_t pt, uint16_t seq, uint32_t ts, uint32_t ssrc)
{
	b[0] = b0;
	b[1] = pt;
	fl_put16(b + 2, seq);
	fl_put32(b + 4, ts);
	fl_put32(b + 8, ssrc);
}

static void fl_fill(uint8_t *b, size_t n, uint64_t *rng)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)fl_rand(rng);
}

/* Builds one frame of the given kind; returns its length. */
static size_t fl_build(uint8_t *f, unsigned kind, const struct flood_cfg *c, uint64_t *rng,
		       uint64_t n)
{
	uint8_t mac[6] = {0x02, 0xf1, 0x00, 0x00, 0x00, (uint8_t)n};
	uint16_t sport = (uint16_t)(c->port_base + (n & 0xfe)); /* even: RTP, odd: RTCP */
	uint16_t mp = c->media_port;
	uint8_t *pl = f + 42, *ip = f + 14, *udp = f + 34;
	uint64_t r = fl_rand(rng);
	size_t len;
	switch (kind) {
	case FLOOD_RANDOM_UDP: {
		size_t plen = r % 1401;
		fl_fill(pl, plen, rng);
		static const uint8_t not_v2[3] = {0x00, 0x40, 0xc0}; /* RTP versions 0, 1, 3 */
		if (plen)
			pl[0] = (uint8_t)((pl[0] & 0x3f) | not_v2[(r >> 20) % 3]);
		return fl_udp(f, c, mac, sport, mp, plen);
	}
	case FLOOD_RTP_TRUNC:
		fl_fill(pl, 12, rng);
		pl[0] = 0x80;
		return fl_udp(f, c, mac, sport, mp, r % 12);
	case FLOOD_RTP_CSRC: { /* CC = 1..15, fewer CSRC words present */
		unsigned cc = 1 + (unsigned)(r % 15);
		fl_rtp(pl, (uint8_t)(0x80 | cc), 26, (uint16_t)n, (uint32_t)r, (uint32_t)(r >> 32));
		size_t have = (r >> 8) % (4 * cc);
		fl_fill(pl + 12, have, rng);
		return fl_udp(f, c, mac, sport, mp, 12 + have);
	}
	case FLOOD_RTP_EXT: { /* X bit; the extension header cut, or its length past the end */
		fl_rtp(pl, 0x90, 26, (uint16_t)n, (uint32_t)r, (uint32_t)(r >> 32));
		if (r & 1)
			return fl_udp(f, c, mac, sport, mp, 12 + (r >> 8) % 4);
		uint16_t words = (uint16_t)(1 + (r >> 8) % 0xfffe);
		fl_put16(pl + 12, 0xbede);
		fl_put16(pl + 14, words);
		size_t have = (r >> 24) % ((size_t)words * 4 < 1000 ? (size_t)words * 4 : 1000);
		fl_fill(pl + 16, have, rng);
		return fl_udp(f, c, mac, sport, mp, 16 + have);
	}
	case FLOOD_RTP_PAD: { /* P bit; last byte 0 or larger than what follows the header */
		fl_rtp(pl, 0xa0, 26, (uint16_t)n, (uint32_t)r, (uint32_t)(r >> 32));
		size_t body = 1 + (r >> 8) % 200;
		fl_fill(pl + 12, body, rng);
		/* body <= 200: a count of body + 1 .. 255 runs past the header */
		uint8_t pad = (r >> 16) & 1 ? 0 : (uint8_t)(body + 1 + (r >> 24) % (255 - body));
		pl[12 + body - 1] = pad;
		return fl_udp(f, c, mac, sport, mp, 12 + body);
	}
	case FLOOD_RTP_PT: { /* served: 26 (JPEG) and 96 (raw) */
		uint8_t pt = (uint8_t)(r % 128);
		if (pt == 26 || pt == 96)
			pt = 97;
		fl_rtp(pl, 0x80, (uint8_t)(pt | (r & 0x80)), (uint16_t)n, (uint32_t)r,
		       (uint32_t)(r >> 32));
		size_t body = (r >> 8) % 1000;
		fl_fill(pl + 12, body, rng);
		return fl_udp(f, c, mac, sport, mp, 12 + body);
	}
	case FLOOD_RTCP_LEN: { /* length field longer than the datagram */
		size_t plen = 4 + 4 * ((r >> 8) % 50);
		fl_fill(pl, plen, rng);
		pl[0] = 0x80 | (uint8_t)(r & 0x1f);
		pl[1] = (uint8_t)(200 + (r >> 5) % 5);
		fl_put16(pl + 2, (uint16_t)(plen / 4 + (r >> 16) % 1000));
		return fl_udp(f, c, mac, (uint16_t)(sport + 1), (uint16_t)(mp + 1), plen);
	}
	case FLOOD_RTCP_APP_NAME: { /* consistent APP packet, name other than "SHOL" */
		unsigned words = 2 + (unsigned)((r >> 8) % 20);
		size_t plen = 4 + 4 * (size_t)words;
		fl_fill(pl, plen, rng);
		pl[0] = 0x80 | (uint8_t)(r & 0x1f);
		pl[1] = 204;
		fl_put16(pl + 2, (uint16_t)words);
		if (memcmp(pl + 8, "SHOL", 4) == 0)
			pl[8] = 'X';
		return fl_udp(f, c, mac, (uint16_t)(sport + 1), (uint16_t)(mp + 1), plen);
	}
	case FLOOD_UNKNOWN_SSRC: { /* RTP/JPEG header, a few bytes of scan data */
		unsigned k = (unsigned)(r % (c->unknown_ssrcs ? c->unknown_ssrcs : 1));
		fl_rtp(pl, 0x80, (uint8_t)(26 | ((r >> 40) & 1 ? 0x80 : 0)), (uint16_t)n,
		       (uint32_t)(n * 3000), 0x5eed0000u + k);
		uint8_t *j = pl + 12;
		j[0] = 0;
		j[1] = 0;
		j[2] = (uint8_t)((r >> 8) & 3);
		j[3] = 0;
		j[4] = 1;
		j[5] = 50;
		j[6] = 8;
		j[7] = 6;
		size_t body = 16 + (r >> 16) % 500;
		fl_fill(j + 8, body, rng);
		return fl_udp(f, c, mac, (uint16_t)(c->port_base + 2 * k), mp, 20 + body);
	}
	case FLOOD_IP_CKSUM:
		fl_fill(pl, 40, rng);
		len = fl_udp(f, c, mac, sport, mp, 40);
		ip[10] ^= (uint8_t)(1 + r % 255);
		return len;
	case FLOOD_IP_FRAG:
		fl_fill(pl, 64, rng);
		len = fl_udp(f, c, mac, sport, mp, 64);
		fl_put16(ip + 6, r & 1 ? 0x2000 : (uint16_t)(1 + (r >> 8) % 0x1fff));
		fl_put16(ip + 10, 0);
		fl_put16(ip + 10, fl_ip_cksum(ip));
		return len;
	case FLOOD_IP_LEN:
		fl_fill(pl, 64, rng);
		len = fl_udp(f, c, mac, sport, mp, 64);
		fl_put16(ip + 2, (uint16_t)(20 + 8 + 64 + 1 + (r % 1000)));
		fl_put16(ip + 10, 0);
		fl_put16(ip + 10, fl_ip_cksum(ip));
		return len;
	case FLOOD_UDP_LEN:
		fl_fill(pl, 64, rng);
		len = fl_udp(f, c, mac, sport, mp, 64);
		if (r & 1) /* longer than the IPv4 payload */
			fl_put16(udp + 4, (uint16_t)(8 + 64 + 1 + (r >> 8) % 1000));
		else /* shorter than the UDP header */
			fl_put16(udp + 4, (uint16_t)((r >> 8) % 8));
		return len;
	case FLOOD_UDP_PORT: {
		uint16_t port = (uint16_t)r;
		if (port == mp || port == (uint16_t)(mp + 1))
			port = (uint16_t)(mp + 2);
		fl_fill(pl, 64, rng);
		return fl_udp(f, c, mac, sport, port, 64);
	}
	default: /* FLOOD_RUNT: Ethernet + fewer than 20 bytes of IPv4 */
		fl_udp(f, c, mac, sport, mp, 0);
		return 14 + r % 20;
	}
}

int flood_run(const struct flood_cfg *c, struct flood_stats *st)
{
	memset(st, 0, sizeof(*st));
	int s = socket(AF_PACKET, SOCK_RAW, 0); /* protocol 0: send only, receives nothing */
	if (s < 0)
		return -errno;
	int one = 1;
	setsockopt(s, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	struct sockaddr_ll to;
	memset(&to, 0, sizeof(to));
	to.sll_family = AF_PACKET;
	to.sll_ifindex = (int)if_nametoindex(c->ifname);
	to.sll_halen = 6;
	memcpy(to.sll_addr, c->dst_mac, 6);
	if (to.sll_ifindex == 0) {
		close(s);
		return -ENODEV;
	}
	uint64_t rng = c->seed ? c->seed : 0x2545f4914f6cdd1dull;
	static __thread uint8_t frame[1600];
	uint64_t n = 0;
	uint32_t kinds = c->kinds ? c->kinds : (1u << FLOOD__COUNT) - 1;
	unsigned kind = FLOOD__COUNT - 1;
	if ((kinds & ((1u << FLOOD__COUNT) - 1)) == 0) {
		close(s);
		return -EINVAL;
	}
	while (!*c->stop) {
		do /* next kind in the rotation */
			kind = (kind + 1) % FLOOD__COUNT;
		while (!(kinds & (1u << kind)));
		size_t len = fl_build(frame, kind, c, &rng, n);
		if (c->may_send) {
			while (!c->may_send(c->arg)) {
				if (*c->stop)
					goto out;
				sched_yield();
			}
		}
		/* once allowed, the packet is sent (retried while the socket is busy) */
		while (sendto(s, frame, len, 0, (struct sockaddr *)&to, sizeof(to)) != (ssize_t)len) {
			st->send_errors++;
			sched_yield();
		}
		st->sent[kind]++;
		__atomic_store_n(&st->total, st->total + 1, __ATOMIC_RELAXED);
		n++;
	}
out:
	close(s);
	return 0;
}
