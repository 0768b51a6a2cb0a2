/* test_senders — replays RTP streams captured from stock senders (ffmpeg, GStreamer; see
 * fixtures/README.md) through the dp_proto codec and compares what it rebuilds with the
 * frames the senders encoded (DESIGN.md §4: stock senders are served unchanged).
 *
 * JPEG (RFC 2435): each frame is reassembled with dp_jpeg_frame_*, decoded with
 * libjpeg-turbo to planar YUV and compared with the source frame: luma PSNR must be at
 * least SENDERS_MIN_PSNR_Y dB and chroma PSNR at least SENDERS_MIN_PSNR_C dB, and the source
 * frame it matches best must be the one with the same index (frames are not swapped).
 * Raw (RFC 4175): each frame is rebuilt with dp_raw_parse + dp_raw_frame_copy and must equal
 * the source frame byte for byte. In both cases the number of frames rebuilt must equal the
 * number the sender sent (fixtures/manifest.txt), every packet's payload type must be the
 * one sent, and consecutive frames' RTP timestamps must step by 9000 (10 fps, 90 kHz).
 *
 * The fixtures directory comes from the SHOAL_FIXTURES environment variable (set by meson).
 */
#include "harness.h"

#include "dataplane/dp_proto.h"
#include "pcap_read.h"

#include <errno.h>
#include <math.h>
#include <turbojpeg.h>

#define SENDERS_MIN_PSNR_Y 30.0 /* dB, decoded luma vs the encoder's input */
#define SENDERS_MIN_PSNR_C 30.0 /* dB, decoded chroma (Cb and Cr together) */
#define SENDERS_TS_STEP 9000u   /* RTP timestamp step: 90 kHz / 10 fps, as captured */
#define SENDERS_MAX_PKTS 4096
#define SENDERS_MAX_FRAMES 64
#define SENDERS_JPEG_CAP (DP_JPEG_HEADERS_MAX + (512u << 10))

/* One line of fixtures/manifest.txt. */
struct fixture {
	char name[64], pcap[128], ref[128], payload[16], format[16];
	unsigned width, height, frames, pt;
	char dir[512];
};

static int fixture_load(const char *name, struct fixture *fx)
{
	const char *dir = getenv("SHOAL_FIXTURES");
	if (!dir || !*dir) {
		fprintf(stderr, "SHOAL_FIXTURES is not set (meson sets it to tests/dataplane/fixtures)\n");
		return -ENOENT;
	}
	char path[600];
	snprintf(path, sizeof path, "%s/manifest.txt", dir);
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -ENOENT;
	}
	char line[512];
	int found = 0;
	while (!found && fgets(line, sizeof line, f)) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		memset(fx, 0, sizeof *fx);
		if (sscanf(line, "%63s %127s %127s %15s %15s %u %u %u %u", fx->name, fx->pcap, fx->ref,
			   fx->payload, fx->format, &fx->width, &fx->height, &fx->frames, &fx->pt) != 9)
			continue;
		found = strcmp(fx->name, name) == 0;
	}
	fclose(f);
	if (!found) {
		fprintf(stderr, "%s: no fixture named %s\n", path, name);
		return -ENOENT;
	}
	snprintf(fx->dir, sizeof fx->dir, "%s", dir);
	return 0;
}

/* Reads a whole file into a malloc'd buffer. */
static uint8_t *file_read(const char *dir, const char *name, size_t *len)
{
	char path[700];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return NULL;
	}
	uint8_t *b = NULL;
	long n;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (b = malloc((size_t)n)) != NULL && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	if (b)
		*len = (size_t)n;
	else
		fprintf(stderr, "%s: cannot read\n", path);
	fclose(f);
	return b;
}

/* The RTP packets of a capture, parsed, in capture order. */
struct capture {
	struct tpcap pcap;
	unsigned n;
	struct dp_rtp_hdr rtp[SENDERS_MAX_PKTS];
	/* frames: packets [first[i], first[i + 1]) share a timestamp and end with a marker */
	unsigned n_frames;
	unsigned first[SENDERS_MAX_FRAMES + 1];
};

