/* dp_proto — shoal's wire-protocol codec (DESIGN.md §4, byte layout in PROTOCOL.md).
 *
 * Pure C, no DPDK: used by the server's data plane, the client library and the load
 * generator. Parsers never read outside [buf, buf + len) and builders never write outside
 * [buf, buf + cap). Every function returns 0 (or a length) on success and a negative
 * DP_PROTO_ERR_* code on failure; dp_proto_strerror() names it. Parsed structures may point
 * into the input buffer (fields marked "view"); they stay valid as long as the buffer does.
 */
#ifndef SHOAL_DP_PROTO_H
#define SHOAL_DP_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes ---------------------------------------------------------------------- */
enum dp_proto_err {
	DP_PROTO_OK = 0,
	DP_PROTO_ERR_TRUNCATED = -1,   /* buffer shorter than a fixed header */
	DP_PROTO_ERR_VERSION = -2,     /* RTP/RTCP version is not 2 */
	DP_PROTO_ERR_PADDING = -3,     /* padding count 0 or larger than the packet */
	DP_PROTO_ERR_CSRC = -4,        /* CSRC list runs past the end */
	DP_PROTO_ERR_EXTENSION = -5,   /* header extension runs past the end */
	DP_PROTO_ERR_LENGTH = -6,      /* a length field disagrees with the bytes present */
	DP_PROTO_ERR_TYPE = -7,        /* packet/payload/message type not the one expected */
	DP_PROTO_ERR_NOSPACE = -8,     /* output buffer too small */
	DP_PROTO_ERR_INVALID = -9,     /* a field has a value the spec forbids */
	DP_PROTO_ERR_QTABLE = -10,     /* RFC 2435 quantization header bad or missing */
	DP_PROTO_ERR_FRAGMENT = -11,   /* RFC 2435 fragment inconsistent with the frame so far */
	DP_PROTO_ERR_INCOMPLETE = -12, /* frame finished with bytes missing */
	DP_PROTO_ERR_LINE = -13,       /* RFC 4175 line header bad or outside the frame */
	DP_PROTO_ERR_APP_NAME = -14,   /* RTCP APP packet whose name is not shoal's */
	DP_PROTO_ERR_APP_VERSION = -15, /* shoal message version not understood */
	DP_PROTO_ERR__COUNT = 16
};

/* A static string naming a status code ("truncated", "bad version", ...). */
const char *dp_proto_strerror(int err);

/* ---- RTP (RFC 3550 §5.1) --------------------------------------------------------------- */
#define DP_RTP_VERSION 2
#define DP_RTP_HDR_MIN 12
#define DP_RTP_MAX_CSRC 15
#define DP_RTP_PT_JPEG 26 /* RFC 2435 static payload type */

struct dp_rtp_hdr {
	uint8_t padding;      /* P bit */
	uint8_t extension;    /* X bit */
	uint8_t csrc_count;   /* CC */
	uint8_t marker;       /* M bit: last packet of a frame */
	uint8_t payload_type; /* 7 bits */
	uint16_t seq;
	uint32_t timestamp;
	uint32_t ssrc;
	uint32_t csrc[DP_RTP_MAX_CSRC];
	uint16_t ext_profile;   /* when extension */
	uint16_t ext_words;     /* extension length in 32-bit words, when extension */
	const uint8_t *ext;     /* view: extension data, ext_words * 4 bytes */
	const uint8_t *payload; /* view: payload, padding removed */
	size_t payload_len;
	uint8_t pad_len; /* padding bytes removed from the end (0 when !padding) */
};

/* Parses one RTP packet. */
int dp_rtp_parse(const uint8_t *buf, size_t len, struct dp_rtp_hdr *out);

/* Writes the header described by h (CSRCs and extension included; h->payload ignored) and
 * returns its length in bytes. The caller appends the payload; padding is not written. */
ssize_t dp_rtp_build(uint8_t *buf, size_t cap, const struct dp_rtp_hdr *h);

