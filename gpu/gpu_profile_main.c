/* shoal-profile: latency and accuracy profiles of a model family (DESIGN.md §5, §7).
 *
 * For each input size (variant) of one family, sharing the family's weights:
 *   latency   p50/p99 of gpu_variant_run at every batch 1..max over real preprocessed video
 *             frames, made monotone in batch and size → <out>/<family>/<backend>/latency.csv
 *   accuracy  F1 of the variant's detections against the largest variant's on the first
 *             frames of a video (IoU >= 0.5, score >= 0.2)         → .../accuracy.csv
 * then scripts/plot-profile.py draws .../profile.png. The scheduler reads the two CSV files
 * (control/ctl_profile.c). Progress goes to stderr. Exit 0, 1 (a run-time failure, one line),
 * 2 (usage error, one line). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gpu/gpu_profile.h"

#ifndef SHOAL_PLOT_SCRIPT
#define SHOAL_PLOT_SCRIPT "scripts/plot-profile.py"
#endif
#define DEFAULT_VIDEO "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
#define MAX_SIZES     64
#define DET_CAP       1024
#define SCORE_MIN     0.2f
#define IOU_NMS       0.5f
#define IOU_MATCH     0.5f

struct opts {
	const char *family, *model, *backend, *video, *out;
	int threads, max_batch, runs, warmup, frames;
	int latency, accuracy, quiet, plot;
	int n_sizes, sizes[MAX_SIZES];
	char model_buf[4096];
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shoal-profile --family nanodet|centernet [options]\n"
		"\n"
		"Measures every input size (variant) of a zoo family on one backend and writes\n"
		"OUT/FAMILY/BACKEND/latency.csv (variant,batch,p50_ms,p99_ms), accuracy.csv\n"
		"(variant,f1) and profile.png. Variants are named FAMILY-SIZE.\n"
		"\n"
		"  --family F        nanodet or centernet (required)\n"
		"  --model PATH      ONNX file (default $SHOAL_MODEL_DIR/F.onnx, else\n"
		"                    ${XDG_CACHE_HOME:-~/.cache}/shoal/models/onnx/F.onnx)\n"
		"  --backend B       cpu (default) or cuda (device 0, fp16)\n"
		"  --threads N       CPU backend worker threads (default 2)\n"
		"  --sizes LIST      square input sizes, multiples of 32: MIN:MAX:STEP or A,B,C\n"
		"                    (default 128:640:32)\n"
		"  --max-batch N     latency for every batch 1..N (default 16)\n"
		"  --runs N          timed runs per size and batch (default 20)\n"
		"  --warmup N        untimed runs before them (default 2)\n"
		"  --video PATH      video the frames come from (default %s)\n"
		"  --frames N        frames of the video scored for accuracy (default 300)\n"
		"  --out DIR         profile root (default models/profiles)\n"
		"  --latency-only    measure latency only (accuracy.csv untouched)\n"
		"  --accuracy-only   measure accuracy only (latency.csv untouched)\n"
		"  --no-plot         do not run scripts/plot-profile.py\n"
		"  --quiet           no progress lines on stderr\n"
		"  --help            this text\n"
		"\n"
		"Sizes run largest first; each size's accuracy pass runs before its latency. Latency:\n"
		"after the warm-up runs, p50 and p99 (nearest rank) of the timed runs of\n"
		"gpu_variant_run on preprocessed video frames; then each of p50 and p99 is raised to\n"
		"running maxima so it never decreases with batch or size. Accuracy: detections (score\n"
		"> 0.2, per-class NMS at IoU 0.5) scaled back to frame pixels, matched greedily per\n"
		"class (IoU >= 0.5) against the largest size's, F1 = 2TP/(2TP+FP+FN) over all frames.\n"
		"Exit status: 0 done, 1 run-time failure, 2 usage error.\n",
		DEFAULT_VIDEO);
}

/* One line on stderr; returns the usage exit status 2. */
__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "shoal-profile: %s (see --help)\n", msg);
	return 2;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* MIN:MAX:STEP or A,B,C (or one size); every size a multiple of 32 in 32..4096. */
