/* Preprocessing (gpu_image_to_tensor): colour conversion of each staging layout, bilinear
 * resize with half-pixel centres, normalisation, channel order, refusals. */
#include <errno.h>
#include <math.h>

#include "gpu/gpu.h"
#include "harness.h"

static const struct gpu_norm unit = {{0, 0, 0}, {1, 1, 1}, 0};

static int near(float a, float b, float tol) { return fabsf(a - b) <= tol; }

static int test_rgb_same_size_is_scaled_copy(void)
{
	const uint8_t rgb[2][3 * 3] = {{0, 10, 20, 30, 40, 50, 60, 70, 80},
				       {90, 100, 110, 120, 130, 140, 150, 160, 255}};
	struct gpu_image im = {GPU_PIX_RGB24, 3, 2, {rgb[0]}, {9}, 0};
	float out[3 * 2 * 3];
	ST_CHECK_EQ(gpu_image_to_tensor(&im, &unit, out, 2, 3), 0);
	for (int c = 0; c < 3; c++)
		for (int y = 0; y < 2; y++)
			for (int x = 0; x < 3; x++)
				ST_CHECK(near(out[(c * 2 + y) * 3 + x], rgb[y][x * 3 + c] / 255.0f, 1e-6f));
	return ST_PASS;
}

/* One colour in I420 over a 4x2 image. */
static int i420_colour(uint8_t y, uint8_t u, uint8_t v, int full, float rgb[3])
{
	uint8_t Y[8], U[2], V[2];
	memset(Y, y, sizeof Y);
	memset(U, u, sizeof U);
	memset(V, v, sizeof V);
	struct gpu_image im = {GPU_PIX_I420, 4, 2, {Y, U, V}, {4, 2, 2}, full};
	float out[3 * 8];
	int rc = gpu_image_to_tensor(&im, &unit, out, 2, 4);
	for (int c = 0; c < 3; c++)
		rgb[c] = out[c * 8 + 5] * 255.0f;
	return rc;
}

static int test_i420_colours_both_ranges(void)
{
	float rgb[3];
	ST_CHECK_EQ(i420_colour(16, 128, 128, 0, rgb), 0); /* video black */
	ST_CHECK(near(rgb[0], 0, 0.5f) && near(rgb[1], 0, 0.5f) && near(rgb[2], 0, 0.5f));
	ST_CHECK_EQ(i420_colour(235, 128, 128, 0, rgb), 0); /* video white */
	ST_CHECK(near(rgb[0], 255, 0.5f) && near(rgb[1], 255, 0.5f) && near(rgb[2], 255, 0.5f));
	ST_CHECK_EQ(i420_colour(81, 90, 240, 0, rgb), 0); /* BT.601 video-range red */
	ST_CHECK(near(rgb[0], 255, 2) && near(rgb[1], 0, 2) && near(rgb[2], 0, 2));
	ST_CHECK_EQ(i420_colour(76, 85, 255, 1, rgb), 0); /* full-range (JFIF) red */
	ST_CHECK(near(rgb[0], 254, 2) && near(rgb[1], 0, 2) && near(rgb[2], 0, 2));
	ST_CHECK_EQ(i420_colour(128, 128, 128, 1, rgb), 0); /* full-range mid grey */
	ST_CHECK(near(rgb[0], 128, 0.5f) && near(rgb[1], 128, 0.5f) && near(rgb[2], 128, 0.5f));
	return ST_PASS;
}

static int test_uyvy_matches_i420(void)
{
	enum { W = 6, H = 4 };
	uint8_t Y[W * H], U[W / 2 * H / 2], V[W / 2 * H / 2], uyvy[H][W * 2];
	for (int i = 0; i < W * H; i++)
		Y[i] = (uint8_t)(20 + i * 9);
	for (int i = 0; i < W / 2 * H / 2; i++)
		U[i] = (uint8_t)(60 + i * 25), V[i] = (uint8_t)(200 - i * 21);
	for (int y = 0; y < H; y++)
		for (int p = 0; p < W / 2; p++) {
			uyvy[y][p * 4 + 0] = U[(y / 2) * (W / 2) + p];
			uyvy[y][p * 4 + 1] = Y[y * W + 2 * p];
			uyvy[y][p * 4 + 2] = V[(y / 2) * (W / 2) + p];
			uyvy[y][p * 4 + 3] = Y[y * W + 2 * p + 1];
		}
	struct gpu_image a = {GPU_PIX_I420, W, H, {Y, U, V}, {W, W / 2, W / 2}, 0};
	struct gpu_image b = {GPU_PIX_UYVY, W, H, {uyvy[0]}, {W * 2}, 0};
	float oa[3 * 5 * 7], ob[3 * 5 * 7];
	ST_CHECK_EQ(gpu_image_to_tensor(&a, &unit, oa, 5, 7), 0);
	ST_CHECK_EQ(gpu_image_to_tensor(&b, &unit, ob, 5, 7), 0);
	ST_CHECK_MEM(oa, ob, sizeof oa);
	return ST_PASS;
}

