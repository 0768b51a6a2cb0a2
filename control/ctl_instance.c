/* Instance files for shoal-sched and random instances (ctl.h, "instances"). */
#include "control/ctl.h"
#include "control/ctl_priv.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses a number token; 0 on success. Accepts "nan"/"inf" so the scheduler can judge them. */
static int num(const char *tok, double *out)
{
	char *end;
	if (!tok)
		return -1;
	errno = 0;
	*out = strtod(tok, &end);
	return (end == tok || *end != '\0' || errno == ERANGE) ? -1 : 0;
}

static int inum(const char *tok, long lo, long hi, long *out)
{
	char *end;
	if (!tok)
		return -1;
	errno = 0;
	long v = strtol(tok, &end, 10);
	if (end == tok || *end != '\0' || errno || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int ctl_instance_read(const char *path, struct ctl_profile *p, struct ctl_params *prm,
		      struct ctl_client **clients, int *n, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return ctl_err_set(err, errlen, -errno, "%s: %s", path, strerror(errno));
	int max_batch = 8, explicit_variants = 0, profile_dir = 0, rc = 0, ln = 0, cap = 0;
	char line[4096], dir[2048] = "";
	struct ctl_client *cl = NULL;
	int nc = 0;
	ctl_params_default(prm, 1, max_batch);
	memset(p, 0, sizeof(*p));
	long slots = 1;
	while (fgets(line, sizeof(line), f)) {
		ln++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *tok[2 + CTL_MAX_BATCH + 4];
		int nt = 0;
		for (char *sp, *t = strtok_r(line, " \t\r\n", &sp); t;
		     t = strtok_r(NULL, " \t\r\n", &sp)) {
			if (nt == (int)(sizeof(tok) / sizeof(tok[0]))) {
				rc = ctl_err_set(err, errlen, -EINVAL, "%s:%d: too many fields", path, ln);
				goto out;
			}
			tok[nt++] = t;
		}
		if (nt == 0)
			continue;
		const char *k = tok[0];
		long lv;
		double dv;
		if (!strcmp(k, "slots")) {
			if (nt != 2 || inum(tok[1], 0, 255, &slots))
				goto bad;
		} else if (!strcmp(k, "max_batch")) {
			if (nt != 2 || explicit_variants || inum(tok[1], 1, CTL_MAX_BATCH, &lv))
				goto bad;
			max_batch = (int)lv;
		} else if (!strcmp(k, "response_bytes")) {
			if (nt != 2 || num(tok[1], &dv) || !(dv >= 0) || !isfinite(dv))
				goto bad;
			prm->response_bytes = dv;
		} else if (!strcmp(k, "overhead_ms")) {
			if (nt != 2 || num(tok[1], &dv) || !(dv >= 0) || !isfinite(dv))
				goto bad;
			prm->overhead_ms = dv;
		} else if (!strcmp(k, "seed")) {
			if (nt != 2 || inum(tok[1], 0, 0x7fffffffL, &lv))
				goto bad;
			prm->seed = (uint64_t)lv;
		} else if (!strcmp(k, "profile")) {
			if (nt == 2 && !strcmp(tok[1], "standin")) {
				profile_dir = 0;
			} else if (nt == 3 && !strcmp(tok[1], "dir")) {
				snprintf(dir, sizeof(dir), "%s", tok[2]);
				profile_dir = 1;
			} else {
				goto bad;
			}
		} else if (!strcmp(k, "variant")) {
			if (nt != 4 + max_batch) {
				rc = ctl_err_set(err, errlen, -EINVAL,
					  "%s:%d: variant needs SIZE ACCURACY FRAME_BYTES and %d "
					  "latencies (max_batch), got %d fields",
					  path, ln, max_batch, nt - 1);
				goto out;
			}
			if (p->n_variants >= CTL_MAX_VARIANTS) {
				rc = ctl_err_set(err, errlen, -EINVAL, "%s:%d: more than %d variants", path, ln,
					  CTL_MAX_VARIANTS);
				goto out;
			}
			struct ctl_variant *v = &p->v[p->n_variants];
			if (inum(tok[1], 1, 100000, &lv) || num(tok[2], &v->accuracy) ||
			    num(tok[3], &v->frame_bytes))
				goto bad;
			v->size = (int)lv;
			for (int b = 0; b < max_batch; b++)
				if (num(tok[4 + b], &v->lat_ms[b]))
					goto bad;
			p->n_variants++;
			explicit_variants = 1;
		} else if (!strcmp(k, "client")) {
			if (nt != 6 || inum(tok[1], 0, 0xffffffffL, &lv)) {
				rc = ctl_err_set(err, errlen, -EINVAL,
					  "%s:%d: client needs ID SLO_MS FPS BW_MBPS WIRE_MS", path, ln);
				goto out;
			}
			if (nc == cap) {
				cap = cap ? 2 * cap : 64;
				struct ctl_client *nb = realloc(cl, (size_t)cap * sizeof(*cl));
				if (!nb) {
					rc = ctl_err_set(err, errlen, -ENOMEM, "%s: out of memory", path);
					goto out;
				}
				cl = nb;
			}
			struct ctl_client *c = &cl[nc];
			c->id = (uint32_t)lv;
			if (num(tok[2], &c->slo_ms) || num(tok[3], &c->fps) || num(tok[4], &c->bw_mbps) ||
			    num(tok[5], &c->wire_ms))
				goto bad;
			nc++;
		} else {
			rc = ctl_err_set(err, errlen, -EINVAL, "%s:%d: unknown directive '%s'", path, ln, k);
			goto out;
		}
		continue;
bad:
		rc = ctl_err_set(err, errlen, -EINVAL, "%s:%d: bad value in '%s' line", path, ln, k);
		goto out;
	}
	prm->n_slots = (int)slots;
	prm->max_batch = max_batch;
	if (explicit_variants) {
		p->max_batch = max_batch;
		int r = ctl_profile_check(p, err, errlen);
		if (r) {
			char tmp[300];
			snprintf(tmp, sizeof(tmp), "%s: %s", path, err ? err : "bad profile");
			if (err)
				snprintf(err, errlen, "%s", tmp);
			rc = r;
		}
	} else if (profile_dir) {
		int r = ctl_profile_load(p, dir, max_batch, err, errlen);
		if (r < 0)
			rc = r;
	} else {
		ctl_profile_standin(p, max_batch);
	}
out:
	fclose(f);
	if (rc) {
		free(cl);
		return rc;
	}
	*clients = cl;
	*n = nc;
	return 0;
}

void ctl_instance_random(uint64_t *rng, struct ctl_client *c, int n)
{
	static const double slo[3] = {75, 100, 150}, fps[3] = {10, 15, 25};
	for (int i = 0; i < n; i++) {
		c[i].id = (uint32_t)i;
		c[i].slo_ms = slo[ctl_rng_next(rng) % 3];
		c[i].fps = fps[ctl_rng_next(rng) % 3];
		c[i].bw_mbps = 7.5 + 42.5 * ((double)(ctl_rng_next(rng) >> 11) / 9007199254740992.0);
		c[i].wire_ms = 1.0 + 4.0 * ((double)(ctl_rng_next(rng) >> 11) / 9007199254740992.0);
	}
}