/* Signed distance from sequence number a to b, modulo 2^16 (b after a is positive). */
static inline int16_t dp_rtp_seq_diff(uint16_t a, uint16_t b) { return (int16_t)(uint16_t)(b - a); }

/* Extended (32-bit) sequence number tracking across wraps (RFC 3550 appendix A.1).
 * Zero-initialise before the first packet. */
struct dp_rtp_seq {
	uint16_t max_seq;
	uint32_t cycles;   /* wraps seen, shifted left 16 */
	uint32_t received; /* packets accepted */
	int started;
	uint32_t bad_seq;  /* A.1 "bad_seq": 0x10000 | seq expected after a large jump, or 0 */
};
/* Accepts seq and returns its extended value. A step forward below 3000 advances max_seq
 * (wrapping adds 2^16 to cycles); a step back of at most 100 (reordering, duplicate) is
 * counted and numbered in its own cycle without moving max_seq; any other jump is neither
 * counted nor believed until the next packet follows it in sequence (source restarted),
 * at which point max_seq moves there and cycles is kept. */
uint32_t dp_rtp_seq_update(struct dp_rtp_seq *s, uint16_t seq);

/* ---- RFC 2435: JPEG over RTP ----------------------------------------------------------- */
#define DP_JPEG_HDR_LEN 8         /* main JPEG header */
#define DP_JPEG_RESTART_HDR_LEN 4 /* present when 64 <= type <= 127 */
#define DP_JPEG_QT_HDR_LEN 4      /* present when q >= 128 and fragment offset == 0 */
#define DP_JPEG_MAX_QT 4          /* quantization tables carried in-band at most */

struct dp_jpeg_hdr {
	uint8_t type_specific;
	uint32_t frag_offset; /* 24 bits: offset of this payload in the frame's scan data */
	uint8_t type;         /* 0/1 (4:2:2 / 4:2:0), 64/65 with restart markers */
	uint8_t q;            /* 1..99: tables from the RFC's formula; >= 128: in-band */
	uint16_t width;       /* pixels (wire value * 8; wire 0 only with width > 2040: refused) */
	uint16_t height;      /* pixels */
	/* restart marker header (type 64..127) */
	uint16_t restart_interval;
	uint8_t restart_first, restart_last; /* F and L bits */
	uint16_t restart_count;              /* 14 bits */
	/* quantization table header (q >= 128, first fragment only) */
	uint8_t qt_precision; /* bit i set: table i has 16-bit entries */
	uint16_t qt_len;      /* bytes of table data */
	const uint8_t *qt;    /* view: table data */
	/* scan data of this packet */
	const uint8_t *data; /* view */
	size_t data_len;
};

/* Parses the RFC 2435 headers at the start of an RTP payload. Types other than 0, 1, 64, 65
 * give DP_PROTO_ERR_TYPE; Q 0 or 100..127 and width/height 0 DP_PROTO_ERR_INVALID; a
 * quantization table length past the end, above 512 or not a whole number (1..4) of tables
 * for the precision bits DP_PROTO_ERR_QTABLE. Length 0 (tables not sent) is accepted here
 * and refused by dp_jpeg_frame_add(). */
int dp_jpeg_parse(const uint8_t *payload, size_t len, struct dp_jpeg_hdr *out);

/* Writes the RFC 2435 headers for h (quantization header included when h->q >= 128 and
 * h->frag_offset == 0) and returns their length; the caller appends h->data_len bytes. */
ssize_t dp_jpeg_build(uint8_t *buf, size_t cap, const struct dp_jpeg_hdr *h);

/* The 64-byte luma and chroma tables for a Q of 1..99, in zig-zag order (RFC 2435 §4.2,
 * appendix A). Returns DP_PROTO_ERR_INVALID for other values. */
int dp_jpeg_qtables(uint8_t q, uint8_t luma[64], uint8_t chroma[64]);

