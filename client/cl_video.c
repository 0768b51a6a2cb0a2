/* cl_video.c — frame source: a video file decoded with libavformat/libavcodec, or a moving
 * test pattern; either way resized to the size asked for with libswscale, output I420. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>

#include "client/cl.h"

struct cl_video {
	int synthetic, loop;
	unsigned width, height; /* source size */
	uint64_t frames;
	/* file */
	AVFormatContext *fmt;
	AVCodecContext *dec;
	AVPacket *pkt;
	int stream;
	int eof;   /* demuxer at its end, decoder being drained */
	/* decoded or generated source frame */
	AVFrame *frame;
	/* scaler, rebuilt when the source format or either size changes */
	struct SwsContext *sws;
};

static void cl_video_log_quiet(void)
{
	av_log_set_level(AV_LOG_ERROR);
}

struct cl_video *cl_video_synthetic(unsigned width, unsigned height)
{
	if (width < 16 || height < 16 || width > 8192 || height > 8192 || (width | height) & 1)
		return NULL;
	struct cl_video *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->synthetic = 1;
	v->width = width;
	v->height = height;
	v->frame = av_frame_alloc();
	if (!v->frame)
		goto fail;
	v->frame->format = AV_PIX_FMT_YUV420P;
	v->frame->width = (int)width;
	v->frame->height = (int)height;
	if (av_frame_get_buffer(v->frame, 0) < 0)
		goto fail;
	return v;
fail:
	cl_video_destroy(v);
	return NULL;
}