static int parse_sizes(const char *s, struct opts *o)
{
	char buf[512];
	if (strlen(s) >= sizeof buf)
		return -EINVAL;
	strcpy(buf, s);
	o->n_sizes = 0;
	if (strchr(buf, ':')) {
		int v[3];
		char *p = buf;
		for (int i = 0; i < 3; i++) {
			char *c = strchr(p, ':');
			if ((i < 2) != (c != NULL))
				return -EINVAL;
			if (c)
				*c = '\0';
			if (parse_int(p, 1, 4096, &v[i]))
				return -EINVAL;
			p = c ? c + 1 : p;
		}
		if (v[0] > v[1])
			return -EINVAL;
		for (int x = v[0]; x <= v[1]; x += v[2]) {
			if (o->n_sizes == MAX_SIZES)
				return -EINVAL;
			o->sizes[o->n_sizes++] = x;
		}
	} else {
		for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
			if (o->n_sizes == MAX_SIZES || parse_int(tok, 1, 4096, &o->sizes[o->n_sizes]))
				return -EINVAL;
			o->n_sizes++;
		}
	}
	if (o->n_sizes == 0)
		return -EINVAL;
	qsort(o->sizes, (size_t)o->n_sizes, sizeof o->sizes[0], cmp_int);
	for (int i = 0; i < o->n_sizes; i++)
		if (o->sizes[i] % 32 || o->sizes[i] < 32 || (i && o->sizes[i] == o->sizes[i - 1]))
			return -EINVAL;
	return 0;
}

enum { OPT_FAMILY = 256, OPT_MODEL, OPT_BACKEND, OPT_THREADS, OPT_SIZES, OPT_MAXB, OPT_RUNS,
       OPT_WARMUP, OPT_VIDEO, OPT_FRAMES, OPT_OUT, OPT_LAT, OPT_ACC, OPT_NOPLOT, OPT_QUIET };