/* Reassembly of one JPEG frame from its RTP payloads, into caller memory, rebuilding a
 * complete JFIF image (SOI, DQT, SOF0, DHT, DRI, SOS, scan, EOI). Fragments may arrive in
 * any order; a duplicate fragment is not counted twice. The caller owns buf. */
#define DP_JPEG_HEADERS_MAX 1024 /* room reserved at the front of buf for JFIF headers */
struct dp_jpeg_frame {
	uint8_t *buf;
	size_t cap;
	uint32_t scan_len;  /* bytes of scan data, known once the marker packet arrived (else 0) */
	uint32_t received;  /* distinct scan bytes received */
	uint32_t max_end;   /* highest fragment end seen */
	uint8_t have_first; /* fragment at offset 0 seen (carries type, q, tables) */
	uint8_t have_last;  /* packet with the marker bit seen */
	uint8_t type, q;
	uint16_t width, height, restart_interval;
	uint8_t qt_precision;
	uint16_t qt_len;
	uint8_t qt[DP_JPEG_MAX_QT * 128];
	/* coverage of [0, scan_len): sorted, merged byte intervals received */
	uint16_t n_ranges;
	struct {
		uint32_t start, end;
	} ranges[64];
};

/* Prepares f to collect a frame into buf (cap bytes; the scan data lands at
 * buf + DP_JPEG_HEADERS_MAX). */
int dp_jpeg_frame_init(struct dp_jpeg_frame *f, uint8_t *buf, size_t cap);
/* Adds one packet (parsed h, marker bit of its RTP header). Returns 0 when added and also
 * for an exact duplicate (same bytes at the same place: not counted again). A refused packet
 * leaves f unchanged: DP_PROTO_ERR_FRAGMENT for bytes overlapping others differently, frame
 * parameters (type, Q, size, restart interval, tables) that disagree with earlier packets, or
 * an end inconsistent with the marker packet's; DP_PROTO_ERR_QTABLE for Q >= 128 first
 * fragment without usable tables; DP_PROTO_ERR_NOSPACE when buf cannot hold the bytes or more
 * than 64 disjoint ranges would be needed; DP_PROTO_ERR_INVALID for type-specific != 0
 * (interlaced). One in-band table (ffmpeg sends that when chroma uses the luma matrix)
 * serves all three components; with two or more, Y uses table 0 and Cb/Cr table 1. */
int dp_jpeg_frame_add(struct dp_jpeg_frame *f, const struct dp_jpeg_hdr *h, int marker);
/* 1 when every scan byte up to the marker packet's end has been received. */
int dp_jpeg_frame_complete(const struct dp_jpeg_frame *f);
/* Writes the JFIF headers in front of the scan data and EOI after it (unless the scan
 * already ends with one); *jfif points to the image inside f->buf and *len is its length.
 * DP_PROTO_ERR_INCOMPLETE while dp_jpeg_frame_complete() is 0. SOF0 is written, or SOF1
 * when a table has 16-bit entries. */
int dp_jpeg_frame_finish(struct dp_jpeg_frame *f, const uint8_t **jfif, size_t *len);

/* The sender's side of RFC 2435: what a baseline JFIF (as libjpeg-turbo writes it with its
 * standard Huffman tables) holds that the RTP/JPEG headers carry. */
struct dp_jfif_info {
	uint16_t width, height;
	uint8_t type;              /* RFC 2435 type: 0 (4:2:2), 1 (4:2:0), +64 with restart markers */
	uint16_t restart_interval; /* DRI, 0 when absent */
	uint8_t n_qt;              /* 8-bit quantization tables found (1 or 2) */
	uint8_t qt[2][64];         /* zig-zag order, as in the DQT segment */
	const uint8_t *scan;       /* view: entropy-coded data after SOS, EOI excluded */
	size_t scan_len;
};

/* Splits a JFIF into what RFC 2435 sends. DP_PROTO_ERR_TRUNCATED / DP_PROTO_ERR_LENGTH for a
 * cut or inconsistent segment; DP_PROTO_ERR_TYPE for anything RFC 2435 cannot carry
 * (progressive or 12-bit, not 3 components, chroma subsampled other than 4:2:0 or 4:2:2,
 * 16-bit tables, more than 2 tables). */
