/* flood_gen — malformed-packet generator for the data plane's kernel tests. It writes whole
 * Ethernet frames on an AF_PACKET socket (so it can lie in any header: IPv4 checksum, lengths,
 * fragments), one kind after the other in a fixed rotation, and counts what it sent by kind.
 * Every kind except FLOOD_UNKNOWN_SSRC is built so that the server must drop it under exactly
 * one counter (see the table in test_dp_kernel.c). Call it from a thread that already lives in
 * the namespace owning the interface. */
#ifndef SHOAL_TESTS_FLOOD_GEN_H
#define SHOAL_TESTS_FLOOD_GEN_H

#include <stdint.h>

enum flood_kind {
	FLOOD_RANDOM_UDP,    /* random bytes of random length (RTP version never 2) to the media port */
	FLOOD_RTP_TRUNC,     /* RTP header cut before 12 bytes */
	FLOOD_RTP_CSRC,      /* CSRC count larger than the bytes present */
	FLOOD_RTP_EXT,       /* header extension length past the end */
	FLOOD_RTP_PAD,       /* padding count larger than the payload */
	FLOOD_RTP_PT,        /* well-formed RTP with a payload type that is not served */
	FLOOD_RTCP_LEN,      /* RTCP whose length field runs past the datagram */
	FLOOD_RTCP_APP_NAME, /* RTCP APP with a name that is not shoal's */
	FLOOD_UNKNOWN_SSRC,  /* well-formed RTP/JPEG from SSRCs and ports the server never saw */
	FLOOD_IP_CKSUM,      /* IPv4 header checksum wrong */
	FLOOD_IP_FRAG,       /* IPv4 fragment (MF set, or an offset) */
	FLOOD_IP_LEN,        /* IPv4 total length larger than the frame */
	FLOOD_UDP_LEN,       /* UDP length larger than the IPv4 payload */
	FLOOD_UDP_PORT,      /* UDP to a port the server does not serve */
	FLOOD_RUNT,          /* Ethernet + a cut IPv4 header */
	FLOOD__COUNT
};

const char *flood_kind_name(unsigned kind);

struct flood_cfg {
	const char *ifname;     /* interface to send on (in the caller's namespace) */
	uint8_t dst_mac[6];     /* the server's MAC */
	uint32_t src_ip, dst_ip; /* host byte order */
	uint16_t media_port;    /* RTP; RTCP on media_port + 1 */
	uint16_t port_base;     /* source ports used: port_base .. port_base + 255 */
	unsigned unknown_ssrcs; /* distinct SSRCs FLOOD_UNKNOWN_SSRC cycles through */
	uint64_t seed;
	uint32_t kinds;         /* bit (1u << kind) per kind to send; 0: every kind */
	volatile int *stop;     /* stops when non-zero */
	/* called before each packet; the packet is sent when it returns non-zero, else the
	 * generator yields and asks again (pacing by the caller). NULL: as fast as possible. */
	int (*may_send)(void *arg);
	void *arg;
};

struct flood_stats {
	uint64_t sent[FLOOD__COUNT];
	uint64_t total;
	uint64_t send_errors; /* sendto() refusals (not counted as sent) */
};

/* Sends until *cfg->stop. Returns 0, or -errno when the socket cannot be opened. */
int flood_run(const struct flood_cfg *cfg, struct flood_stats *st);

#endif
