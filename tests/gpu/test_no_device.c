/* Suite fast: "no device" of any kind is reported as a count of 0 with a one-line reason. */
#include "gpu/gpu.h"
#include "harness.h"

static int test_no_device_reason_is_one_line(void)
{
	char why[256] = "";
	int n = gpu_cuda_device_count(why, sizeof why);
	ST_CHECK(n >= 0);
	if (n == 0) {
		ST_CHECK(why[0] != '\0');
		ST_CHECK(strchr(why, '\n') == NULL);
		ST_CHECK(strncmp(why, "no CUDA device", 14) == 0);
	}
	return ST_PASS;
}

ST_MAIN(ST_CASE(test_no_device_reason_is_one_line))