static int test_resize_is_bilinear_half_pixel(void)
{
	const uint8_t row[4 * 3] = {0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255};
	struct gpu_image im = {GPU_PIX_RGB24, 4, 1, {row}, {12}, 0};
	float out[3 * 2];
	ST_CHECK_EQ(gpu_image_to_tensor(&im, &unit, out, 1, 2), 0);
	/* output x = 0 samples source x = 0.5, output x = 1 samples x = 2.5 */
	ST_CHECK(near(out[0] * 255, 42.5f, 1e-3f));
	ST_CHECK(near(out[1] * 255, 212.5f, 1e-3f));
	float up[3 * 8];
	ST_CHECK_EQ(gpu_image_to_tensor(&im, &unit, up, 1, 8), 0);
	/* upsampling x2: output 0 clamps to source 0, output 3 samples source 1.25 */
	ST_CHECK(near(up[0] * 255, 0, 1e-3f));
	ST_CHECK(near(up[3] * 255, 85 + 0.25f * 85, 1e-3f));
	ST_CHECK(near(up[7] * 255, 255, 1e-3f));
	return ST_PASS;
}

static int test_normalisation_and_bgr_order(void)
{
	const uint8_t px[3] = {255, 0, 51};
	struct gpu_image im = {GPU_PIX_RGB24, 1, 1, {px}, {3}, 0};
	struct gpu_norm n = {{0.5f, 0.25f, 0.1f}, {0.5f, 0.25f, 0.2f}, 1};
	float out[3];
	ST_CHECK_EQ(gpu_image_to_tensor(&im, &n, out, 1, 1), 0);
	/* channel 0 = B (51/255 = 0.2), 1 = G (0), 2 = R (1) */
	ST_CHECK(near(out[0], (0.2f - 0.5f) / 0.5f, 1e-5f));
	ST_CHECK(near(out[1], (0.0f - 0.25f) / 0.25f, 1e-5f));
	ST_CHECK(near(out[2], (1.0f - 0.1f) / 0.2f, 1e-5f));
	return ST_PASS;
}

static int test_rejects_bad_images(void)
{
	uint8_t buf[64] = {0};
	float out[3 * 16];
	struct gpu_image odd = {GPU_PIX_I420, 3, 2, {buf, buf, buf}, {3, 2, 2}, 0};
	ST_CHECK_EQ(gpu_image_to_tensor(&odd, &unit, out, 4, 4), -EINVAL);
	struct gpu_image noplane = {GPU_PIX_I420, 4, 2, {buf, NULL, buf}, {4, 2, 2}, 0};
	ST_CHECK_EQ(gpu_image_to_tensor(&noplane, &unit, out, 4, 4), -EINVAL);
	struct gpu_image narrow = {GPU_PIX_UYVY, 4, 2, {buf}, {6}, 0};
	ST_CHECK_EQ(gpu_image_to_tensor(&narrow, &unit, out, 4, 4), -EINVAL);
	struct gpu_image ok = {GPU_PIX_RGB24, 2, 2, {buf}, {6}, 0};
	ST_CHECK_EQ(gpu_image_to_tensor(&ok, &unit, out, 0, 4), -EINVAL);
	struct gpu_norm zero = {{0, 0, 0}, {1, 0, 1}, 0};
	ST_CHECK_EQ(gpu_image_to_tensor(&ok, &zero, out, 4, 4), -EINVAL);
	ST_CHECK_EQ(gpu_image_to_tensor(&ok, &unit, out, 4, 4), 0);
	return ST_PASS;
}

ST_MAIN(ST_CASE(test_rgb_same_size_is_scaled_copy), ST_CASE(test_i420_colours_both_ranges),
	ST_CASE(test_uyvy_matches_i420), ST_CASE(test_resize_is_bilinear_half_pixel),
	ST_CASE(test_normalisation_and_bgr_order), ST_CASE(test_rejects_bad_images))
