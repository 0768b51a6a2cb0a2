/* dp_proto status codes: one static name per DP_PROTO_ERR_* value. */
#include "dataplane/dp_proto.h"

const char *dp_proto_strerror(int err)
{
	switch (err) {
	case DP_PROTO_OK:
		return "ok";
	case DP_PROTO_ERR_TRUNCATED:
		return "truncated: buffer shorter than a fixed header";
	case DP_PROTO_ERR_VERSION:
		return "bad version: RTP/RTCP version is not 2";
	case DP_PROTO_ERR_PADDING:
		return "bad padding: count 0 or larger than the packet";
	case DP_PROTO_ERR_CSRC:
		return "bad CSRC list: runs past the end";
	case DP_PROTO_ERR_EXTENSION:
		return "bad header extension: runs past the end";
	case DP_PROTO_ERR_LENGTH:
		return "bad length: a length or count field disagrees with the bytes present";
	case DP_PROTO_ERR_TYPE:
		return "bad type: packet, payload or message type not the one expected";
	case DP_PROTO_ERR_NOSPACE:
		return "no space: output buffer too small";
	case DP_PROTO_ERR_INVALID:
		return "invalid field: a value the specification forbids";
	case DP_PROTO_ERR_QTABLE:
		return "bad quantization table header (RFC 2435)";
	case DP_PROTO_ERR_FRAGMENT:
		return "bad fragment: inconsistent with the frame so far (RFC 2435)";
	case DP_PROTO_ERR_INCOMPLETE:
		return "incomplete frame: bytes missing";
	case DP_PROTO_ERR_LINE:
		return "bad line header: outside the frame (RFC 4175)";
	case DP_PROTO_ERR_APP_NAME:
		return "RTCP APP packet is not a shoal message (name)";
	case DP_PROTO_ERR_APP_VERSION:
		return "shoal message version not understood";
	default:
		return "unknown dp_proto status";
	}
}
