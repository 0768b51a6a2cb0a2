/* pcap_read — a tiny reader for classic pcap files (not pcapng), used by the tests and the
 * fuzz seeder to replay captured RTP streams. It reads the whole file into memory and walks
 * its records, returning the UDP payload of each IPv4/IPv6 UDP datagram (other frames are
 * skipped). Link types: Ethernet (1, what tcpdump writes on Linux lo), Linux cooked
 * (113, 276), raw IP (101, 12, 228, 229) and BSD loopback (0). Micro- and nanosecond
 * variants, either byte order. Fragmented IP datagrams are skipped. */
#ifndef SHOAL_TESTS_PCAP_READ_H
#define SHOAL_TESTS_PCAP_READ_H

#include <stddef.h>
#include <stdint.h>

struct tpcap {
	uint8_t *data; /* whole file */
	size_t len;
	size_t off;    /* next record */
	int swapped;   /* file written in the other byte order */
	int nsec;      /* timestamps in nanoseconds (else microseconds) */
	uint32_t linktype;
	char err[128]; /* last error, one line */
};

struct tpcap_udp {
	const uint8_t *payload; /* view into tpcap.data */
	size_t len;
	uint16_t sport, dport;
	uint64_t ts_ns; /* capture time */
};

/* Opens and checks the file header; 0 or -errno (p->err says why). */
int tpcap_open(struct tpcap *p, const char *path);
/* Next UDP datagram: 1 when produced, 0 at the end of the file, -EINVAL on a bad record. */
int tpcap_next_udp(struct tpcap *p, struct tpcap_udp *out);
void tpcap_close(struct tpcap *p);

#endif