int dp_jfif_split(const uint8_t *jfif, size_t len, struct dp_jfif_info *out);

/* ---- RFC 4175: uncompressed video ------------------------------------------------------ */
enum dp_raw_sampling {
	DP_RAW_SAMPLING_YCBCR420, /* pgroup 6 bytes, 2x2 pixels: Y00 Y01 Y10 Y11 Cb Cr */
	DP_RAW_SAMPLING_YCBCR422, /* pgroup 4 bytes, 2x1 pixels: Cb Y0 Cr Y1 */
	DP_RAW_SAMPLING_RGB,      /* pgroup 3 bytes, 1 pixel: R G B */
};
#define DP_RAW_MAX_LINES 64 /* line headers in one packet at most */
#define DP_RAW_HDR_MIN 2    /* extended sequence number */

struct dp_raw_line {
	uint16_t length; /* bytes of this line's segment */
	uint16_t line;   /* 15 bits */
	uint8_t field;   /* F bit */
	uint16_t offset; /* 15 bits: pixel offset in the line */
	uint8_t cont;    /* C bit: another line header follows */
	const uint8_t *data; /* view: the segment's bytes */
};

struct dp_raw_hdr {
	uint16_t ext_seq; /* high 16 bits of the extended sequence number */
	unsigned n_lines;
	struct dp_raw_line lines[DP_RAW_MAX_LINES];
};

/* Parses the RFC 4175 payload header and locates each line segment. Line headers cut short
 * give DP_PROTO_ERR_TRUNCATED, more than DP_RAW_MAX_LINES DP_PROTO_ERR_LINE, segment lengths
 * past the end DP_PROTO_ERR_LENGTH; bytes after the last segment are ignored. */
int dp_raw_parse(const uint8_t *payload, size_t len, struct dp_raw_hdr *out);

/* Builds a payload with n line segments (their data are copied after the headers);
 * returns its length. The C bits are set from the position (all but the last). */
ssize_t dp_raw_build(uint8_t *buf, size_t cap, uint16_t ext_seq, const struct dp_raw_line *lines,
		     unsigned n);

/* Bytes and pixels (x, y) of one pgroup for an 8-bit sampling. */
int dp_raw_pgroup(enum dp_raw_sampling s, unsigned *bytes, unsigned *xpix, unsigned *ypix);

/* Bytes of a whole frame in the staging layout: I420 planar for 4:2:0, packed UYVY for
 * 4:2:2, packed RGB24 for RGB. width and height must be multiples of the pgroup. */
ssize_t dp_raw_frame_size(enum dp_raw_sampling s, unsigned width, unsigned height);

/* Copies every segment of a parsed packet into frame (staging layout, frame_len bytes) and
 * returns the number of payload bytes placed. Segments outside the frame, not on pgroup
 * boundaries (length, offset, odd line for 4:2:0) or with the F bit (interlaced) are refused
 * with DP_PROTO_ERR_LINE before anything is written. */
ssize_t dp_raw_frame_copy(const struct dp_raw_hdr *h, enum dp_raw_sampling s, unsigned width,
			  unsigned height, uint8_t *frame, size_t frame_len);

/* ---- RTCP (RFC 3550 §6) ---------------------------------------------------------------- */
#define DP_RTCP_PT_SR 200
#define DP_RTCP_PT_RR 201
#define DP_RTCP_PT_SDES 202
#define DP_RTCP_PT_BYE 203
#define DP_RTCP_PT_APP 204
#define DP_RTCP_MAX_RB 31

/* One packet of a compound RTCP datagram, as walked by dp_rtcp_next(). */
struct dp_rtcp_pkt {
	uint8_t padding;
	uint8_t count; /* RC / SC / subtype (5 bits) */
	uint8_t pt;
	const uint8_t *body; /* view: bytes after the 4-byte common header, padding removed */
	size_t body_len;
	size_t total_len; /* bytes of this packet on the wire: (length + 1) * 4 */
};