/* Loads fx's pcap, parses every RTP header and splits the packets into frames. Checks the
 * payload type, that a frame's packets share the timestamp, that each frame ends with the
 * marker bit and that frames' timestamps step by SENDERS_TS_STEP. */
static int capture_load(const struct fixture *fx, struct capture *c)
{
	char path[700];
	snprintf(path, sizeof path, "%s/%s", fx->dir, fx->pcap);
	c->n = 0;
	c->n_frames = 0;
	if (tpcap_open(&c->pcap, path) != 0) {
		fprintf(stderr, "%s\n", c->pcap.err);
		return -1;
	}
	struct tpcap_udp u;
	int rc;
	int in_frame = 0;
	while ((rc = tpcap_next_udp(&c->pcap, &u)) == 1) {
		if (c->n == SENDERS_MAX_PKTS) {
			fprintf(stderr, "%s: more than %d packets\n", path, SENDERS_MAX_PKTS);
			return -1;
		}
		struct dp_rtp_hdr *h = &c->rtp[c->n];
		int prc = dp_rtp_parse(u.payload, u.len, h);
		if (prc != 0) {
			fprintf(stderr, "%s: packet %u: dp_rtp_parse: %s\n", path, c->n,
				dp_proto_strerror(prc));
			return -1;
		}
		if (h->payload_type != fx->pt) {
			fprintf(stderr, "%s: packet %u: payload type %u, sender used %u\n", path, c->n,
				h->payload_type, fx->pt);
			return -1;
		}
		if (!in_frame) {
			if (c->n_frames == SENDERS_MAX_FRAMES) {
				fprintf(stderr, "%s: more than %d frames\n", path, SENDERS_MAX_FRAMES);
				return -1;
			}
			c->first[c->n_frames++] = c->n;
			in_frame = 1;
		} else if (h->timestamp != c->rtp[c->first[c->n_frames - 1]].timestamp) {
			fprintf(stderr, "%s: packet %u: timestamp changed inside a frame\n", path, c->n);
			return -1;
		}
		if (h->marker)
			in_frame = 0;
		c->n++;
	}
	if (rc < 0) {
		fprintf(stderr, "%s: %s\n", path, c->pcap.err);
		return -1;
	}
	if (in_frame) {
		fprintf(stderr, "%s: last frame has no marker packet\n", path);
		return -1;
	}
	c->first[c->n_frames] = c->n;
	for (unsigned i = 1; i < c->n_frames; i++) {
		uint32_t step = c->rtp[c->first[i]].timestamp - c->rtp[c->first[i - 1]].timestamp;
		if (step != SENDERS_TS_STEP) {
			fprintf(stderr, "%s: frame %u: timestamp step %u, expected %u\n", path, i, step,
				SENDERS_TS_STEP);
			return -1;
		}
	}
	return 0;
}

static double psnr(const uint8_t *a, const uint8_t *b, size_t n)
{
	double se = 0;
	for (size_t i = 0; i < n; i++) {
		double d = (double)a[i] - (double)b[i];
		se += d * d;
	}
	if (se == 0)
		return 99.0;
	return 10.0 * log10(255.0 * 255.0 * (double)n / se);
}

/* Memory of one case; released by scratch_free() whatever the case returned. */
struct scratch {
	struct capture *c;
	struct dp_jpeg_frame *f;
	uint8_t *ref, *buf, *buf2, *yuv;
	tjhandle tj;
};

static int scratch_alloc(struct scratch *s, size_t yuv_len)
{
	s->c = calloc(1, sizeof *s->c);
	s->f = calloc(1, sizeof *s->f);
	s->buf = malloc(SENDERS_JPEG_CAP);
	s->buf2 = malloc(SENDERS_JPEG_CAP);
	s->yuv = malloc(yuv_len ? yuv_len : 1);
	s->tj = tjInitDecompress();
	return s->c && s->f && s->buf && s->buf2 && s->yuv && s->tj ? 0 : -ENOMEM;
}

