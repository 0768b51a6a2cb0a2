/* Preprocessing on the CPU: BT.601 colour conversion, bilinear resize (half-pixel centres)
 * and normalisation into NCHW float planes. The reference for the CUDA kernel. */
#include <errno.h>
#include <math.h>

#include "gpu/gpu.h"

static float clamp255(float v) { return v < 0 ? 0 : v > 255 ? 255 : v; }

/* RGB of source pixel (x, y). */
static void pixel_rgb(const struct gpu_image *im, int x, int y, float rgb[3])
{
	float Y, U, V;
	switch (im->fmt) {
	case GPU_PIX_RGB24: {
		const uint8_t *p = im->plane[0] + (size_t)y * im->stride[0] + (size_t)x * 3;
		rgb[0] = p[0], rgb[1] = p[1], rgb[2] = p[2];
		return;
	}
	case GPU_PIX_UYVY: {
		const uint8_t *p = im->plane[0] + (size_t)y * im->stride[0] + (size_t)(x >> 1) * 4;
		U = p[0], Y = p[1 + 2 * (x & 1)], V = p[2];
		break;
	}
	default:
		Y = im->plane[0][(size_t)y * im->stride[0] + x];
		U = im->plane[1][(size_t)(y >> 1) * im->stride[1] + (x >> 1)];
		V = im->plane[2][(size_t)(y >> 1) * im->stride[2] + (x >> 1)];
		break;
	}
	float d = U - 128.0f, e = V - 128.0f;
	if (im->full_range) {
		rgb[0] = clamp255(Y + 1.402f * e);
		rgb[1] = clamp255(Y - 0.344136f * d - 0.714136f * e);
		rgb[2] = clamp255(Y + 1.772f * d);
	} else {
		float c = 1.164383f * (Y - 16.0f);
		rgb[0] = clamp255(c + 1.596027f * e);
		rgb[1] = clamp255(c - 0.391762f * d - 0.812968f * e);
		rgb[2] = clamp255(c + 2.017232f * d);
	}
}

/* Source index pair and weight of output coordinate o (half-pixel centres, clamped). */
static void src_pos(int o, int in, int out, int *i0, int *i1, float *w)
{
	float c = ((float)o + 0.5f) * (float)in / (float)out - 0.5f;
	c = c < 0 ? 0 : c > (float)(in - 1) ? (float)(in - 1) : c;
	*i0 = (int)floorf(c);
	*i1 = *i0 + 1 < in ? *i0 + 1 : in - 1;
	*w = c - (float)*i0;
}

int gpu_image_to_tensor(const struct gpu_image *img, const struct gpu_norm *norm, float *dst,
			int dst_h, int dst_w)
{
	if (!img || !norm || !dst || dst_h < 1 || dst_w < 1 || img->width < 1 || img->height < 1 ||
	    !img->plane[0] || img->stride[0] < 1)
		return -EINVAL;
	int bpp = img->fmt == GPU_PIX_RGB24 ? 3 : img->fmt == GPU_PIX_UYVY ? 2 : 1;
	if (img->stride[0] < img->width * bpp)
		return -EINVAL;
	if (img->fmt != GPU_PIX_RGB24 && (img->width & 1))
		return -EINVAL;
	if (img->fmt == GPU_PIX_I420 &&
	    ((img->height & 1) || !img->plane[1] || !img->plane[2] ||
	     img->stride[1] < img->width / 2 || img->stride[2] < img->width / 2))
		return -EINVAL;
	float scale[3], bias[3];
	for (int c = 0; c < 3; c++) {
		if (!(norm->std[c] != 0))
			return -EINVAL;
		scale[c] = 1.0f / (255.0f * norm->std[c]);
		bias[c] = -norm->mean[c] / norm->std[c];
	}
	size_t plane = (size_t)dst_h * dst_w;
	for (int oy = 0; oy < dst_h; oy++) {
		int y0, y1;
		float wy;
		src_pos(oy, img->height, dst_h, &y0, &y1, &wy);
		for (int ox = 0; ox < dst_w; ox++) {
			int x0, x1;
			float wx, a[3], b[3], c[3], d[3];
			src_pos(ox, img->width, dst_w, &x0, &x1, &wx);
			pixel_rgb(img, x0, y0, a);
			pixel_rgb(img, x1, y0, b);
			pixel_rgb(img, x0, y1, c);
			pixel_rgb(img, x1, y1, d);
			for (int k = 0; k < 3; k++) {
				float top = a[k] + (b[k] - a[k]) * wx, bot = c[k] + (d[k] - c[k]) * wx;
				float v = top + (bot - top) * wy;
				int ch = norm->bgr ? 2 - k : k;
				dst[(size_t)ch * plane + (size_t)oy * dst_w + ox] = v * scale[ch] + bias[ch];
			}
		}
	}
	return 0;
}