/* Walks a compound packet: parses the packet at *off, advances *off. Returns 1 when a
 * packet was produced, 0 at the end, or an error (*off unchanged): fewer than 4 bytes left
 * DP_PROTO_ERR_TRUNCATED, version DP_PROTO_ERR_VERSION, length field past the end
 * DP_PROTO_ERR_LENGTH, padding count 0 or past the body DP_PROTO_ERR_PADDING. */
int dp_rtcp_next(const uint8_t *buf, size_t len, size_t *off, struct dp_rtcp_pkt *out);

struct dp_rtcp_rb { /* report block */
	uint32_t ssrc;
	uint8_t fraction_lost;
	int32_t cum_lost; /* 24-bit signed */
	uint32_t ext_high_seq, jitter, lsr, dlsr;
};

struct dp_rtcp_sr {
	uint32_t ssrc;
	uint64_t ntp; /* 32.32 fixed point */
	uint32_t rtp_ts, pkt_count, octet_count;
	uint8_t n_rb;
	struct dp_rtcp_rb rb[DP_RTCP_MAX_RB];
};

struct dp_rtcp_rr {
	uint32_t ssrc;
	uint8_t n_rb;
	struct dp_rtcp_rb rb[DP_RTCP_MAX_RB];
};

struct dp_rtcp_bye {
	uint8_t n_ssrc;
	uint32_t ssrc[31];
	uint8_t reason_len;
	char reason[256]; /* NUL-terminated copy */
};

/* Wrong pt: DP_PROTO_ERR_TYPE; body shorter than the fixed part: DP_PROTO_ERR_TRUNCATED;
 * report count (or BYE SSRC count, reason length) beyond the body: DP_PROTO_ERR_LENGTH. Bytes
 * after the report blocks (profile extensions) are ignored. */
int dp_rtcp_sr_parse(const struct dp_rtcp_pkt *p, struct dp_rtcp_sr *out);
int dp_rtcp_rr_parse(const struct dp_rtcp_pkt *p, struct dp_rtcp_rr *out);
int dp_rtcp_bye_parse(const struct dp_rtcp_pkt *p, struct dp_rtcp_bye *out);
/* Builders append one packet at buf and return its length (a multiple of 4). cum_lost is
 * saturated to 24 bits; a BYE reason is padded with zeros. */
ssize_t dp_rtcp_sr_build(uint8_t *buf, size_t cap, const struct dp_rtcp_sr *sr);
ssize_t dp_rtcp_rr_build(uint8_t *buf, size_t cap, const struct dp_rtcp_rr *rr);
ssize_t dp_rtcp_bye_build(uint8_t *buf, size_t cap, const struct dp_rtcp_bye *bye);

/* ---- shoal messages: RTCP APP (PT 204), name "SHOL", subtype = message kind ------------ */
#define DP_APP_NAME "SHOL"
#define DP_APP_VERSION 1
#define DP_APP_MAX_RES 32     /* resolutions a REGISTER may list */
#define DP_APP_MAX_DET 255    /* detections one RESULT may carry */
#define DP_APP_VARIANT_LEN 16 /* model family name bytes in ASSIGN/RESULT */

enum dp_app_kind {
	DP_APP_REGISTER = 1, /* client -> server */
	DP_APP_REPORT = 2,   /* client -> server */
	DP_APP_ASSIGN = 3,   /* server -> client */
	DP_APP_RESULT = 4,   /* server -> client */
	DP_APP_DROP = 5,     /* server -> client */
};

/* bits of dp_app_register.formats */
enum dp_app_format {
	DP_APP_FMT_JPEG = 1u << 0,
	DP_APP_FMT_RAW420 = 1u << 1,
	DP_APP_FMT_RAW422 = 1u << 2,
	DP_APP_FMT_RAWRGB = 1u << 3,
};

struct dp_app_res {
	uint16_t width, height;
};