struct cl_video *cl_video_open(const char *path, int loop)
{
	cl_video_log_quiet();
	struct cl_video *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->loop = loop;
	int rc = avformat_open_input(&v->fmt, path, NULL, NULL);
	if (rc < 0) {
		fprintf(stderr, "client: cannot open video '%s': %s\n", path, av_err2str(rc));
		goto fail;
	}
	if ((rc = avformat_find_stream_info(v->fmt, NULL)) < 0) {
		fprintf(stderr, "client: video '%s': %s\n", path, av_err2str(rc));
		goto fail;
	}
	const AVCodec *codec = NULL;
	v->stream = av_find_best_stream(v->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
	if (v->stream < 0 || !codec) {
		fprintf(stderr, "client: video '%s': no decodable video stream\n", path);
		goto fail;
	}
	v->dec = avcodec_alloc_context3(codec);
	if (!v->dec ||
	    avcodec_parameters_to_context(v->dec, v->fmt->streams[v->stream]->codecpar) < 0 ||
	    (rc = avcodec_open2(v->dec, codec, NULL)) < 0) {
		fprintf(stderr, "client: video '%s': cannot open its %s decoder\n", path,
			codec->name);
		goto fail;
	}
	v->width = (unsigned)v->dec->width;
	v->height = (unsigned)v->dec->height;
	v->pkt = av_packet_alloc();
	v->frame = av_frame_alloc();
	if (!v->pkt || !v->frame || !v->width || !v->height) {
		fprintf(stderr, "client: video '%s': no frame size\n", path);
		goto fail;
	}
	return v;
fail:
	cl_video_destroy(v);
	return NULL;
}

void cl_video_size(const struct cl_video *v, unsigned *width, unsigned *height)
{
	*width = v->width;
	*height = v->height;
}

uint64_t cl_video_frames(const struct cl_video *v)
{
	return v->frames;
}

void cl_video_destroy(struct cl_video *v)
{
	if (!v)
		return;
	sws_freeContext(v->sws);
	av_frame_free(&v->frame);
	av_packet_free(&v->pkt);
	avcodec_free_context(&v->dec);
	avformat_close_input(&v->fmt);
	free(v);
}

/* Test pattern n: vertical colour bars, a diagonal luma gradient and a bright square that
 * moves across the picture, so consecutive frames differ and JPEG sizes are realistic. */
static void cl_video_pattern(struct cl_video *v)
{
	AVFrame *f = v->frame;
	unsigned w = v->width, h = v->height, n = (unsigned)v->frames;
	static const uint8_t bars[8][3] = {{235, 128, 128}, {210, 16, 146}, {170, 166, 16},
					   {145, 54, 34},   {106, 202, 222}, {81, 90, 240},
					   {41, 240, 110},  {16, 128, 128}};
	unsigned sq = h / 4, sx = (n * 7) % (w - sq), sy = (n * 3) % (h - sq);
	for (unsigned y = 0; y < h; y++) {
		uint8_t *row = f->data[0] + (size_t)y * (size_t)f->linesize[0];
		for (unsigned x = 0; x < w; x++) {
			unsigned b = x * 8 / w;
			int val = y < h / 2 ? bars[b][0] : (int)((x + y + n * 4) * 255 / (w + h));
			if (x >= sx && x < sx + sq && y >= sy && y < sy + sq)
				val = ((x ^ y) & 8) ? 250 : 30;
			row[x] = (uint8_t)(val > 255 ? 255 : val);
		}
	}
	for (unsigned y = 0; y < h / 2; y++) {
		uint8_t *cb = f->data[1] + (size_t)y * (size_t)f->linesize[1];
		uint8_t *cr = f->data[2] + (size_t)y * (size_t)f->linesize[2];
		for (unsigned x = 0; x < w / 2; x++) {
			unsigned b = x * 2 * 8 / w;
			int top = y < h / 4;
			cb[x] = top ? bars[b][1] : (uint8_t)(128 + ((x + n) & 31) - 16);
			cr[x] = top ? bars[b][2] : (uint8_t)(128 + ((y + n) & 31) - 16);
		}
	}
}

/* Decodes the next frame into v->frame: 0, -ENODATA at the end (without loop), -errno. */
static int cl_video_decode(struct cl_video *v)
{
	int rewound = 0;
	for (;;) {
		int rc = avcodec_receive_frame(v->dec, v->frame);
		if (rc == 0)
			return 0;
		if (rc == AVERROR_EOF) {
			if (!v->loop || rewound)
				return -ENODATA;
			/* rewind: seek to the start and reset the decoder */
			if (av_seek_frame(v->fmt, v->stream, 0, AVSEEK_FLAG_BACKWARD) < 0 &&
			    avformat_seek_file(v->fmt, -1, INT64_MIN, 0, 0, 0) < 0)
				return -EIO;
			avcodec_flush_buffers(v->dec);
			v->eof = 0;
			rewound = 1; /* a file with no decodable frame at all must not spin */
			continue;
		}
		if (rc != AVERROR(EAGAIN))
			return -EIO;
		if (v->eof)
			return -EIO; /* draining and still EAGAIN: should not happen */
		rc = av_read_frame(v->fmt, v->pkt);
		if (rc < 0) {
			v->eof = 1;
			avcodec_send_packet(v->dec, NULL); /* drain */
			continue;
		}
		if (v->pkt->stream_index == v->stream) {
			rc = avcodec_send_packet(v->dec, v->pkt);
			if (rc == 0)
				rewound = 0;
		}
		av_packet_unref(v->pkt);
		if (rc < 0 && rc != AVERROR(EAGAIN) && rc != AVERROR_INVALIDDATA)
			return -EIO;
	}
}

int cl_video_next(struct cl_video *v, unsigned width, unsigned height, uint8_t *i420)
{
	if (!v || !i420 || width < 2 || height < 2 || (width | height) & 1 || width > 8192 ||
	    height > 8192)
		return -EINVAL;
	int rc;
	if (v->synthetic) {
		cl_video_pattern(v);
	} else if ((rc = cl_video_decode(v)) != 0) {
		return rc;
	}
	AVFrame *f = v->frame;
	v->sws = sws_getCachedContext(v->sws, f->width, f->height, (enum AVPixelFormat)f->format,
				      (int)width, (int)height, AV_PIX_FMT_YUV420P, SWS_BILINEAR,
				      NULL, NULL, NULL);
	if (!v->sws)
		return -ENOMEM;
	uint8_t *dst[4] = {i420, i420 + (size_t)width * height,
			   i420 + (size_t)width * height + (size_t)(width / 2) * (height / 2), NULL};
	int dst_ls[4] = {(int)width, (int)width / 2, (int)width / 2, 0};
	rc = sws_scale(v->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst,
		       dst_ls);
	if (!v->synthetic)
		av_frame_unref(f);
	if (rc != (int)height)
		return -EIO;
	v->frames++;
	return 0;
}