/* 0 to go on, else the exit status (help: 0 after printing; errors: 2). */
static int parse_args(int argc, char **argv, struct opts *o, int *done)
{
	static const struct option lo[] = {
		{"family", required_argument, NULL, OPT_FAMILY},
		{"model", required_argument, NULL, OPT_MODEL},
		{"backend", required_argument, NULL, OPT_BACKEND},
		{"threads", required_argument, NULL, OPT_THREADS},
		{"sizes", required_argument, NULL, OPT_SIZES},
		{"max-batch", required_argument, NULL, OPT_MAXB},
		{"runs", required_argument, NULL, OPT_RUNS},
		{"warmup", required_argument, NULL, OPT_WARMUP},
		{"video", required_argument, NULL, OPT_VIDEO},
		{"frames", required_argument, NULL, OPT_FRAMES},
		{"out", required_argument, NULL, OPT_OUT},
		{"latency-only", no_argument, NULL, OPT_LAT},
		{"accuracy-only", no_argument, NULL, OPT_ACC},
		{"no-plot", no_argument, NULL, OPT_NOPLOT},
		{"quiet", no_argument, NULL, OPT_QUIET},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int lat_only = 0, acc_only = 0, c;
	*done = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		const char *a = optarg;
		switch (c) {
		case 'h':
			usage(stdout);
			*done = 1;
			return 0;
		case OPT_FAMILY:
			if (strcmp(a, "nanodet") && strcmp(a, "centernet"))
				return usage_error("--family '%s': want nanodet or centernet", a);
			o->family = a;
			break;
		case OPT_MODEL: o->model = a; break;
		case OPT_BACKEND:
			if (strcmp(a, "cpu") && strcmp(a, "cuda"))
				return usage_error("--backend '%s': want cpu or cuda", a);
			o->backend = a;
			break;
		case OPT_THREADS:
			if (parse_int(a, 1, 256, &o->threads))
				return usage_error("--threads '%s': want an integer 1..256", a);
			break;
		case OPT_SIZES:
			if (parse_sizes(a, o))
				return usage_error("--sizes '%s': want MIN:MAX:STEP or A,B,C of distinct "
						   "multiples of 32 in 32..4096 (at most 64)", a);
			break;
		case OPT_MAXB:
			if (parse_int(a, 1, 32, &o->max_batch))
				return usage_error("--max-batch '%s': want an integer 1..32", a);
			break;
		case OPT_RUNS:
			if (parse_int(a, 1, 1000000, &o->runs))
				return usage_error("--runs '%s': want a positive integer", a);
			break;
		case OPT_WARMUP:
			if (parse_int(a, 0, 1000000, &o->warmup))
				return usage_error("--warmup '%s': want an integer >= 0", a);
			break;
		case OPT_VIDEO: o->video = a; break;
		case OPT_FRAMES:
			if (parse_int(a, 1, 100000, &o->frames))
				return usage_error("--frames '%s': want an integer 1..100000", a);
			break;
		case OPT_OUT: o->out = a; break;
		case OPT_LAT: lat_only = 1; break;
		case OPT_ACC: acc_only = 1; break;
		case OPT_NOPLOT: o->plot = 0; break;
		case OPT_QUIET: o->quiet = 1; break;
		case ':':
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!o->family)
		return usage_error("--family is required (nanodet or centernet)");
	if (lat_only && acc_only)
		return usage_error("--latency-only and --accuracy-only exclude each other");
	o->latency = !acc_only;
	o->accuracy = !lat_only;
	if (!o->model) {
		mdl_zoo_path(o->family, o->model_buf, sizeof o->model_buf);
		o->model = o->model_buf;
	}
	return 0;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static const char *hms(double s, char *buf, size_t len)
{
	long t = s > 0 && s < 359999 ? (long)(s + 0.5) : s > 0 ? 359999 : 0;
	if (t >= 3600)
		snprintf(buf, len, "%ldh%02ldm", t / 3600, t / 60 % 60);
	else
		snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
	return buf;
}

/* "shoal-profile ARGS; HOST CPU; DATE" for the CSV comment lines. */
static void provenance(int argc, char **argv, const struct opts *o, char *buf, size_t len)
{
	size_t n = 0;
	for (int i = 0; i < argc && n + 1 < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? " " : "", i ? argv[i] :
				      "shoal-profile");
	char cpu[128] = "unknown CPU", line[256];
	FILE *f = fopen("/proc/cpuinfo", "r");
	while (f && fgets(line, sizeof line, f)) {
		char *c = strchr(line, ':');
		if (!strncmp(line, "model name", 10) && c) {
			snprintf(cpu, sizeof cpu, "%s", c + 2);
			cpu[strcspn(cpu, "\n")] = '\0';
			break;
		}
	}
	if (f)
		fclose(f);
	time_t t = time(NULL);
	struct tm tm;
	char date[32], be[32];
	gmtime_r(&t, &tm);
	strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &tm);
	if (!strcmp(o->backend, "cpu"))
		snprintf(be, sizeof be, "cpu, %d threads", o->threads);
	else
		snprintf(be, sizeof be, "%s", o->backend);
	if (n + 1 < len)
		snprintf(buf + n, len - n, "; backend %s; %s, %ld cores online; %s", be, cpu,
			 sysconf(_SC_NPROCESSORS_ONLN), date);
}

/* The run state of one profile. */
struct prof {
	struct opts *o;
	struct mdl_graph *g;
	struct gpu_backend *be;
	struct gpu_family *fam;
	struct gpu_post post;
	struct gpu_norm norm;
	struct gpu_prof_frames fr;
	struct gpu_prof_lat lat;
	double *f1;
	struct gpu_prof_counts *cnt;
	struct gpu_det **ref; /* reference detections per frame (largest size) */
	int *n_ref;
	struct gpu_det *dets;
	double *samples;
};

static void wait_inputs(struct gpu_variant *v)
{
	while (gpu_variant_inputs_done(v) == 0)
		;
}

/* Latency of every batch at size index si; v holds frames in every batch item. */
static int measure_latency(struct prof *p, struct gpu_variant *v, int si, char *err,
			   size_t err_len)
{
	const struct opts *o = p->o;
	for (int b = 1; b <= o->max_batch; b++) {
		for (int r = 0; r < o->warmup; r++)
			if (gpu_variant_run(v, b)) {
				snprintf(err, err_len, "%s-%d: run at batch %d failed", o->family,
					 o->sizes[si], b);
				return -EIO;
			}
		for (int r = 0; r < o->runs; r++) {
			double t0 = now_s();
			int rc = gpu_variant_run(v, b);
			p->samples[r] = (now_s() - t0) * 1e3;
			if (rc) {
				snprintf(err, err_len, "%s-%d: run at batch %d failed", o->family,
					 o->sizes[si], b);
				return -EIO;
			}
		}
		int i = si * o->max_batch + b - 1;
		p->lat.p50[i] = gpu_prof_percentile(p->samples, o->runs, 0.50);
		p->lat.p99[i] = gpu_prof_percentile(p->samples, o->runs, 0.99);
	}
	return 0;
}

/* Detections of every frame at size index si; the first size measured (the largest) keeps
 * its detections as the reference. */
static int measure_accuracy(struct prof *p, struct gpu_variant *v, int vmax, int si, int is_ref,
			    char *err, size_t err_len)
{
	const struct opts *o = p->o;
	int size = o->sizes[si];
	float sx = (float)p->fr.width / (float)size, sy = (float)p->fr.height / (float)size;
	struct gpu_prof_counts *c = &p->cnt[si];
	memset(c, 0, sizeof *c);
	for (int f0 = 0; f0 < p->fr.count; f0 += vmax) {
		int n = p->fr.count - f0 < vmax ? p->fr.count - f0 : vmax;
		for (int i = 0; i < n; i++) {
			struct gpu_image im = gpu_prof_frame_image(&p->fr, f0 + i);
			if (gpu_variant_input_image(v, i, &im, &p->norm)) {
				snprintf(err, err_len, "%s-%d: preprocessing frame %d failed", o->family,
					 size, f0 + i);
				return -EIO;
			}
		}
		int rc = gpu_variant_run(v, n);
		wait_inputs(v);
		if (rc) {
			snprintf(err, err_len, "%s-%d: run at batch %d failed", o->family, size, n);
			return -EIO;
		}
		for (int i = 0; i < n; i++) {
			int k = gpu_variant_detect(v, &p->post, i, p->dets, DET_CAP);
			if (k < 0) {
				snprintf(err, err_len, "%s-%d: decoding frame %d failed", o->family, size,
					 f0 + i);
				return -EIO;
			}
			for (int d = 0; d < k; d++) {
				p->dets[d].x0 *= sx;
				p->dets[d].x1 *= sx;
				p->dets[d].y0 *= sy;
				p->dets[d].y1 *= sy;
			}
			int f = f0 + i;
			if (is_ref) {
				p->ref[f] = malloc(sizeof(struct gpu_det) * (size_t)(k ? k : 1));
				if (!p->ref[f]) {
					snprintf(err, err_len, "no memory for detections");
					return -ENOMEM;
				}
				memcpy(p->ref[f], p->dets, sizeof(struct gpu_det) * (size_t)k);
				p->n_ref[f] = k;
			}
			gpu_prof_match(p->dets, k, p->ref[f], p->n_ref[f], IOU_MATCH, c);
		}
	}
	p->f1[si] = gpu_prof_f1(c);
	return 0;
}

static void progress(const struct prof *p, int done, int si, double t_start, double work_done,
		     double work_all)
{
	const struct opts *o = p->o;
	char line[512], a[32], b[32];
	size_t n = (size_t)snprintf(line, sizeof line, "[%d/%d] %s-%d:", done, o->n_sizes,
				    o->family, o->sizes[si]);
	if (o->latency) {
		int last = si * o->max_batch + o->max_batch - 1;
		n += (size_t)snprintf(line + n, sizeof line - n, " b1 p50 %.1f p99 %.1f ms",
				      p->lat.p50[si * o->max_batch], p->lat.p99[si * o->max_batch]);
		if (o->max_batch > 1 && n < sizeof line)
			n += (size_t)snprintf(line + n, sizeof line - n, ", b%d p50 %.1f p99 %.1f ms",
					      o->max_batch, p->lat.p50[last], p->lat.p99[last]);
	}
	if (o->accuracy && n < sizeof line) {
		const struct gpu_prof_counts *c = &p->cnt[si];
		n += (size_t)snprintf(line + n, sizeof line - n, "%s F1 %.3f (tp %ld fp %ld fn %ld)",
				      o->latency ? ";" : "", p->f1[si], c->tp, c->fp, c->fn);
	}
	double el = now_s() - t_start;
	if (n < sizeof line)
		snprintf(line + n, sizeof line - n, "; %s elapsed, ETA %s", hms(el, a, sizeof a),
			 hms(el * (work_all - work_done) / work_done, b, sizeof b));
	fprintf(stderr, "%s\n", line);
}

static void plot(const struct opts *o, const char *dir)
{
	const char *script = getenv("SHOAL_PLOT_SCRIPT");
	if (!script || !*script)
		script = SHOAL_PLOT_SCRIPT;
	if (access(script, X_OK) != 0) {
		if (!o->quiet)
			fprintf(stderr, "shoal-profile: no plot: %s not found\n", script);
		return;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		execl(script, script, dir, (char *)NULL);
		_exit(127);
	}
	int st = -1;
	if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "shoal-profile: warning: %s %s failed (status %d); the CSV files are "
			"written\n", script, dir, pid < 0 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		return;
	}
	if (!o->quiet)
		fprintf(stderr, "wrote %s/profile.png\n", dir);
}