struct dp_app_register {
	uint16_t slo_ms;      /* end-to-end latency objective */
	uint16_t fps_x100;    /* frame rate * 100 */
	uint16_t media_port;  /* UDP port the RTP stream comes from */
	uint8_t formats;      /* dp_app_format bits */
	uint8_t n_res;
	struct dp_app_res res[DP_APP_MAX_RES];
};

struct dp_app_report {
	uint32_t bw_kbps;     /* uplink bandwidth estimate */
	uint32_t rtt_us;      /* round-trip time estimate */
	uint32_t frames_sent; /* since start */
	uint32_t results_rcvd;
};

struct dp_app_assign {
	uint32_t epoch;       /* increases with every assignment table */
	char family[DP_APP_VARIANT_LEN]; /* model family, NUL-padded */
	uint16_t variant;     /* input size of the model variant (e.g. 320) */
	uint16_t width, height; /* resolution the client should send */
	uint32_t target_bytes;  /* frame size to aim for */
	uint16_t fps_x100;      /* rate to send at */
	uint8_t format;         /* one dp_app_format bit */
	uint8_t served;         /* 0: not served, see reason */
	uint8_t reason;         /* dp_app_drop_reason when !served */
};

struct dp_app_det {
	uint16_t cls;       /* COCO class index */
	uint16_t score;     /* score * 65535 */
	uint16_t x, y, w, h; /* box in the source frame's pixels */
};

struct dp_app_result {
	uint32_t rtp_ts;  /* RTP timestamp of the frame */
	uint16_t variant; /* input size used */
	uint16_t n_det;
	uint32_t server_us; /* time the frame spent in the server: last packet in -> RESULT */
	struct dp_app_det det[DP_APP_MAX_DET];
};

enum dp_app_drop_reason {
	DP_APP_DROP_LATE = 1,       /* could not make its deadline */
	DP_APP_DROP_INCOMPLETE = 2, /* packets lost, frame abandoned */
	DP_APP_DROP_OVERLOAD = 3,   /* queue full */
	DP_APP_DROP_NOT_SERVED = 4, /* scheduler could not place the client */
	DP_APP_DROP_BAD_FRAME = 5,  /* frame failed to decode */
	DP_APP_DROP_TOO_LARGE = 6,  /* frame above the maximum frame size */
};

struct dp_app_drop {
	uint32_t rtp_ts;
	uint8_t reason;
};

struct dp_app_msg {
	uint8_t kind; /* dp_app_kind */
	uint32_t ssrc; /* APP packet SSRC: the client's media SSRC */
	union {
		struct dp_app_register reg;
		struct dp_app_report report;
		struct dp_app_assign assign;
		struct dp_app_result result;
		struct dp_app_drop drop;
	} u;
};

/* Bytes m takes on the wire (APP header included). */
ssize_t dp_app_size(const struct dp_app_msg *m);
/* Builds one APP packet; returns its length (multiple of 4). */
ssize_t dp_app_build(uint8_t *buf, size_t cap, const struct dp_app_msg *m);
/* Parses an APP packet walked by dp_rtcp_next(). In order: pt not 204 DP_PROTO_ERR_TYPE,
 * fewer than 8 body bytes DP_PROTO_ERR_TRUNCATED, name not "SHOL" DP_PROTO_ERR_APP_NAME, no
 * version byte DP_PROTO_ERR_TRUNCATED, version not DP_APP_VERSION DP_PROTO_ERR_APP_VERSION,
 * unknown kind DP_PROTO_ERR_TYPE, application data not exactly the size the kind and its
 * count field imply DP_PROTO_ERR_LENGTH, a count above its maximum or a forbidden value
 * (unknown format or drop reason, served > 1, several formats in ASSIGN)
 * DP_PROTO_ERR_INVALID. Builders refuse the same values. */
int dp_app_parse(const struct dp_rtcp_pkt *p, struct dp_app_msg *out);

#ifdef __cplusplus
}
#endif
#endif
