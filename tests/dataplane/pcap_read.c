/* pcap_read — see pcap_read.h. File format: a 24-byte header (magic, version, snaplen,
 * link type) then records of a 16-byte header (seconds, sub-seconds, captured length,
 * original length) followed by the captured bytes. */
#include "pcap_read.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TPCAP_MAGIC_US 0xa1b2c3d4u
#define TPCAP_MAGIC_NS 0xa1b23c4du

static uint32_t rd32(const struct tpcap *p, const uint8_t *b)
{
	uint32_t v;
	memcpy(&v, b, 4);
	return p->swapped ? __builtin_bswap32(v) : v;
}

static uint16_t be16(const uint8_t *b) { return (uint16_t)(b[0] << 8 | b[1]); }

int tpcap_open(struct tpcap *p, const char *path)
{
	memset(p, 0, sizeof *p);
	FILE *f = fopen(path, "rb");
	if (!f) {
		int e = errno;
		snprintf(p->err, sizeof p->err, "%s: %s", path, strerror(e));
		return -e;
	}
	int rc = 0;
	if (fseek(f, 0, SEEK_END) != 0 || (p->len = (size_t)ftell(f), fseek(f, 0, SEEK_SET)) != 0) {
		rc = -EIO;
		goto out;
	}
	p->data = malloc(p->len ? p->len : 1);
	if (!p->data) {
		rc = -ENOMEM;
		goto out;
	}
	if (fread(p->data, 1, p->len, f) != p->len) {
		rc = -EIO;
		goto out;
	}
	if (p->len < 24) {
		rc = -EINVAL;
		goto out;
	}
	uint32_t magic;
	memcpy(&magic, p->data, 4);
	if (magic == TPCAP_MAGIC_US || magic == TPCAP_MAGIC_NS) {
		p->swapped = 0;
		p->nsec = magic == TPCAP_MAGIC_NS;
	} else if (__builtin_bswap32(magic) == TPCAP_MAGIC_US ||
		   __builtin_bswap32(magic) == TPCAP_MAGIC_NS) {
		p->swapped = 1;
		p->nsec = __builtin_bswap32(magic) == TPCAP_MAGIC_NS;
	} else {
		rc = -EINVAL;
		goto out;
	}
	p->linktype = rd32(p, p->data + 20) & 0xffff;
	p->off = 24;
out:
	fclose(f);
	if (rc) {
		if (!p->err[0])
			snprintf(p->err, sizeof p->err, "%s: %s", path,
				 rc == -EINVAL ? "not a classic pcap file" : strerror(-rc));
		free(p->data);
		p->data = NULL;
	}
	return rc;
}

void tpcap_close(struct tpcap *p)
{
	free(p->data);
	p->data = NULL;
}

/* Finds the IP header inside one link-layer frame; returns its offset or -1. */
static long tpcap_ip_offset(const struct tpcap *p, const uint8_t *fr, size_t n)
{
	size_t off;
	uint16_t et;
	switch (p->linktype) {
	case 1: /* Ethernet, with up to two VLAN tags */
		if (n < 14)
			return -1;
		off = 12;
		et = be16(fr + off);
		while ((et == 0x8100 || et == 0x88a8) && n >= off + 6) {
			off += 4;
			et = be16(fr + off);
		}
		return (et == 0x0800 || et == 0x86dd) ? (long)(off + 2) : -1;
	case 113: /* Linux cooked v1: protocol at 14 */
		if (n < 16)
			return -1;
		et = be16(fr + 14);
		return (et == 0x0800 || et == 0x86dd) ? 16 : -1;
	case 276: /* Linux cooked v2: protocol at 0 */
		if (n < 20)
			return -1;
		et = be16(fr);
		return (et == 0x0800 || et == 0x86dd) ? 20 : -1;
	case 0: /* BSD loopback: 4-byte family in host order of the writer */
		return n >= 4 ? 4 : -1;
	case 12: case 101: case 228: case 229: /* raw IP */
		return 0;
	default:
		return -1;
	}
}

/* UDP payload of the IP packet at ip; 1 when found, 0 when not UDP. */
static int tpcap_udp_of(const uint8_t *ip, size_t n, struct tpcap_udp *out)
{
	size_t l4;
	if (n < 1)
		return 0;
	if ((ip[0] >> 4) == 4) {
		if (n < 20)
			return 0;
		size_t ihl = (size_t)(ip[0] & 15) * 4;
		size_t tot = be16(ip + 2);
		if (ihl < 20 || tot < ihl || tot > n || ip[9] != 17)
			return 0;
		if ((be16(ip + 6) & 0x3fff) != 0) /* MF or fragment offset: not reassembled */
			return 0;
		n = tot;
		l4 = ihl;
	} else if ((ip[0] >> 4) == 6) {
		if (n < 40 || ip[6] != 17) /* extension headers are not followed */
			return 0;
		size_t pl = be16(ip + 4);
		if (40 + pl > n)
			return 0;
		n = 40 + pl;
		l4 = 40;
	} else {
		return 0;
	}
	if (n < l4 + 8)
		return 0;
	const uint8_t *u = ip + l4;
	size_t ulen = be16(u + 4);
	if (ulen < 8 || l4 + ulen > n)
		return 0;
	out->sport = be16(u);
	out->dport = be16(u + 2);
	out->payload = u + 8;
	out->len = ulen - 8;
	return 1;
}

int tpcap_next_udp(struct tpcap *p, struct tpcap_udp *out)
{
	while (p->off < p->len) {
		if (p->len - p->off < 16) {
			snprintf(p->err, sizeof p->err, "truncated record header at byte %zu", p->off);
			return -EINVAL;
		}
		const uint8_t *rh = p->data + p->off;
		uint32_t sec = rd32(p, rh), sub = rd32(p, rh + 4), caplen = rd32(p, rh + 8);
		if (caplen > p->len - p->off - 16) {
			snprintf(p->err, sizeof p->err, "record at byte %zu runs past the end", p->off);
			return -EINVAL;
		}
		const uint8_t *fr = rh + 16;
		p->off += 16 + (size_t)caplen;
		long ip = tpcap_ip_offset(p, fr, caplen);
		if (ip < 0 || (size_t)ip >= caplen)
			continue;
		if (tpcap_udp_of(fr + ip, caplen - (size_t)ip, out)) {
			out->ts_ns = (uint64_t)sec * 1000000000u + (uint64_t)sub * (p->nsec ? 1u : 1000u);
			return 1;
		}
	}
	return 0;
}
