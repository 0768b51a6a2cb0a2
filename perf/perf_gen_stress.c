/* shoal-gen --stress: robustness traffic mixed into the real streams, for the data plane's
 * robustness figures. After each real packet, with about 1 chance in 10 per mode: garbage
 * (random bytes whose first byte is never RTP/RTCP version 2, to the media or the RTCP port),
 * malformed (a real packet made to lie: RTP version, truncated RTP or JPEG header, CSRC count,
 * extension or padding past the end; RTCP version, length, APP name or version, truncated),
 * ssrc-flood (the real packet under an SSRC never used before, as from a new client); dup:
 * every GEN_STRESS_DUP_EVERY-th real packet twice; reorder: a real packet swapped with the
 * next one of its frame (1 in 16). Everything is built here byte by byte. */
#include <stdio.h>
#include <string.h>

#include "perf/perf_gen.h"

#define GEN_STRESS_ONE_IN 10
#define GEN_STRESS_SWAP_ONE_IN 16
#define GEN_STRESS_SSRC0 0x80000000u /* flood SSRCs: far from the clients' (PERF_LAT_SSRC0 + i) */

static const struct {
	const char *name;
	unsigned bit;
} perf_gen_stress_names[] = {
	{"garbage", GEN_STRESS_GARBAGE}, {"malformed", GEN_STRESS_MALFORMED},
	{"ssrc-flood", GEN_STRESS_SSRC_FLOOD}, {"dup", GEN_STRESS_DUP},
	{"reorder", GEN_STRESS_REORDER},
};

int perf_gen_stress_parse(const char *s, unsigned *modes)
{
	unsigned m = 0;
	const char *p = s;
	for (;;) {
		size_t len = strcspn(p, ",");
		unsigned k, n = sizeof(perf_gen_stress_names) / sizeof(perf_gen_stress_names[0]);
		for (k = 0; k < n; k++)
			if (strlen(perf_gen_stress_names[k].name) == len &&
			    !strncmp(p, perf_gen_stress_names[k].name, len))
				break;
		if (k == n)
			return -1;
		m |= perf_gen_stress_names[k].bit;
		if (!p[len])
			break;
		p += len + 1;
	}
	*modes = m;
	return 0;
}

void perf_gen_stress_init(struct perf_gen_stress *s, unsigned modes, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	s->modes = modes;
	s->rng = seed * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull;
	if (!s->rng)
		s->rng = 1;
	s->next_ssrc = GEN_STRESS_SSRC0 + (uint32_t)((seed & 0xffff) << 12);
}

static uint64_t perf_gen_stress_rand(struct perf_gen_stress *s)
{
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	return s->rng;
}

static void perf_gen_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void perf_gen_put32(uint8_t *p, uint32_t v)
{
	perf_gen_put16(p, (uint16_t)(v >> 16));
	perf_gen_put16(p + 2, (uint16_t)v);
}

static void perf_gen_fill(struct perf_gen_stress *s, uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)perf_gen_stress_rand(s);
}

/* A version that is not 2 in the top bits of b[0]. */
static uint8_t perf_gen_not_v2(struct perf_gen_stress *s, uint8_t b)
{
	static const uint8_t v[3] = {0x00, 0x40, 0xc0};
	return (uint8_t)((b & 0x3f) | v[perf_gen_stress_rand(s) % 3]);
}

static void perf_gen_garbage(struct perf_gen_stress *s, struct perf_gen_xpkt *x)
{
	x->len = (uint16_t)(1 + perf_gen_stress_rand(s) % 1400);
	perf_gen_fill(s, x->data, x->len);
	x->data[0] = perf_gen_not_v2(s, x->data[0]);
	x->rtcp = (uint8_t)(perf_gen_stress_rand(s) & 1);
	x->flood = 0;
	if (x->rtcp)
		s->garbage_rtcp++;
	else
		s->garbage_media++;
}

/* An RTCP APP "SHOL" REPORT of the client, made to lie in one way. */
static void perf_gen_bad_rtcp(struct perf_gen_stress *s, uint32_t ssrc, struct perf_gen_xpkt *x)
{
	uint8_t *b = x->data;
	memset(b, 0, 32);
	b[0] = 0x80 | 2; /* REPORT */
	b[1] = 204;
	perf_gen_put16(b + 2, 7);
	perf_gen_put32(b + 4, ssrc);
	memcpy(b + 8, "SHOL", 4);
	b[12] = 1;
	x->len = 32;
	switch (perf_gen_stress_rand(s) % 5) {
	case 0: b[0] = perf_gen_not_v2(s, b[0]); break;              /* RTCP version */
	case 1: perf_gen_put16(b + 2, (uint16_t)(8 + perf_gen_stress_rand(s) % 64)); break; /* length */
	case 2: memcpy(b + 8, "XHOL", 4); break;                     /* APP name */
	case 3: b[12] = (uint8_t)(2 + perf_gen_stress_rand(s) % 200); break; /* APP version */
	default: x->len = (uint16_t)(1 + perf_gen_stress_rand(s) % 3); break; /* truncated */
	}
	x->rtcp = 1;
	s->malformed_rtcp++;
}

