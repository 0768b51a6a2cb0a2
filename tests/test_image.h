/* Test helper: a JPEG file decoded to packed RGB24 with libjpeg-turbo (link libturbojpeg). */
#ifndef SHOAL_TEST_IMAGE_H
#define SHOAL_TEST_IMAGE_H

#include <stdio.h>
#include <stdlib.h>

#include <turbojpeg.h>

/* Returns a malloc'd w*h*3 RGB image (free it), or NULL when the file is absent or bad. */
static inline unsigned char *test_image_load_rgb(const char *path, int *w, int *h)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	unsigned char *jpg = NULL;
	long n = -1;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (jpg = malloc((size_t)n)) && fread(jpg, 1, (size_t)n, f) != (size_t)n)
		n = -1;
	fclose(f);
	unsigned char *rgb = NULL;
	tjhandle tj = n > 0 && jpg ? tjInitDecompress() : NULL;
	int ss, cs;
	if (tj && !tjDecompressHeader3(tj, jpg, (unsigned long)n, w, h, &ss, &cs)) {
		rgb = malloc((size_t)*w * *h * 3);
		if (rgb && tjDecompress2(tj, jpg, (unsigned long)n, rgb, *w, 0, *h, TJPF_RGB, 0)) {
			free(rgb);
			rgb = NULL;
		}
	}
	if (tj)
		tjDestroy(tj);
	free(jpg);
	return rgb;
}

#endif