static void scratch_free(struct scratch *s)
{
	if (s->c)
		tpcap_close(&s->c->pcap);
	free(s->c);
	free(s->f);
	free(s->ref);
	free(s->buf);
	free(s->buf2);
	free(s->yuv);
	if (s->tj)
		tjDestroy(s->tj);
}

/* ---- JPEG (RFC 2435) --------------------------------------------------------------------- */

enum jpeg_order {
	JPEG_IN_ORDER,
	JPEG_REVERSED_WITH_DUPLICATE, /* last packet first, and the second packet added twice */
};

/* Reassembles frame i of c, feeding its packets in the given order, minus packet index
 * `skip` inside the frame (-1: none). Returns 0 and the JFIF image, or the codec's error. */
static int jpeg_rebuild(const struct capture *c, unsigned i, enum jpeg_order order, int skip,
			struct dp_jpeg_frame *f, uint8_t *buf, const uint8_t **jfif, size_t *len)
{
	int rc = dp_jpeg_frame_init(f, buf, SENDERS_JPEG_CAP);
	if (rc != 0)
		return rc;
	unsigned a = c->first[i], n = c->first[i + 1] - a;
	unsigned seq[SENDERS_MAX_PKTS + 1], m = 0;
	for (unsigned k = 0; k < n; k++) {
		if ((int)k == skip)
			continue;
		seq[m++] = order == JPEG_IN_ORDER ? a + k : a + n - 1 - k;
	}
	if (order == JPEG_REVERSED_WITH_DUPLICATE && n > 1)
		seq[m++] = a + n - 2;
	for (unsigned k = 0; k < m; k++) {
		const struct dp_rtp_hdr *r = &c->rtp[seq[k]];
		struct dp_jpeg_hdr h;
		rc = dp_jpeg_parse(r->payload, r->payload_len, &h);
		if (rc != 0) {
			fprintf(stderr, "frame %u packet %u: dp_jpeg_parse: %s\n", i, seq[k] - a,
				dp_proto_strerror(rc));
			return rc;
		}
		rc = dp_jpeg_frame_add(f, &h, r->marker);
		if (rc != 0) {
			fprintf(stderr, "frame %u packet %u: dp_jpeg_frame_add: %s\n", i, seq[k] - a,
				dp_proto_strerror(rc));
			return rc;
		}
	}
	return dp_jpeg_frame_finish(f, jfif, len);
}

/* Checks every packet of the capture carries the RFC 2435 header the sender announced. */
static int jpeg_check_headers(const struct fixture *fx, const struct capture *c)
{
	unsigned want_type = strcmp(fx->format, "420") == 0 ? 1 : 0;
	for (unsigned k = 0; k < c->n; k++) {
		struct dp_jpeg_hdr h;
		int rc = dp_jpeg_parse(c->rtp[k].payload, c->rtp[k].payload_len, &h);
		if (rc != 0) {
			fprintf(stderr, "packet %u: dp_jpeg_parse: %s\n", k, dp_proto_strerror(rc));
			return -1;
		}
		if (h.width != fx->width || h.height != fx->height || (h.type & 63) != want_type) {
			fprintf(stderr, "packet %u: %ux%u type %u, sender sent %ux%u type %u\n", k,
				h.width, h.height, h.type, fx->width, fx->height, want_type);
			return -1;
		}
	}
	return 0;
}

