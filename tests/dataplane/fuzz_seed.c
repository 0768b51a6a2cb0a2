/* fuzz_seed — writes the seed corpus of fuzz_proto into a directory:
 *   - the UDP payload of every packet of every .pcap file in fixtures/ (real RTP from ffmpeg and
 *     GStreamer: RFC 2435 and RFC 4175);
 *   - each real frame's RTP payloads as one pseudo-packet stream (fuzz_proto.c step 5:
 *     2-byte prefix, bit 15 marker, bits 0..14 length, then the payload);
 *   - RTCP built with the codec: SR with report blocks, RR, BYE with a reason, and every
 *     shoal APP message, alone and as compound packets.
 *
 *   fuzz_seed FIXTURES_DIR CORPUS_DIR      (CORPUS_DIR must exist)
 */
#include "dataplane/dp_proto.h"
#include "pcap_read.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED_STREAM_MAX (1u << 16)

static int seed_write(const char *dir, const char *name, const uint8_t *b, size_t n)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(b, 1, n, f) != n) {
		fprintf(stderr, "fuzz_seed: %s: %s\n", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	return fclose(f) == 0 ? 0 : -1;
}

/* Payloads of one pcap, and its first frames as pseudo-packet streams. */
static int seed_pcap(const char *fixtures, const char *file, const char *out, unsigned *count)
{
	char path[1024], name[512];
	snprintf(path, sizeof path, "%s/%s", fixtures, file);
	struct tpcap p;
	if (tpcap_open(&p, path) != 0) {
		fprintf(stderr, "fuzz_seed: %s\n", p.err);
		return -1;
	}
	static uint8_t stream[SEED_STREAM_MAX];
	size_t slen = 0;
	unsigned n = 0, frames = 0;
	struct tpcap_udp u;
	int rc;
	while ((rc = tpcap_next_udp(&p, &u)) == 1) {
		snprintf(name, sizeof name, "%s-%04u", file, n++);
		if (seed_write(out, name, u.payload, u.len) != 0)
			break;
		(*count)++;
		struct dp_rtp_hdr h;
		if (frames >= 2 || dp_rtp_parse(u.payload, u.len, &h) != 0)
			continue;
		if (h.payload_len < 0x8000 && slen + 2 + h.payload_len <= sizeof stream) {
			stream[slen++] = (uint8_t)((h.marker ? 0x80 : 0) | h.payload_len >> 8);
			stream[slen++] = (uint8_t)h.payload_len;
			memcpy(stream + slen, h.payload, h.payload_len);
			slen += h.payload_len;
		}
		if (h.marker) {
			snprintf(name, sizeof name, "%s-frame%u", file, frames++);
			if (seed_write(out, name, stream, slen) != 0)
				break;
			(*count)++;
			slen = 0;
		}
	}
	if (rc < 0)
		fprintf(stderr, "fuzz_seed: %s: %s\n", path, p.err);
	tpcap_close(&p);
	return rc < 0 ? -1 : 0;
}

static int seed_rtcp(const char *out, unsigned *count)
{
	static uint8_t b[8192];
	static struct dp_rtcp_sr sr;
	static struct dp_rtcp_rr rr;
	static struct dp_rtcp_bye bye;
	static struct dp_app_msg m[5];
	ssize_t n, total = 0;

	sr.ssrc = 0x11223344;
	sr.ntp = 0xe1a2b3c4d5e6f708ull;
	sr.rtp_ts = 90000;
	sr.pkt_count = 35;
	sr.octet_count = 47000;
	sr.n_rb = 2;
	for (unsigned i = 0; i < 2; i++) {
		sr.rb[i].ssrc = 0x55667788 + i;
		sr.rb[i].fraction_lost = 12;
		sr.rb[i].cum_lost = -3;
		sr.rb[i].ext_high_seq = 0x00011000;
		sr.rb[i].jitter = 77;
		sr.rb[i].lsr = 0x12345678;
		sr.rb[i].dlsr = 65536;
	}
	rr.ssrc = 0x99aabbcc;
	rr.n_rb = 1;
	rr.rb[0] = sr.rb[0];
	bye.n_ssrc = 2;
	bye.ssrc[0] = 0x11223344;
	bye.ssrc[1] = 0x55667788;
	bye.reason_len = 8;
	memcpy(bye.reason, "shutdown", 9);

	m[0].kind = DP_APP_REGISTER;
	m[0].u.reg.slo_ms = 100;
	m[0].u.reg.fps_x100 = 3000;
	m[0].u.reg.media_port = 5004;
	m[0].u.reg.formats = DP_APP_FMT_JPEG | DP_APP_FMT_RAW420;
	m[0].u.reg.n_res = 3;
	for (unsigned i = 0; i < 3; i++) {
		m[0].u.reg.res[i].width = (uint16_t)(320 + 160 * i);
		m[0].u.reg.res[i].height = (uint16_t)(240 + 120 * i);
	}
	m[1].kind = DP_APP_REPORT;
	m[1].u.report.bw_kbps = 20000;
	m[1].u.report.rtt_us = 1500;
	m[1].u.report.frames_sent = 1000;
	m[1].u.report.results_rcvd = 990;
	m[2].kind = DP_APP_ASSIGN;
	m[2].u.assign.epoch = 7;
	memcpy(m[2].u.assign.family, "nanodet-m", 9);
	m[2].u.assign.variant = 320;
	m[2].u.assign.width = 640;
	m[2].u.assign.height = 480;
	m[2].u.assign.target_bytes = 40000;
	m[2].u.assign.fps_x100 = 3000;
	m[2].u.assign.format = DP_APP_FMT_JPEG;
	m[2].u.assign.served = 1;
	m[3].kind = DP_APP_RESULT;
	m[3].u.result.rtp_ts = 90000;
	m[3].u.result.variant = 320;
	m[3].u.result.server_us = 8000;
	m[3].u.result.n_det = 10;
	for (unsigned i = 0; i < 10; i++) {
		struct dp_app_det *d = &m[3].u.result.det[i];
		d->cls = (uint16_t)i;
		d->score = (uint16_t)(60000 - 1000 * i);
		d->x = (uint16_t)(10 * i);
		d->y = (uint16_t)(20 * i);
		d->w = 50;
		d->h = 60;
	}
	m[4].kind = DP_APP_DROP;
	m[4].u.drop.rtp_ts = 99000;
	m[4].u.drop.reason = DP_APP_DROP_LATE;
	for (unsigned i = 0; i < 5; i++)
		m[i].ssrc = 0x11223344;

	char name[64];
	/* each APP message alone */
	for (unsigned i = 0; i < 5; i++) {
		n = dp_app_build(b, sizeof b, &m[i]);
		if (n < 0)
			goto fail;
		snprintf(name, sizeof name, "rtcp-app-%u", m[i].kind);
		if (seed_write(out, name, b, (size_t)n) != 0)
			return -1;
		(*count)++;
	}
	/* compound: SR + every APP, then RR + BYE */
	if ((n = dp_rtcp_sr_build(b, sizeof b, &sr)) < 0)
		goto fail;
	total = n;
	for (unsigned i = 0; i < 5; i++) {
		if ((n = dp_app_build(b + total, sizeof b - (size_t)total, &m[i])) < 0)
			goto fail;
		total += n;
	}
	if (seed_write(out, "rtcp-sr-apps", b, (size_t)total) != 0)
		return -1;
	if ((n = dp_rtcp_rr_build(b, sizeof b, &rr)) < 0)
		goto fail;
	total = n;
	if ((n = dp_rtcp_bye_build(b + total, sizeof b - (size_t)total, &bye)) < 0)
		goto fail;
	total += n;
	if (seed_write(out, "rtcp-rr-bye", b, (size_t)total) != 0)
		return -1;
	*count += 2;
	return 0;
fail:
	fprintf(stderr, "fuzz_seed: building RTCP seeds failed: %s\n", dp_proto_strerror((int)n));
	return -1;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: fuzz_seed FIXTURES_DIR CORPUS_DIR\n");
		return 2;
	}
	DIR *d = opendir(argv[1]);
	if (!d) {
		fprintf(stderr, "fuzz_seed: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	unsigned count = 0;
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l > 5 && strcmp(e->d_name + l - 5, ".pcap") == 0)
			rc = seed_pcap(argv[1], e->d_name, argv[2], &count);
	}
	closedir(d);
	if (rc == 0)
		rc = seed_rtcp(argv[2], &count);
	if (rc != 0)
		return 1;
	printf("fuzz_seed: %u seed inputs in %s\n", count, argv[2]);
	return 0;
}
