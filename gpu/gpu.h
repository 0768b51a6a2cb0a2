/* gpu — inference backends and the executor (DESIGN.md §5, §6, §11.8).
 *
 * This header is the module's only public one. It holds no CUDA types, so CPU-only
 * builds include it unchanged. What lives here today: device discovery. The backend
 * interface (load/configure/close, hot submit/poll) and the executor are added by the
 * inference-engine work.
 */
#ifndef SHOAL_GPU_H
#define SHOAL_GPU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- CUDA device discovery ------------------------------------------------------------- */
struct gpu_device_info {
	char name[128];
	int sm_major, sm_minor;
	int multiprocessors;
	uint64_t mem_bytes;
	int driver_version;  /* e.g. 13000 */
	int runtime_version; /* e.g. 13000 */
};

/* 1 when this build contains the CUDA backend. */
int gpu_cuda_built(void);

/* Number of usable CUDA devices. 0 when there is none for any reason (built without CUDA,
 * no driver, no device, any runtime error: DESIGN.md §10 notes error 35 rather than 100);
 * then why (if not NULL) receives a one-line reason. */
int gpu_cuda_device_count(char *why, size_t why_len);

/* Fills info for device idx; 0 or -ENODEV. */
int gpu_cuda_device_info(int idx, struct gpu_device_info *info);

/* Runs a small kernel (y = a*x + y over n floats) on device idx and checks it against the
 * same arithmetic on the host: proves the device code of this build loads and runs there.
 * Returns 0, -ENODEV, or -EIO with why filled. */
int gpu_cuda_selftest(int idx, size_t n, char *why, size_t why_len);

#ifdef __cplusplus
}
#endif
#endif
