/* CPU backend: instruction-set dispatch, and AVX-512 versions of elementwise kernels (the
 * callers use them only when gpu_cpu_has_avx512() says the machine has AVX-512F). */
#include <immintrin.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/gpu_cpu_priv.h"

/* The CPU's best of AVX-512F, AVX2 + FMA and none, capped by SHOAL_CPU_ISA (read once). */
static int isa_detect(void)
{
	int best = GPU_CPU_ISA_PORTABLE;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f"))
		best = GPU_CPU_ISA_AVX512;
	else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		best = GPU_CPU_ISA_AVX2;
#endif
	const char *cap = getenv("SHOAL_CPU_ISA");
	if (!cap || !*cap)
		return best;
	int want = !strcmp(cap, "avx512") ? GPU_CPU_ISA_AVX512
		   : !strcmp(cap, "avx2") ? GPU_CPU_ISA_AVX2
		   : !strcmp(cap, "portable") ? GPU_CPU_ISA_PORTABLE : -1;
	if (want < 0) {
		fprintf(stderr, "shoal: SHOAL_CPU_ISA='%s' is not avx512, avx2 or portable; ignored\n",
			cap);
		return best;
	}
	return want < best ? want : best;
}

int gpu_cpu_isa(void)
{
	static _Atomic int isa = -1; /* racing first calls compute the same value */
	int v = atomic_load_explicit(&isa, memory_order_relaxed);
	if (v < 0) {
		v = isa_detect();
		atomic_store_explicit(&isa, v, memory_order_relaxed);
	}
	return v;
}

int gpu_cpu_has_avx512(void)
{
	return gpu_cpu_isa() >= GPU_CPU_ISA_AVX512;
}

int gpu_cpu_has_avx2(void)
{
	return gpu_cpu_isa() >= GPU_CPU_ISA_AVX2;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* e^x: x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in two for an exact product), e^r by a
 * degree-6 polynomial (Cephes' expf coefficients, about 1 ulp), times 2^n by scalef.
 * Inputs are clamped to +-88.38, where e^x stays finite. */
__attribute__((target("avx512f"), always_inline)) static inline __m512 exp16(__m512 x)
{
	x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-88.3762626647949f)),
			  _mm512_set1_ps(88.3762626647949f));
	__m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
					_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
	r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
	__m512 p = _mm512_set1_ps(1.9875691500e-4f);
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
	p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
	return _mm512_scalef_ps(p, n);
}

__attribute__((target("avx512f"))) void gpu_cpu_sigmoid_avx512(const float *x, float *y,
							      int64_t n)
{
	__m512 one = _mm512_set1_ps(1.0f);
	for (int64_t i = 0; i < n; i += 16) {
		__mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
		__m512 v = _mm512_maskz_loadu_ps(m, x + i);
		__m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), v));
		_mm512_mask_storeu_ps(y + i, m, _mm512_div_ps(one, _mm512_add_ps(one, e)));
	}
}

__attribute__((target("avx512f"))) void gpu_cpu_hardswish_avx512(const float *x, float *y,
								int64_t n)
{
	__m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
	__m512 six = _mm512_set1_ps(6.0f), half = _mm512_set1_ps(0.5f);
	for (int64_t i = 0; i < n; i += 16) {
		__mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
		__m512 v = _mm512_maskz_loadu_ps(m, x + i);
		__m512 g = _mm512_add_ps(_mm512_div_ps(v, six), half); /* as the scalar loop */
		g = _mm512_min_ps(_mm512_max_ps(g, zero), one);
		_mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(v, g));
	}
}

__attribute__((target("avx512f"))) float gpu_cpu_sum_avx512(const float *x, int64_t n)
{
	__m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
			 _mm512_setzero_ps()};
	int64_t i = 0;
	for (; i + 64 <= n; i += 64)
		for (int k = 0; k < 4; k++)
			acc[k] = _mm512_add_ps(acc[k], _mm512_loadu_ps(x + i + 16 * k));
	for (; i < n; i += 16) {
		__mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
		acc[0] = _mm512_add_ps(acc[0], _mm512_maskz_loadu_ps(m, x + i));
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]),
						  _mm512_add_ps(acc[2], acc[3])));
}

__attribute__((target("avx512f"))) void gpu_cpu_stride2_avx512(const float *x, float *y,
							      int64_t n)
{
	__m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
	for (int64_t i = 0; i < n; i += 16) {
		int64_t cnt = n - i < 16 ? n - i : 16, need = 2 * cnt - 1; /* source floats read */
		__mmask16 m0 = need >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << need) - 1);
		__mmask16 m1 = need > 16 ? (__mmask16)((1u << (need - 16)) - 1) : 0;
		__m512 lo = _mm512_maskz_loadu_ps(m0, x + 2 * i);
		__m512 hi = _mm512_maskz_loadu_ps(m1, x + 2 * i + 16);
		_mm512_mask_storeu_ps(y + i, (__mmask16)((1u << cnt) - 1),
				      _mm512_permutex2var_ps(lo, even, hi));
	}
}
#else
void gpu_cpu_sigmoid_avx512(const float *x, float *y, int64_t n)
{
	(void)x, (void)y, (void)n; /* never called: gpu_cpu_has_avx512() is 0 here */
}

void gpu_cpu_stride2_avx512(const float *x, float *y, int64_t n)
{
	(void)x, (void)y, (void)n; /* never called: gpu_cpu_has_avx512() is 0 here */
}

void gpu_cpu_hardswish_avx512(const float *x, float *y, int64_t n)
{
	(void)x, (void)y, (void)n; /* never called: gpu_cpu_has_avx512() is 0 here */
}

float gpu_cpu_sum_avx512(const float *x, int64_t n)
{
	(void)x, (void)n; /* never called: gpu_cpu_has_avx512() is 0 here */
	return 0.0f;
}
#endif