/* Rebuilds and decodes every frame of a JPEG fixture and compares it with the source. */
static int jpeg_case_run(const char *name, struct scratch *s)
{
	struct fixture fx;
	ST_CHECK_EQ(fixture_load(name, &fx), 0);
	ST_CHECK(strcmp(fx.payload, "jpeg") == 0);
	int sub = strcmp(fx.format, "420") == 0 ? TJSAMP_420 : TJSAMP_422;
	size_t ysz = (size_t)fx.width * fx.height;
	size_t csz = sub == TJSAMP_420 ? ysz / 2 : ysz; /* Cb + Cr */
	ST_CHECK_EQ(scratch_alloc(s, ysz + csz), 0);
	struct capture *c = s->c;
	struct dp_jpeg_frame *f = s->f;
	uint8_t *buf = s->buf, *yuv = s->yuv;
	tjhandle tj = s->tj;
	size_t ref_len = 0;
	uint8_t *ref = s->ref = file_read(fx.dir, fx.ref, &ref_len);
	ST_CHECK(ref != NULL);
	ST_CHECK_EQ(ref_len, (size_t)fx.frames * (ysz + csz));
	ST_CHECK_EQ(capture_load(&fx, c), 0);
	ST_CHECK_EQ(jpeg_check_headers(&fx, c), 0);
	ST_CHECK_EQ(c->n_frames, fx.frames);

	for (unsigned i = 0; i < c->n_frames; i++) {
		const uint8_t *jfif;
		size_t len;
		ST_CHECK_EQ(jpeg_rebuild(c, i, JPEG_IN_ORDER, -1, f, buf, &jfif, &len), 0);
		ST_CHECK(dp_jpeg_frame_complete(f) == 1);
		int w, h, ss, cs;
		if (tjDecompressHeader3(tj, jfif, (unsigned long)len, &w, &h, &ss, &cs) != 0) {
			fprintf(stderr, "frame %u: libjpeg-turbo: %s\n", i, tjGetErrorStr2(tj));
			return ST_FAIL;
		}
		ST_CHECK_EQ(w, fx.width);
		ST_CHECK_EQ(h, fx.height);
		ST_CHECK_EQ(ss, sub);
		ST_CHECK_EQ(tjBufSizeYUV2(w, 1, h, ss), ysz + csz);
		if (tjDecompressToYUV2(tj, jfif, (unsigned long)len, yuv, w, 1, h, 0) != 0) {
			fprintf(stderr, "frame %u: libjpeg-turbo: %s\n", i, tjGetErrorStr2(tj));
			return ST_FAIL;
		}
		const uint8_t *src = ref + (size_t)i * (ysz + csz);
		double py = psnr(yuv, src, ysz), pc = psnr(yuv + ysz, src + ysz, csz);
		printf("%s frame %u: %zu JFIF bytes from %u packets, PSNR Y %.2f dB, CbCr %.2f dB\n",
		       name, i, len, c->first[i + 1] - c->first[i], py, pc);
		ST_CHECK(py >= SENDERS_MIN_PSNR_Y);
		ST_CHECK(pc >= SENDERS_MIN_PSNR_C);
		for (unsigned j = 0; j < fx.frames; j++) {
			double pj = psnr(yuv, ref + (size_t)j * (ysz + csz), ysz);
			if (j != i && pj > py) {
				fprintf(stderr, "frame %u matches source frame %u better (%.2f > %.2f dB)\n",
					i, j, pj, py);
				return ST_FAIL;
			}
		}
	}
	return ST_PASS;
}

static int jpeg_case(const char *name)
{
	struct scratch s;
	memset(&s, 0, sizeof s);
	int rc = jpeg_case_run(name, &s);
	scratch_free(&s);
	return rc;
}

static int test_ffmpeg_mjpeg_frames_decode_to_source_psnr(void)
{
	return jpeg_case("ffmpeg_mjpeg");
}

static int test_gst_jpeg420_frames_decode_to_source_psnr(void)
{
	return jpeg_case("gst_jpeg420");
}

static int test_gst_jpeg422_frames_decode_to_source_psnr(void)
{
	return jpeg_case("gst_jpeg422");
}

/* Packets of each frame fed last-to-first with one duplicate must rebuild the very same
 * JFIF bytes as in capture order. */
