/* Device discovery in a build without the CUDA toolchain: there is never a device. */
#include <errno.h>
#include <stdio.h>

#include "gpu/gpu.h"

int gpu_cuda_built(void) { return 0; }

int gpu_cuda_device_count(char *why, size_t why_len)
{
	if (why)
		snprintf(why, why_len, "no CUDA device: this build has no CUDA backend (-Dcuda=disabled "
					"or nvcc/cuDNN not found)");
	return 0;
}

int gpu_cuda_device_info(int idx, struct gpu_device_info *info)
{
	(void)idx;
	(void)info;
	return -ENODEV;
}

int gpu_cuda_selftest(int idx, size_t n, char *why, size_t why_len)
{
	(void)idx;
	(void)n;
	gpu_cuda_device_count(why, why_len);
	return -ENODEV;
}

struct gpu_backend *gpu_backend_cuda_create(int device, int fp16, char *err, size_t err_len)
{
	(void)device;
	(void)fp16;
	gpu_cuda_device_count(err, err_len);
	return NULL;
}
