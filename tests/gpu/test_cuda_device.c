/* Suite gpu: CUDA device discovery and the build's device code running on a real device. */
#include <errno.h>

#include "gpu/gpu.h"
#include "harness.h"

static int device_or_skip(void)
{
	char why[256] = "";
	int n = gpu_cuda_device_count(why, sizeof why);
	if (n == 0) {
		printf("skip: %s\n", why);
		return ST_SKIP;
	}
	return ST_PASS;
}

static int test_device_info_is_sane(void)
{
	int rc = device_or_skip();
	if (rc != ST_PASS)
		return rc;
	struct gpu_device_info info;
	ST_CHECK_EQ(gpu_cuda_device_info(0, &info), 0);
	printf("device 0: %s, sm_%d%d, %d SMs, %.1f GiB, driver %d, runtime %d\n", info.name,
	       info.sm_major, info.sm_minor, info.multiprocessors,
	       (double)info.mem_bytes / (1u << 30), info.driver_version, info.runtime_version);
	ST_CHECK(info.name[0] != '\0');
	ST_CHECK(info.sm_major >= 5);
	ST_CHECK(info.mem_bytes > (1ull << 30));
	ST_CHECK(info.multiprocessors > 0);
	ST_CHECK_EQ(gpu_cuda_device_info(9999, &info), -ENODEV);
	return ST_PASS;
}

static int test_selftest_kernel_matches_host(void)
{
	int rc = device_or_skip();
	if (rc != ST_PASS)
		return rc;
	char why[256] = "";
	rc = gpu_cuda_selftest(0, (size_t)1 << 22, why, sizeof why);
	if (rc != 0)
		fprintf(stderr, "selftest: %s\n", why);
	ST_CHECK_EQ(rc, 0);
	return ST_PASS;
}

/* Regression: a failed query (bad device index) left a pending runtime error that the
 * self-test's launch check then reported as its own. */
static int test_selftest_after_failed_query(void)
{
	int rc = device_or_skip();
	if (rc != ST_PASS)
		return rc;
	struct gpu_device_info info;
	char why[256] = "";
	ST_CHECK_EQ(gpu_cuda_device_info(9999, &info), -ENODEV);
	rc = gpu_cuda_selftest(0, 1u << 16, why, sizeof why);
	if (rc != 0)
		fprintf(stderr, "selftest: %s\n", why);
	ST_CHECK_EQ(rc, 0);
	return ST_PASS;
}

ST_MAIN(ST_CASE(test_device_info_is_sane), ST_CASE(test_selftest_kernel_matches_host),
	ST_CASE(test_selftest_after_failed_query))
