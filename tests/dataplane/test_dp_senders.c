/* Captured ffmpeg and GStreamer RTP streams (tests/dataplane/fixtures) replayed through the
 * data plane's poll loop: every frame arrives complete, raw frames byte-identical to the
 * source, JPEG frames decoding close to it; also with each frame's packets reversed and
 * duplicated. */
#include <math.h>
#include <turbojpeg.h>

#include "pcap_read.h"
#include "test_dp_fixture.h"

/* ---- stock senders: captured ffmpeg / GStreamer streams through the poll loop -------------- */
struct sender {
	const char *name;
	int jpeg;
	uint8_t format; /* raw: DP_FRAME_RAW*; jpeg: 420 or 422 */
	uint16_t w, h;
	unsigned frames;
};

static const struct sender senders[] = {
	{"ffmpeg_mjpeg", 1, 42, 320, 240, 5},
	{"gst_jpeg420", 1, 42, 160, 120, 4},
	{"gst_jpeg422", 1, 22, 160, 120, 4},
	{"gst_raw420", 0, DP_FRAME_RAW420, 160, 120, 4},
	{"gst_raw422", 0, DP_FRAME_RAW422, 160, 120, 4},
	{"gst_rawrgb", 0, DP_FRAME_RAWRGB, 160, 120, 4},
};

static uint8_t *read_all(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
	if (b && fread(b, 1, (size_t)n, fp) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(fp);
	*len = (size_t)n;
	return b;
}

static double psnr_y(const uint8_t *a, const uint8_t *b, size_t n)
{
	double se = 0;
	for (size_t i = 0; i < n; i++)
		se += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
	return se == 0 ? 99.0 : 10.0 * log10(255.0 * 255.0 * (double)n / se);
}

/* Checks one delivered frame against reference frame i. */
static int sender_frame_ok(struct fx *f, const struct sender *sd, const struct dp_frame *d,
			   const uint8_t *ref, size_t ref_len, unsigned i)
{
	const uint8_t *img = gpu_staging_slot(f->st, d->slot) + d->offset;
	size_t ysz = (size_t)sd->w * sd->h;
	if (d->width != sd->w || d->height != sd->h) {
		fprintf(stderr, "%s frame %u: %ux%u\n", sd->name, i, d->width, d->height);
		return 0;
	}
	if (!sd->jpeg) {
		if ((size_t)(i + 1) * d->len > ref_len || memcmp(img, ref + (size_t)i * d->len, d->len)) {
			fprintf(stderr, "%s frame %u differs from the source\n", sd->name, i);
			return 0;
		}
		return 1;
	}
	size_t fsz = sd->format == 42 ? ysz * 3 / 2 : ysz * 2;
	if ((size_t)(i + 1) * fsz > ref_len)
		return 0;
	tjhandle tj = tjInitDecompress();
	int w, h, sub, cs;
	uint8_t *yuv = malloc(fsz * 2);
	int ok = tj && yuv &&
		 tjDecompressHeader3(tj, img, d->len, &w, &h, &sub, &cs) == 0 && w == sd->w &&
		 h == sd->h && tjDecompressToYUV2(tj, img, d->len, yuv, w, 1, h, 0) == 0;
	double q = ok ? psnr_y(yuv, ref + (size_t)i * fsz, ysz) : 0;
	if (!ok || q < 30.0) {
		fprintf(stderr, "%s frame %u: decode %s, PSNR %.1f dB\n", sd->name, i,
			ok ? "ok" : tjGetErrorStr(), q);
		ok = 0;
	}
	free(yuv);
	if (tj)
		tjDestroy(tj);
	return ok;
}

/* Replays a capture (in order, or each frame's packets reversed and sent twice) and checks
 * every frame arrives complete, once, equal to (raw) or decoding close to (JPEG) the source. */
static int replay_sender(const char *name, int reversed)
{
	const struct sender *sd = NULL;
	for (size_t i = 0; i < sizeof(senders) / sizeof(senders[0]); i++)
		if (strcmp(senders[i].name, name) == 0)
			sd = &senders[i];
	const char *dir = getenv("SHOAL_FIXTURES");
	ST_CHECK(sd != NULL);
	ST_SKIP_IF(!dir, "SHOAL_FIXTURES not set (run through meson test)");
	if (!sd->jpeg) {
		raw_format = sd->format;
		raw_w = sd->w;
		raw_h = sd->h;
	}
	FX_BEGIN(f, NULL, 8, 1 << 20);
	char path[512];
	snprintf(path, sizeof(path), "%s/%s.pcap", dir, name);
	struct tpcap pc;
	ST_CHECK(tpcap_open(&pc, path) == 0);
	snprintf(path, sizeof(path), "%s/%s.%s", dir, name, sd->jpeg ? "yuv" : "raw");
	size_t ref_len;
	uint8_t *ref = read_all(path, &ref_len);
	ST_CHECK(ref != NULL);
	struct tpcap_udp u, pk[4096];
	unsigned npk = 0, got = 0, sent = 0;
	while (tpcap_next_udp(&pc, &u) == 1 && npk < 4096)
		pk[npk++] = u;
	ST_CHECK(npk > sd->frames);
	for (unsigned a = 0; a < npk;) {
		unsigned b = a; /* [a, b): one frame (same RTP timestamp) */
		while (b < npk && pk[b].len >= 8 && get32(pk[b].payload + 4) == get32(pk[a].payload + 4))
			b++;
		if (b == a)
			b = a + 1;
		for (unsigned k = 0; k < b - a; k++) {
			const struct tpcap_udp *p = &pk[reversed ? b - 1 - k : a + k];
			for (int rep = 0; rep < (reversed ? 2 : 1); rep++) {
				inject(&f, mk_udp(&f, CLI_IP, CLI_PORT, MEDIA_PORT, p->payload, p->len));
				sent++;
			}
			if (rte_ring_count(f.rx) > 512)
				poll_all(&f);
			f.now += 1000;
		}
		poll_all(&f);
		struct dp_frame d;
		while (dp_frames_dequeue(f.ctx, &d, 1) == 1) {
			if (got < sd->frames && !sender_frame_ok(&f, sd, &d, ref, ref_len, got))
				return ST_FAIL;
			got++;
			ST_CHECK_EQ(dp_frame_release(f.ctx, &d), 0);
		}
		a = b;
	}
	if (got != sd->frames)
		for (unsigned i = 0; i < DP_CNT__COUNT; i++)
			if (cnt(&f, i))
				fprintf(stderr, "  %s = %llu\n", dp_cnt_name(i),
					(unsigned long long)cnt(&f, i));
	ST_CHECK_EQ(got, sd->frames);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_INCOMPLETE), 0);
	ST_CHECK_EQ(cnt(&f, DP_CNT_DROP_PAYLOAD), 0);
	/* the copy of a frame's last packet sent comes after the frame completed: stale */
	ST_CHECK_EQ(cnt(&f, DP_CNT_DROP_DUP), reversed ? npk - sd->frames : 0);
	ST_CHECK_EQ(cnt(&f, DP_CNT_DROP_STALE), reversed ? sd->frames : 0);
	ST_CHECK_EQ(cnt(&f, DP_CNT_RTP_PKTS), npk);
	ST_CHECK_EQ(sent, reversed ? 2 * npk : npk);
	ST_CHECK_EQ(rte_ring_count(f.tx), 0);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 8);
	free(ref);
	tpcap_close(&pc);
	fx_teardown(&f);
	return ST_PASS;
}