static int fail(const char *msg)
{
	fprintf(stderr, "shoal-profile: %s\n", msg);
	return 1;
}

/* Sets up p (graph, backend, family, post-processing, frames, tables). 0 or 1 (printed). */
static int setup(struct prof *p, char *err, size_t err_len)
{
	struct opts *o = p->o;
	struct stat sb;
	if (stat(o->model, &sb) != 0) {
		snprintf(err, err_len, "%s: %s (run scripts/fetch-models.sh or give --model)",
			 o->model, strerror(errno));
		return fail(err);
	}
	p->g = mdl_graph_load(o->model, err, err_len);
	if (!p->g)
		return fail(err);
	if (!strcmp(o->backend, "cuda")) {
		char why[400];
		p->be = gpu_backend_cuda_create(0, 1, why, sizeof why);
		if (!p->be) {
			snprintf(err, err_len, "cuda backend: %s", why);
			return fail(err);
		}
	} else {
		p->be = gpu_backend_cpu_create(o->threads, err, err_len);
		if (!p->be)
			return fail(err);
	}
	p->fam = gpu_family_load(p->be, p->g, err, err_len);
	if (!p->fam)
		return fail(err);
	int centernet = !strcmp(o->family, "centernet");
	if (gpu_post_init(&p->post, p->g, centernet ? GPU_HEAD_CENTERNET : GPU_HEAD_NANODET,
			  SCORE_MIN, IOU_NMS, err, err_len))
		return fail(err);
	/* models/zoo/README.md: nanodet x = rgb / 255, centernet x = rgb (std = 1/255) */
	float sd = centernet ? 1.0f / 255.0f : 1.0f;
	p->norm = (struct gpu_norm){{0, 0, 0}, {sd, sd, sd}, 0};

	int want = o->accuracy ? o->frames : o->max_batch;
	if (!o->quiet)
		fprintf(stderr, "decoding %d frames of %s\n", want, o->video);
	if (gpu_prof_frames_read(&p->fr, o->video, want, err, err_len))
		return fail(err);
	if (o->accuracy && p->fr.count < o->frames && !o->quiet)
		fprintf(stderr, "shoal-profile: %s has only %d frames\n", o->video, p->fr.count);

	size_t cells = (size_t)o->n_sizes * (size_t)o->max_batch;
	p->lat = (struct gpu_prof_lat){o->n_sizes, o->max_batch, o->sizes, calloc(cells, 8),
				       calloc(cells, 8)};
	p->f1 = calloc((size_t)o->n_sizes, sizeof *p->f1);
	p->cnt = calloc((size_t)o->n_sizes, sizeof *p->cnt);
	p->ref = calloc((size_t)p->fr.count, sizeof *p->ref);
	p->n_ref = calloc((size_t)p->fr.count, sizeof *p->n_ref);
	p->dets = malloc(sizeof(struct gpu_det) * DET_CAP);
	p->samples = malloc(sizeof(double) * (size_t)o->runs);
	if (!p->lat.p50 || !p->lat.p99 || !p->f1 || !p->cnt || !p->ref || !p->n_ref || !p->dets ||
	    !p->samples)
		return fail("out of memory");
	return 0;
}

