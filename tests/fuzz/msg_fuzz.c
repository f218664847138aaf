/* msg_fuzz.c - libFuzzer target for the wire decoder: any bytes go through
 * mos_msg_parse_header() and mos_msg_decode(); a rejection must say why, and
 * whatever is accepted must read back through every getter and re-encode to
 * the very same bytes. Built by clang -fsanitize=fuzzer (tests/fuzz/README.md)
 * or with run_corpus.c as the plain-gcc smoke test. */
#include "msg.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

unsigned long msg_fuzz_accepted, msg_fuzz_rejected;

/* Read everything a consumer could read; crash (for the fuzzer) on a lie. */
static void check_decoded(const struct mos_msg *m, const uint8_t *data, size_t size)
{
	struct mos_msg r;
	uint32_t u;
	int32_t i;
	uint64_t q;

	for (unsigned tag = 0; tag <= MOS_T__COUNT; tag++) {
		mos_msg_get_u32(m, tag, &u);
		mos_msg_get_i32(m, tag, &i);
		mos_msg_get_u64(m, tag, &q);
		free(mos_msg_get_str(m, tag));
		mos_strv_free(mos_msg_get_strv(m, tag));
		(void)mos_tag_name(tag);
	}
	(void)mos_msg_name(m->type);
	for (size_t k = 0; k < m->n_fields; k++) {
		const struct mos_field *f = &m->fields[k];
		if (f->data < m->buf + MOS_MSG_HDR_LEN || f->data + f->len > m->buf + m->len)
			abort(); /* a field outside its frame */
		if (f->len == 4)
			(void)mos_field_u32(f);
		if (f->len == 8)
			(void)mos_field_u64(f);
		free(mos_field_str(f));
	}

	/* the same fields, encoded again, are the same frame (byte 5 is reserved
	 * and not checked by the decoder, so it is not compared) */
	if (mos_msg_init(&r, m->type))
		return;
	for (size_t k = 0; k < m->n_fields; k++)
		if (mos_msg_put(&r, m->fields[k].tag, m->fields[k].data, m->fields[k].len))
			abort();
	mos_msg_finish(&r, m->seq);
	if (r.len != size || memcmp(r.buf, data, 5) || memcmp(r.buf + 6, data + 6, size - 6))
		abort();
	mos_msg_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mos_msg m;
	char err[256];
	uint8_t *frame;

	if (size >= MOS_MSG_HDR_LEN) {
		uint16_t type;
		uint32_t seq, len;
		if (!mos_msg_parse_header(data, &type, &seq, &len) &&
		    (type == MOS_MSG_NONE || type >= MOS_MSG__COUNT || len > MOS_MSG_MAX_PAYLOAD))
			abort();
	}
	frame = malloc(size ? size : 1); /* the decoder takes ownership */
	if (!frame)
		return 0;
	if (size)
		memcpy(frame, data, size);
	err[0] = 0;
	if (mos_msg_decode(&m, frame, size, err, sizeof(err))) {
		if (!err[0]) /* a rejection always says why */
			abort();
		msg_fuzz_rejected++;
		return 0;
	}
	msg_fuzz_accepted++;
	check_decoded(&m, data, size);
	mos_msg_free(&m);
	return 0;
}