static int jpeg_reorder_case_run(const char *name, struct scratch *s)
{
	struct fixture fx;
	ST_CHECK_EQ(scratch_alloc(s, 0), 0);
	ST_CHECK_EQ(fixture_load(name, &fx), 0);
	struct capture *c = s->c;
	struct dp_jpeg_frame *f = s->f;
	uint8_t *b1 = s->buf, *b2 = s->buf2;
	ST_CHECK_EQ(capture_load(&fx, c), 0);
	ST_CHECK_EQ(c->n_frames, fx.frames);
	for (unsigned i = 0; i < c->n_frames; i++) {
		const uint8_t *j1, *j2;
		size_t l1, l2;
		ST_CHECK(c->first[i + 1] - c->first[i] >= 3); /* else nothing to reorder */
		ST_CHECK_EQ(jpeg_rebuild(c, i, JPEG_IN_ORDER, -1, f, b1, &j1, &l1), 0);
		uint32_t received = f->received;
		ST_CHECK_EQ(jpeg_rebuild(c, i, JPEG_REVERSED_WITH_DUPLICATE, -1, f, b2, &j2, &l2), 0);
		ST_CHECK_EQ(f->received, received); /* the duplicate is not counted twice */
		ST_CHECK_EQ(l1, l2);
		ST_CHECK_MEM(j1, j2, l1);
	}
	return ST_PASS;
}

static int jpeg_reorder_case(const char *name)
{
	struct scratch s;
	memset(&s, 0, sizeof s);
	int rc = jpeg_reorder_case_run(name, &s);
	scratch_free(&s);
	return rc;
}

static int test_ffmpeg_mjpeg_reversed_duplicated_packets_same_jfif(void)
{
	return jpeg_reorder_case("ffmpeg_mjpeg");
}

static int test_gst_jpeg420_reversed_duplicated_packets_same_jfif(void)
{
	return jpeg_reorder_case("gst_jpeg420");
}

/* A frame missing one middle packet (or its first) is not complete and finish refuses it. */
static int missing_packet_run(const char *name, struct scratch *s)
{
	struct fixture fx;
	ST_CHECK_EQ(scratch_alloc(s, 0), 0);
	ST_CHECK_EQ(fixture_load(name, &fx), 0);
	struct capture *c = s->c;
	struct dp_jpeg_frame *f = s->f;
	uint8_t *buf = s->buf;
	ST_CHECK_EQ(capture_load(&fx, c), 0);
	for (unsigned i = 0; i < c->n_frames; i++) {
		unsigned n = c->first[i + 1] - c->first[i];
		ST_CHECK(n >= 3);
		int skips[2] = {(int)(n / 2), 0};
		for (int k = 0; k < 2; k++) {
			const uint8_t *j;
			size_t l;
			int rc = jpeg_rebuild(c, i, JPEG_IN_ORDER, skips[k], f, buf, &j, &l);
			ST_CHECK(rc < 0);
			ST_CHECK_EQ(dp_jpeg_frame_complete(f), 0);
			if (k == 0) /* middle packet lost: the marker packet still fixes scan_len */
				ST_CHECK_EQ(rc, DP_PROTO_ERR_INCOMPLETE);
		}
	}
	return ST_PASS;
}

static int test_ffmpeg_mjpeg_missing_packet_is_incomplete(void)
{
	struct scratch s;
	memset(&s, 0, sizeof s);
	int rc = missing_packet_run("ffmpeg_mjpeg", &s);
	scratch_free(&s);
	return rc;
}

/* ---- raw video (RFC 4175) ---------------------------------------------------------------- */

