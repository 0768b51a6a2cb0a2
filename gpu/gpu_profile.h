/* shoal-profile internals (gpu_profile_*.c): not part of the gpu library.
 *
 * gpu_profile_video.c  frames of a video decoded by ffmpeg into packed RGB24 in memory
 * gpu_profile_stats.c  percentiles, monotone repair of a latency table, detection matching
 *                      (F1), the two CSV files
 */
#ifndef SHOAL_GPU_PROFILE_H
#define SHOAL_GPU_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "gpu/gpu.h"

/* ---- video frames -------------------------------------------------------------------------- */
struct gpu_prof_frames {
	int width, height, count;
	uint8_t *rgb; /* count frames of width * height * 3 bytes, back to back */
};

/* Decodes up to max frames of path with ffprobe (size) and ffmpeg (rawvideo rgb24) through
 * popen. 0, or -errno with err filled (one line naming the file). Fewer frames than max when
 * the video is shorter (count >= 1 on success). */
int gpu_prof_frames_read(struct gpu_prof_frames *fr, const char *path, int max, char *err,
			 size_t err_len);
void gpu_prof_frames_free(struct gpu_prof_frames *fr);
/* The staged image of frame i (RGB24). */
struct gpu_image gpu_prof_frame_image(const struct gpu_prof_frames *fr, int i);

/* ---- latency ------------------------------------------------------------------------------- */
/* Nearest-rank percentile (q in 0..1) of n values; sorts v in place. */
double gpu_prof_percentile(double *v, int n, double q);

/* A latency table: n_sizes x max_batch cells, cell (s, b) at [s * max_batch + b - 1]. */
struct gpu_prof_lat {
	int n_sizes, max_batch;
	int *sizes;        /* ascending */
	double *p50, *p99; /* ms */
};

/* Raises values to running maxima so p50 and p99 are each non-decreasing in batch for every
 * size and in size for every batch. Returns the number of cells changed. */
int gpu_prof_lat_make_monotone(struct gpu_prof_lat *t);

/* ---- accuracy ------------------------------------------------------------------------------ */
struct gpu_prof_counts {
	long tp, fp, fn;
};

/* Greedy matching of pred against ref (one frame): predictions best first; each takes the
 * unmatched reference box of its class with the highest IoU when that IoU >= iou_min.
 * Adds matched pairs to tp, unmatched predictions to fp, unmatched references to fn.
 * pred is sorted by score in place. */
void gpu_prof_match(struct gpu_det *pred, int n_pred, const struct gpu_det *ref, int n_ref,
		    float iou_min, struct gpu_prof_counts *c);
/* 2TP / (2TP + FP + FN); 1 when there is nothing at all. */
double gpu_prof_f1(const struct gpu_prof_counts *c);
float gpu_prof_iou(const struct gpu_det *a, const struct gpu_det *b);

/* ---- CSV ------------------------------------------------------------------------------------ */
/* Writes dir/latency.csv: the header line, then `comment` as a '#' line, then
 * `<family>-<size>,<batch>,<p50>,<p99>` rows. 0 or -errno with err filled. */
int gpu_prof_write_latency(const char *dir, const char *family, const struct gpu_prof_lat *t,
			   const char *comment, char *err, size_t err_len);
/* Writes dir/accuracy.csv (`variant,f1`) for n sizes. 0 or -errno with err filled. */
int gpu_prof_write_accuracy(const char *dir, const char *family, const int *sizes,
			    const double *f1, int n, const char *comment, char *err,
			    size_t err_len);
/* mkdir -p. 0 or -errno. */
int gpu_prof_mkdirs(const char *path);

#endif
