/* Test hook of the CUDA backend (gpu/cuda/), for tests only: C-callable, no CUDA types.
 *
 * gpu_cuda_emulator_create builds the CUDA backend's plans exactly as on a device (shapes,
 * layouts: fp32 NCHW or fp16 NHWC, strides, explicit padding, memory plan, step lists) but
 * runs every step on the host over host memory: the custom kernels' element functions are
 * the device code's own (__host__ __device__), convolutions are direct loops in the backend's
 * layouts, fp16 values are stored as IEEE halves. No CUDA or cuDNN call is made, so the
 * planner is checked against the CPU backend on machines without a device. Slow: small
 * inputs only. NULL with err filled on failure. */
#ifndef SHOAL_GPU_CUDA_TEST_H
#define SHOAL_GPU_CUDA_TEST_H

#include <stddef.h>

#include "gpu/gpu.h"

#ifdef __cplusplus
extern "C" {
#endif

struct gpu_backend *gpu_cuda_emulator_create(int fp16, char *err, size_t err_len);

#ifdef __cplusplus
}
#endif
#endif