static int test_ffmpeg_mjpeg_served(void) { return replay_sender("ffmpeg_mjpeg", 0); }
static int test_gst_jpeg420_served(void) { return replay_sender("gst_jpeg420", 0); }
static int test_gst_jpeg422_served(void) { return replay_sender("gst_jpeg422", 0); }
static int test_gst_raw420_served_byte_exact(void) { return replay_sender("gst_raw420", 0); }
static int test_gst_raw422_served_byte_exact(void) { return replay_sender("gst_raw422", 0); }
static int test_gst_rawrgb_served_byte_exact(void) { return replay_sender("gst_rawrgb", 0); }
static int test_ffmpeg_mjpeg_reversed_duplicated_served(void)
{
	return replay_sender("ffmpeg_mjpeg", 1);
}
static int test_gst_raw420_reversed_duplicated_byte_exact(void)
{
	return replay_sender("gst_raw420", 1);
}

ST_MAIN(ST_CASE(test_ffmpeg_mjpeg_served), ST_CASE(test_gst_jpeg420_served),
	ST_CASE(test_gst_jpeg422_served), ST_CASE(test_gst_raw420_served_byte_exact),
	ST_CASE(test_gst_raw422_served_byte_exact), ST_CASE(test_gst_rawrgb_served_byte_exact),
	ST_CASE(test_ffmpeg_mjpeg_reversed_duplicated_served),
	ST_CASE(test_gst_raw420_reversed_duplicated_byte_exact))
