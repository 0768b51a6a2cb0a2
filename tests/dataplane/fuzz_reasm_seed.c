/* fuzz_reasm_seed — writes the seed corpus of fuzz_reasm (record format in fuzz_reasm.c) into a
 * directory, from the real-sender captures listed in fixtures/manifest.txt:
 *   - NAME-live: a REGISTER giving the raw layout (raw streams), then the stream's packets in
 *     order, 1 ms apart, the consumer taking frames at each marker packet;
 *   - NAME-held: the same packets with the consumer never taking frames (ring and staging
 *     fill up: overload paths), 20 ms apart;
 *   - NAME-two: the first frames from two clients interleaved, then a BYE and a REPORT.
 * A seed stops before it grows past SEED_MAX bytes (run_fuzz.sh's -max_len for fuzz_reasm).
 *
 *   fuzz_reasm_seed FIXTURES_DIR CORPUS_DIR      (CORPUS_DIR must exist)
 */
#include "dataplane/dp_proto.h"
#include "pcap_read.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED_MAX 65536
#define REC_ROOM(len) (3 + (size_t)(len))

struct seed {
	uint8_t b[SEED_MAX];
	size_t n;
};

/* Appends a record; 0, or -1 when it does not fit. */
static int rec(struct seed *s, uint8_t c, const uint8_t *p, size_t len)
{
	if (len > 1500 || s->n + REC_ROOM(len) > sizeof(s->b))
		return -1;
	s->b[s->n++] = c;
	s->b[s->n++] = (uint8_t)(len >> 8);
	s->b[s->n++] = (uint8_t)len;
	memcpy(s->b + s->n, p, len);
	s->n += len;
	return 0;
}

static int seed_write(const char *dir, const char *name, const struct seed *s)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(s->b, 1, s->n, f) != s->n) {
		fprintf(stderr, "fuzz_reasm_seed: %s: %s\n", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	return fclose(f) == 0 ? 0 : -1;
}

/* Record c of an RTCP message from client `who` (mode 2). */
static int rec_app(struct seed *s, unsigned who, const struct dp_app_msg *m)
{
	uint8_t b[1500];
	ssize_t n = dp_app_build(b, sizeof(b), m);
	return n > 0 ? rec(s, (uint8_t)(2 | who << 2), b, (size_t)n) : -1;
}

static int seed_fixture(const char *fixtures, const char *out, const char *name,
			const char *pcap, const char *payload, const char *format, unsigned w,
			unsigned h)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", fixtures, pcap);
	struct tpcap p;
	if (tpcap_open(&p, path) != 0) {
		fprintf(stderr, "fuzz_reasm_seed: %s\n", p.err);
		return -1;
	}
	static struct seed live, held, two;
	live.n = held.n = two.n = 0;
	struct tpcap_udp u;
	struct dp_rtp_hdr hdr;
	uint32_t ssrc = 0;
	unsigned frames = 0;
	int rc, have_ssrc = 0, full_live = 0, full_held = 0, full_two = 0;
	while ((rc = tpcap_next_udp(&p, &u)) == 1) {
		if (dp_rtp_parse(u.payload, u.len, &hdr) != 0)
			continue;
		if (!have_ssrc) {
			have_ssrc = 1;
			ssrc = hdr.ssrc;
			if (strcmp(payload, "raw") == 0) {
				struct dp_app_msg m;
				memset(&m, 0, sizeof(m));
				m.kind = DP_APP_REGISTER;
				m.ssrc = ssrc;
				m.u.reg.slo_ms = 100;
				m.u.reg.fps_x100 = 1000;
				m.u.reg.media_port = 40000;
				m.u.reg.formats = strcmp(format, "420") == 0   ? DP_APP_FMT_RAW420
						  : strcmp(format, "422") == 0 ? DP_APP_FMT_RAW422
									       : DP_APP_FMT_RAWRGB;
				m.u.reg.n_res = 1;
				m.u.reg.res[0].width = (uint16_t)w;
				m.u.reg.res[0].height = (uint16_t)h;
				if (rec_app(&live, 0, &m) != 0 || rec_app(&held, 0, &m) != 0 ||
				    rec_app(&two, 0, &m) != 0)
					break;
				m.u.reg.media_port = 40002; /* client 2: the other port */
				if (rec_app(&two, 2, &m) != 0)
					break;
			}
		}
		if (!full_live)
			full_live = rec(&live, (uint8_t)(0x20 | (hdr.marker ? 0x80 : 0)), u.payload, u.len);
		if (!full_held)
			full_held = rec(&held, 0x30, u.payload, u.len);
		if (!full_two && frames < 2) /* clients 0 and 2: same address, two ports */
			full_two = rec(&two, 0x10, u.payload, u.len) ||
				   rec(&two, (uint8_t)(0x08 | 0x10 | (hdr.marker ? 0x80 : 0)), u.payload,
				       u.len);
		if (hdr.marker)
			frames++;
	}
	tpcap_close(&p);
	if (rc < 0) {
		fprintf(stderr, "fuzz_reasm_seed: %s: %s\n", path, p.err);
		return -1;
	}
	/* client 0 says BYE, client 2 sends a REPORT */
	uint8_t bye[8] = {0x81, 203, 0, 1};
	bye[4] = (uint8_t)(ssrc >> 24);
	bye[5] = (uint8_t)(ssrc >> 16);
	bye[6] = (uint8_t)(ssrc >> 8);
	bye[7] = (uint8_t)ssrc;
	struct dp_app_msg m;
	memset(&m, 0, sizeof(m));
	m.kind = DP_APP_REPORT;
	m.ssrc = ssrc;
	m.u.report.bw_kbps = 5000;
	m.u.report.rtt_us = 2000;
	if (rec(&two, 0x02 | 0x80, bye, sizeof(bye)) == 0)
		rec_app(&two, 2, &m);
	char out_name[256];
	const struct {
		const char *suffix;
		const struct seed *s;
	} outs[] = {{"live", &live}, {"held", &held}, {"two", &two}};
	for (unsigned i = 0; i < 3; i++) {
		snprintf(out_name, sizeof(out_name), "%s-%s", name, outs[i].suffix);
		if (seed_write(out, out_name, outs[i].s) != 0)
			return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: fuzz_reasm_seed FIXTURES_DIR CORPUS_DIR\n");
		return 2;
	}
	char path[1024], line[512];
	snprintf(path, sizeof(path), "%s/manifest.txt", argv[1]);
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "fuzz_reasm_seed: %s: %s\n", path, strerror(errno));
		return 1;
	}
	unsigned count = 0;
	int rc = 0;
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		char name[64], pcap[128], ref[128], payload[16], format[16];
		unsigned w, h;
		if (line[0] == '#' || sscanf(line, "%63s %127s %127s %15s %15s %u %u", name, pcap, ref,
					     payload, format, &w, &h) != 7)
			continue;
		rc = seed_fixture(argv[1], argv[2], name, pcap, payload, format, w, h);
		count += 3;
	}
	fclose(f);
	if (rc != 0)
		return 1;
	printf("fuzz_reasm_seed: %u seed inputs in %s\n", count, argv[2]);
	return 0;
}
