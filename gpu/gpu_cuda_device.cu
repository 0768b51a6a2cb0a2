/* CUDA device discovery and a self-test kernel (built only with the CUDA toolchain). */
#include <cuda_runtime.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/gpu.h"

#define GPU_CUDA_CHECK(call, why, why_len)                                                 \
	do {                                                                                    \
		cudaError_t e_ = (call);                                                            \
		if (e_ != cudaSuccess) {                                                            \
			if (why)                                                                        \
				snprintf(why, why_len, "%s:%d: %s: %s (%d)", __FILE__, __LINE__, #call,     \
					 cudaGetErrorString(e_), (int)e_);                                  \
			goto fail;                                                                      \
		}                                                                                   \
	} while (0)

extern "C" int gpu_cuda_built(void) { return 1; }

extern "C" int gpu_cuda_device_count(char *why, size_t why_len)
{
	int n = 0;
	cudaError_t e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess) {
		if (why)
			snprintf(why, why_len, "no CUDA device: %s (error %d)", cudaGetErrorString(e), (int)e);
		return 0;
	}
	if (n <= 0 && why)
		snprintf(why, why_len, "no CUDA device: the driver reports none");
	return n > 0 ? n : 0;
}

extern "C" int gpu_cuda_device_info(int idx, struct gpu_device_info *info)
{
	cudaDeviceProp p;
	memset(info, 0, sizeof *info);
	if (cudaGetDeviceProperties(&p, idx) != cudaSuccess) {
		cudaGetLastError(); /* leave no pending error for the next caller's check */
		return -ENODEV;
	}
	size_t nl = strnlen(p.name, sizeof p.name);
	if (nl >= sizeof info->name)
		nl = sizeof info->name - 1;
	memcpy(info->name, p.name, nl);
	info->sm_major = p.major;
	info->sm_minor = p.minor;
	info->multiprocessors = p.multiProcessorCount;
	info->mem_bytes = p.totalGlobalMem;
	cudaDriverGetVersion(&info->driver_version);
	cudaRuntimeGetVersion(&info->runtime_version);
	return 0;
}

__global__ static void gpu_saxpy_kernel(size_t n, float a, const float *x, float *y)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		y[i] = a * x[i] + y[i];
}

extern "C" int gpu_cuda_selftest(int idx, size_t n, char *why, size_t why_len)
{
	float *hx = NULL, *hy = NULL, *dx = NULL, *dy = NULL;
	const float a = 1.75f;
	int rc = -EIO;
	if (gpu_cuda_device_count(why, why_len) <= idx)
		return -ENODEV;
	GPU_CUDA_CHECK(cudaSetDevice(idx), why, why_len);
	GPU_CUDA_CHECK(cudaMallocHost(&hx, n * sizeof(float)), why, why_len);
	GPU_CUDA_CHECK(cudaMallocHost(&hy, n * sizeof(float)), why, why_len);
	GPU_CUDA_CHECK(cudaMalloc(&dx, n * sizeof(float)), why, why_len);
	GPU_CUDA_CHECK(cudaMalloc(&dy, n * sizeof(float)), why, why_len);
	for (size_t i = 0; i < n; i++) {
		hx[i] = (float)(i % 1000) * 0.001f;
		hy[i] = (float)(i % 7);
	}
	GPU_CUDA_CHECK(cudaMemcpy(dx, hx, n * sizeof(float), cudaMemcpyHostToDevice), why, why_len);
	GPU_CUDA_CHECK(cudaMemcpy(dy, hy, n * sizeof(float), cudaMemcpyHostToDevice), why, why_len);
	cudaGetLastError(); /* errors of earlier calls are not this launch's */
	gpu_saxpy_kernel<<<(unsigned)((n + 255) / 256), 256>>>(n, a, dx, dy);
	GPU_CUDA_CHECK(cudaGetLastError(), why, why_len);
	GPU_CUDA_CHECK(cudaMemcpy(hy, dy, n * sizeof(float), cudaMemcpyDeviceToHost), why, why_len);
	rc = 0;
	for (size_t i = 0; i < n; i++) {
		float want = a * ((float)(i % 1000) * 0.001f) + (float)(i % 7);
		if (fabsf(hy[i] - want) > 1e-5f * (1.0f + fabsf(want))) {
			if (why)
				snprintf(why, why_len, "element %zu: device %g, host %g", i, hy[i], want);
			rc = -EIO;
			break;
		}
	}
fail:
	cudaFree(dx);
	cudaFree(dy);
	cudaFreeHost(hx);
	cudaFreeHost(hy);
	return rc;
}