static void teardown(struct prof *p)
{
	for (int f = 0; p->ref && f < p->fr.count; f++)
		free(p->ref[f]);
	free(p->ref);
	free(p->n_ref);
	free(p->dets);
	free(p->samples);
	free(p->f1);
	free(p->cnt);
	free(p->lat.p50);
	free(p->lat.p99);
	gpu_prof_frames_free(&p->fr);
	gpu_family_close(p->fam);
	if (p->be)
		gpu_backend_destroy(p->be);
	if (p->g)
		mdl_graph_destroy(p->g);
}

/* Every size, largest first (its detections are the accuracy reference). 0 or 1. */
static int measure(struct prof *p, char *err, size_t err_len)
{
	const struct opts *o = p->o;
	double work_all = 0, work_done = 0, t0 = now_s();
	for (int s = 0; s < o->n_sizes; s++)
		work_all += (double)o->sizes[s] * o->sizes[s];
	int vmax = o->max_batch;
	for (int k = 0; k < o->n_sizes; k++) {
		int si = o->n_sizes - 1 - k, size = o->sizes[si];
		struct gpu_variant *v = gpu_variant_prepare_image(p->fam, vmax, size, size, err,
								  err_len);
		if (!v)
			return fail(err);
		/* accuracy first: its batches also warm the variant (memory touched, caches) */
		int rc = o->accuracy ? measure_accuracy(p, v, vmax, si, k == 0, err, err_len) : 0;
		if (!rc && o->latency) {
			for (int i = 0; i < vmax && !rc; i++) {
				struct gpu_image im = gpu_prof_frame_image(&p->fr, i % p->fr.count);
				rc = gpu_variant_input_image(v, i, &im, &p->norm);
			}
			wait_inputs(v);
			if (rc)
				snprintf(err, err_len, "%s-%d: preprocessing failed", o->family, size);
			else
				rc = measure_latency(p, v, si, err, err_len);
		}
		gpu_variant_close(v);
		if (rc)
			return fail(err);
		work_done += (double)size * size;
		if (!o->quiet)
			progress(p, k + 1, si, t0, work_done, work_all);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {.backend = "cpu", .video = DEFAULT_VIDEO, .out = "models/profiles",
			 .threads = 2, .max_batch = 16, .runs = 20, .warmup = 2, .frames = 300,
			 .plot = 1};
	int done, rc = parse_args(argc, argv, &o, &done);
	if (rc || done)
		return rc;
	if (o.n_sizes == 0)
		parse_sizes("128:640:32", &o);

	char err[1024], dir[4096], comment[2048];
	if (snprintf(dir, sizeof dir, "%s/%s/%s", o.out, o.family, o.backend) >= (int)sizeof dir)
		return usage_error("--out '%s': path too long", o.out);
	provenance(argc, argv, &o, comment, sizeof comment);

	struct prof p = {.o = &o};
	rc = setup(&p, err, sizeof err);
	if (!rc)
		rc = measure(&p, err, sizeof err);
	int mk = rc ? 0 : gpu_prof_mkdirs(dir);
	if (mk) {
		fprintf(stderr, "shoal-profile: %s: cannot create: %s\n", dir, strerror(-mk));
		rc = 1;
	}
	if (!rc && o.latency) {
		int fixed = gpu_prof_lat_make_monotone(&p.lat);
		if (!o.quiet)
			fprintf(stderr, "latency: %d of %d values raised to make p50/p99 monotone in "
				"batch and size\n", fixed, 2 * o.n_sizes * o.max_batch);
		char c2[2200];
		snprintf(c2, sizeof c2, "%s; %d timed runs after %s%d warm-up per size and batch; "
			 "%d values raised to running maxima (monotone)", comment, o.runs,
			 o.accuracy ? "the size's accuracy pass and " : "", o.warmup, fixed);
		if (gpu_prof_write_latency(dir, o.family, &p.lat, c2, err, sizeof err))
			rc = fail(err);
		else if (!o.quiet)
			fprintf(stderr, "wrote %s/latency.csv\n", dir);
	}
	if (!rc && o.accuracy) {
		char c2[2400];
		snprintf(c2, sizeof c2, "%s; F1 against %s-%d detections (score > %.1f, IoU >= %.1f, "
			 "greedy per class) on %d frames of %s", comment, o.family,
			 o.sizes[o.n_sizes - 1], SCORE_MIN, IOU_MATCH, p.fr.count, o.video);
		if (gpu_prof_write_accuracy(dir, o.family, o.sizes, p.f1, o.n_sizes, c2, err,
					    sizeof err))
			rc = fail(err);
		else if (!o.quiet)
			fprintf(stderr, "wrote %s/accuracy.csv\n", dir);
	}
	teardown(&p);
	if (!rc && o.plot)
		plot(&o, dir);
	return rc;
}