static int raw_case_run(const char *name, enum dp_raw_sampling s, struct scratch *m)
{
	struct fixture fx;
	ST_CHECK_EQ(fixture_load(name, &fx), 0);
	ST_CHECK(strcmp(fx.payload, "raw") == 0);
	ssize_t fsz = dp_raw_frame_size(s, fx.width, fx.height);
	ST_CHECK(fsz > 0);
	ST_CHECK_EQ(scratch_alloc(m, (size_t)fsz), 0);
	size_t ref_len = 0;
	uint8_t *ref = m->ref = file_read(fx.dir, fx.ref, &ref_len);
	ST_CHECK(ref != NULL);
	ST_CHECK_EQ(ref_len, (size_t)fx.frames * (size_t)fsz);
	struct capture *c = m->c;
	uint8_t *frame = m->yuv;
	ST_CHECK_EQ(capture_load(&fx, c), 0);
	ST_CHECK_EQ(c->n_frames, fx.frames);

	uint32_t prev_ext = 0;
	unsigned multi_line = 0, split = 0;
	for (unsigned i = 0; i < c->n_frames; i++) {
		memset(frame, 0xa5, (size_t)fsz);
		size_t placed = 0;
		for (unsigned k = c->first[i]; k < c->first[i + 1]; k++) {
			struct dp_raw_hdr h;
			int rc = dp_raw_parse(c->rtp[k].payload, c->rtp[k].payload_len, &h);
			if (rc != 0) {
				fprintf(stderr, "packet %u: dp_raw_parse: %s\n", k, dp_proto_strerror(rc));
				return ST_FAIL;
			}
			/* extended sequence number (RFC 4175 §4.1) advances by one per packet */
			uint32_t ext = (uint32_t)h.ext_seq << 16 | c->rtp[k].seq;
			if (k > 0)
				ST_CHECK_EQ(ext, (uint32_t)(prev_ext + 1));
			prev_ext = ext;
			multi_line += h.n_lines > 1;
			for (unsigned l = 0; l < h.n_lines; l++)
				split += h.lines[l].offset != 0;
			ssize_t n = dp_raw_frame_copy(&h, s, fx.width, fx.height, frame, (size_t)fsz);
			if (n < 0) {
				fprintf(stderr, "packet %u: dp_raw_frame_copy: %s\n", k,
					dp_proto_strerror((int)n));
				return ST_FAIL;
			}
			placed += (size_t)n;
		}
		printf("%s frame %u: %u packets, %zu bytes placed of %zd\n", name, i,
		       c->first[i + 1] - c->first[i], placed, fsz);
		ST_CHECK_EQ(placed, (size_t)fsz);
		ST_CHECK_MEM(frame, ref + (size_t)i * (size_t)fsz, (size_t)fsz);
	}
	/* the capture exercises several lines per packet and lines continued across packets */
	ST_CHECK(multi_line > 0);
	ST_CHECK(split > 0);
	return ST_PASS;
}

static int raw_case(const char *name, enum dp_raw_sampling s)
{
	struct scratch m;
	memset(&m, 0, sizeof m);
	int rc = raw_case_run(name, s, &m);
	scratch_free(&m);
	return rc;
}

static int test_gst_raw420_i420_frames_byte_exact(void)
{
	return raw_case("gst_raw420", DP_RAW_SAMPLING_YCBCR420);
}

static int test_gst_raw422_uyvy_frames_byte_exact(void)
{
	return raw_case("gst_raw422", DP_RAW_SAMPLING_YCBCR422);
}

static int test_gst_rawrgb_rgb24_frames_byte_exact(void)
{
	return raw_case("gst_rawrgb", DP_RAW_SAMPLING_RGB);
}

ST_MAIN(ST_CASE(test_ffmpeg_mjpeg_frames_decode_to_source_psnr),
	ST_CASE(test_gst_jpeg420_frames_decode_to_source_psnr),
	ST_CASE(test_gst_jpeg422_frames_decode_to_source_psnr),
	ST_CASE(test_ffmpeg_mjpeg_reversed_duplicated_packets_same_jfif),
	ST_CASE(test_gst_jpeg420_reversed_duplicated_packets_same_jfif),
	ST_CASE(test_ffmpeg_mjpeg_missing_packet_is_incomplete),
	ST_CASE(test_gst_raw420_i420_frames_byte_exact),
	ST_CASE(test_gst_raw422_uyvy_frames_byte_exact),
	ST_CASE(test_gst_rawrgb_rgb24_frames_byte_exact))
