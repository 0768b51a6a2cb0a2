/* End to end on the CPU backend: darknet's dog.jpg decoded (libturbojpeg), preprocessed
 * (gpu_image_to_tensor), run through each converted zoo family and post-processed
 * (gpu_post_decode). The dog, the bicycle and the vehicle must be found where they are.
 * Exit 77 when the converted models (scripts/fetch-models.sh) or the image are absent. */
#include <stdio.h>
#include <stdlib.h>
#include <turbojpeg.h>

#include "gpu/gpu.h"
#include "harness.h"
#include "test_image.h"

#define DOG_JPG "/usr/share/darknet/data/dog.jpg"

static int run_family(const char *family, enum gpu_head head, int size, float scale255)
{
	char model[512], err[512];
	mdl_zoo_path(family, model, sizeof model);
	FILE *probe = fopen(model, "rb");
	ST_SKIP_IF(!probe, "converted model absent (run scripts/fetch-models.sh)");
	fclose(probe);
	int w, h;
	unsigned char *rgb = test_image_load_rgb(DOG_JPG, &w, &h);
	ST_SKIP_IF(!rgb, DOG_JPG " absent (Debian package darknet)");
	struct mdl_graph *g = mdl_graph_load(model, err, sizeof err);
	struct gpu_backend *be = gpu_backend_cpu_create(2, err, sizeof err);
	struct gpu_family *f = g ? gpu_family_load(be, g, err, sizeof err) : NULL;
	struct gpu_variant *v = f ? gpu_variant_prepare_image(f, 1, size, size, err, sizeof err) : NULL;
	struct gpu_post post;
	if (!v || gpu_post_init(&post, g, head, 0.3f, 0.5f, err, sizeof err)) {
		fprintf(stderr, "%s\n", err);
		ST_CHECK(!"model did not load/prepare");
	}
	struct gpu_image im = {GPU_PIX_RGB24, w, h, {rgb}, {w * 3}, 0};
	/* x = rgb * scale255 / 255: std = 1 / scale255 */
	struct gpu_norm norm = {{0, 0, 0}, {1 / scale255, 1 / scale255, 1 / scale255}, 0};
	ST_CHECK_EQ(gpu_image_to_tensor(&im, &norm, gpu_variant_input(v, 0), size, size), 0);
	ST_CHECK_EQ(gpu_variant_run(v, 1), 0);
	const float *outs[8];
	struct mdl_shape shapes[8];
	for (int i = 0; i < g->n_outputs && i < 8; i++)
		outs[i] = gpu_variant_output(v, i, &shapes[i]);
	struct gpu_det d[64];
	int n = gpu_post_decode(&post, outs, shapes, 0, d, 64);
	int dog = 0, bike = 0, vehicle = 0;
	for (int i = 0; i < n; i++) {
		float x0 = d[i].x0 * w / size, y0 = d[i].y0 * h / size, x1 = d[i].x1 * w / size,
		      y1 = d[i].y1 * h / size, cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
		printf("%s %d: class %d score %.2f box %.0f,%.0f,%.0f,%.0f\n", family, size, d[i].cls,
		       d[i].score, x0, y0, x1, y1);
		dog |= d[i].cls == 16 && cx > 100 && cx < 350 && cy > 250 && cy < 550;
		bike |= d[i].cls == 1 && cx > 150 && cx < 550 && cy > 150 && cy < 450;
		vehicle |= (d[i].cls == 7 || d[i].cls == 2) && cx > 450 && cy < 250;
	}
	gpu_variant_close(v);
	gpu_family_close(f);
	gpu_backend_destroy(be);
	mdl_graph_destroy(g);
	free(rgb);
	ST_CHECK(n > 0);
	ST_CHECK(dog && bike && vehicle);
	return ST_PASS;
}

static int test_nanodet_finds_dog_bicycle_vehicle(void)
{
	return run_family("nanodet", GPU_HEAD_NANODET, 416, 1.0f);
}

static int test_centernet_finds_dog_bicycle_vehicle(void)
{
	return run_family("centernet", GPU_HEAD_CENTERNET, 512, 255.0f);
}

ST_MAIN(ST_CASE(test_nanodet_finds_dog_bicycle_vehicle),
	ST_CASE(test_centernet_finds_dog_bicycle_vehicle))