/* The real RTP packet p of the client, made to lie in one way. */
static void perf_gen_bad_rtp(struct perf_gen_stress *s, const uint8_t *p, uint16_t len,
			     struct perf_gen_xpkt *x)
{
	uint8_t *b = x->data;
	memcpy(b, p, len);
	x->len = len;
	switch (perf_gen_stress_rand(s) % 6) {
	case 0: b[0] = perf_gen_not_v2(s, b[0]); break; /* RTP version */
	case 1: x->len = (uint16_t)(1 + perf_gen_stress_rand(s) % 11); break; /* RTP header */
	case 2: /* 15 CSRCs in a packet too short for them */
		b[0] = (uint8_t)((b[0] & 0xf0) | 0x0f);
		x->len = (uint16_t)(12 + perf_gen_stress_rand(s) % 60);
		break;
	case 3: /* extension running past the end */
		b[0] |= 0x10;
		perf_gen_put16(b + 14, 0xffff);
		x->len = (uint16_t)(16 + perf_gen_stress_rand(s) % 48);
		break;
	case 4: /* padding longer than the packet */
		x->len = (uint16_t)(13 + perf_gen_stress_rand(s) % 100);
		b[0] |= 0x20;
		b[x->len - 1] = (uint8_t)(x->len + perf_gen_stress_rand(s) % (256 - x->len));
		break;
	default: x->len = (uint16_t)(12 + perf_gen_stress_rand(s) % 8); break; /* JPEG header */
	}
	x->rtcp = 0;
	s->malformed_rtp++;
}

unsigned perf_gen_stress_extra(struct perf_gen_stress *s, const uint8_t *p, uint16_t len,
			       uint32_t ssrc, struct perf_gen_xpkt *x)
{
	unsigned n = 0;
	s->real++;
	if ((s->modes & GEN_STRESS_DUP) && s->real % GEN_STRESS_DUP_EVERY == 0) {
		memcpy(x[n].data, p, len);
		x[n].len = len;
		x[n].rtcp = x[n].flood = 0;
		n++;
		s->dup++;
	}
	if ((s->modes & GEN_STRESS_GARBAGE) &&
	    perf_gen_stress_rand(s) % GEN_STRESS_ONE_IN == 0)
		perf_gen_garbage(s, &x[n++]);
	if ((s->modes & GEN_STRESS_MALFORMED) &&
	    perf_gen_stress_rand(s) % GEN_STRESS_ONE_IN == 0) {
		x[n].flood = 0;
		if (perf_gen_stress_rand(s) & 1)
			perf_gen_bad_rtcp(s, ssrc, &x[n++]);
		else
			perf_gen_bad_rtp(s, p, len, &x[n++]);
	}
	if ((s->modes & GEN_STRESS_SSRC_FLOOD) &&
	    perf_gen_stress_rand(s) % GEN_STRESS_ONE_IN == 0) {
		memcpy(x[n].data, p, len);
		x[n].len = len;
		x[n].rtcp = 0;
		x[n].flood = 1;
		uint32_t fs = s->next_ssrc++;
		if (s->next_ssrc < GEN_STRESS_SSRC0)
			s->next_ssrc = GEN_STRESS_SSRC0;
		perf_gen_put16(x[n].data + 2, (uint16_t)perf_gen_stress_rand(s));
		perf_gen_put32(x[n].data + 8, fs);
		n++;
		s->flood++;
	}
	return n;
}

int perf_gen_stress_swap(struct perf_gen_stress *s)
{
	if (!(s->modes & GEN_STRESS_REORDER) ||
	    perf_gen_stress_rand(s) % GEN_STRESS_SWAP_ONE_IN != 0)
		return 0;
	s->reorder++;
	return 1;
}

void perf_gen_stress_print(const struct perf_gen_stress *s, FILE *f)
{
	fprintf(f,
		"gen: stress garbage_media=%llu garbage_rtcp=%llu malformed_rtp=%llu "
		"malformed_rtcp=%llu ssrc_flood=%llu dup=%llu reorder=%llu\n",
		(unsigned long long)s->garbage_media, (unsigned long long)s->garbage_rtcp,
		(unsigned long long)s->malformed_rtp, (unsigned long long)s->malformed_rtcp,
		(unsigned long long)s->flood, (unsigned long long)s->dup,
		(unsigned long long)s->reorder);
}
