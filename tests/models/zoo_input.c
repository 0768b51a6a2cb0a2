/* zoo_input FAMILY SIZE OUT.f32 IMAGE...
 *
 * Builds the input tensor of a zoo family (models/zoo/README.md) from real images with the
 * project's own preprocessing (gpu_image_to_tensor: bilinear stretch to SIZE x SIZE, the
 * family's normalisation: nanodet rgb/255, centernet rgb 0..255), one batch item per image,
 * written as raw little-endian float32 N x 3 x SIZE x SIZE — the bytes both runtimes are fed.
 * IMAGE: a JPEG (.jpg/.jpeg, libturbojpeg) or a binary PPM (.ppm, P6, maxval 255).
 * Errors: one line, exit 2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "gpu/gpu.h"

static int fail(const char *what, const char *arg)
{
	fprintf(stderr, "zoo_input: %s%s%s\n", arg ? arg : "", arg ? ": " : "", what);
	return 2;
}

static unsigned char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 20, n = 0;
	unsigned char *buf = malloc(cap);
	while (buf) {
		n += fread(buf + n, 1, cap - n, f);
		if (n < cap)
			break;
		unsigned char *nb = realloc(buf, cap *= 2);
		if (!nb)
			free(buf);
		buf = nb;
	}
	fclose(f);
	*len = n;
	return buf;
}

static unsigned char *load_jpeg(const unsigned char *jpg, size_t n, int *w, int *h)
{
	tjhandle tj = tjInitDecompress();
	int ss, cs;
	unsigned char *rgb = NULL;
	if (tj && !tjDecompressHeader3(tj, jpg, (unsigned long)n, w, h, &ss, &cs)) {
		rgb = malloc((size_t)*w * (size_t)*h * 3);
		if (rgb && tjDecompress2(tj, jpg, (unsigned long)n, rgb, *w, 0, *h, TJPF_RGB, 0)) {
			free(rgb);
			rgb = NULL;
		}
	}
	if (tj)
		tjDestroy(tj);
	return rgb;
}

/* P6 with one whitespace after maxval; comments are not supported (ffmpeg writes none). */
static unsigned char *load_ppm(const unsigned char *b, size_t n, int *w, int *h)
{
	int maxval, off = 0;
	char head[64];
	size_t k = n < sizeof head - 1 ? n : sizeof head - 1;
	memcpy(head, b, k);
	head[k] = '\0';
	if (sscanf(head, "P6 %d %d %d%n", w, h, &maxval, &off) != 3 || maxval != 255 || *w < 1 ||
	    *h < 1 || *w > 16384 || *h > 16384)
		return NULL;
	size_t sz = (size_t)*w * (size_t)*h * 3;
	if ((size_t)off + 1 + sz > n)
		return NULL;
	unsigned char *rgb = malloc(sz);
	if (rgb)
		memcpy(rgb, b + off + 1, sz);
	return rgb;
}

int main(int argc, char **argv)
{
	if (argc < 5)
		return fail("usage: zoo_input nanodet|centernet SIZE OUT.f32 IMAGE...", NULL);
	int centernet = !strcmp(argv[1], "centernet"), size = atoi(argv[2]);
	if (!centernet && strcmp(argv[1], "nanodet"))
		return fail("unknown family (nanodet or centernet)", argv[1]);
	if (size < 32 || size > 4096 || size % 32)
		return fail("SIZE must be a multiple of 32 in 32..4096", argv[2]);
	float sd = centernet ? 1.0f / 255.0f : 1.0f;
	struct gpu_norm norm = {{0, 0, 0}, {sd, sd, sd}, 0};
	size_t per = (size_t)3 * (size_t)size * (size_t)size;
	float *t = malloc(per * sizeof(float));
	FILE *out = fopen(argv[3], "wb");
	if (!t || !out)
		return fail("cannot write", argv[3]);
	for (int i = 4; i < argc; i++) {
		size_t n = 0;
		int w = 0, h = 0;
		unsigned char *file = read_all(argv[i], &n), *rgb = NULL;
		if (!file)
			return fail("cannot read", argv[i]);
		const char *dot = strrchr(argv[i], '.');
		if (dot && !strcmp(dot, ".ppm"))
			rgb = load_ppm(file, n, &w, &h);
		else
			rgb = load_jpeg(file, n, &w, &h);
		free(file);
		if (!rgb)
			return fail("not a JPEG or binary PPM", argv[i]);
		struct gpu_image im = {GPU_PIX_RGB24, w, h, {rgb}, {w * 3}, 0};
		if (gpu_image_to_tensor(&im, &norm, t, size, size))
			return fail("preprocessing failed", argv[i]);
		if (fwrite(t, sizeof(float), per, out) != per)
			return fail("write failed", argv[3]);
		printf("%s: %dx%d -> item %d\n", argv[i], w, h, i - 4);
		free(rgb);
	}
	free(t);
	if (fclose(out))
		return fail("write failed", argv[3]);
	return 0;
}
