/*
 * gen_seeds.c — writes the seed corpus for fuzz_coco into a directory.
 *
 * Mode 0 seeds are keys encoded by the real coco_key_put_* functions (the
 * shapes the extension stores: row keys, nested and deep tuples, escaped
 * NULs); the other modes get a few small payloads to start from.
 *
 *   gen_seeds DIR
 */
#include "postgres.h"

#include <stdio.h>
#include <stdlib.h>

#include "utils/uuid.h"

#include "coco_target.h"
#include "pg_shim.h"

static const char *outdir;
static int	nwritten;

static void
write_seed(const char *name, char mode, const char *data, int len)
{
	char		path[1024];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	f = fopen(path, "wb");
	if (f == NULL || fputc(mode, f) == EOF ||
		(len > 0 && fwrite(data, 1, len, f) != (size_t) len) || fclose(f) != 0)
	{
		fprintf(stderr, "gen_seeds: cannot write %s\n", path);
		exit(1);
	}
	nwritten++;
}

static void
write_key(const char *name, StringInfo buf)
{
	write_seed(name, 0, buf->data, buf->len);
	resetStringInfo(buf);
}

static void
make_seeds(void *arg)
{
	StringInfoData b;
	pg_uuid_t	u;

	initStringInfo(&b);

	coco_key_put_null(&b);
	write_key("key-null", &b);
	coco_key_put_bool(&b, true);
	write_key("key-true", &b);
	coco_key_put_int(&b, -1);
	write_key("key-int-minus-one", &b);
	coco_key_put_int(&b, PG_INT64_MIN);
	write_key("key-int-min", &b);
	coco_key_put_str(&b, "hello", 5);
	write_key("key-str", &b);
	coco_key_put_str(&b, "a\0b\xff", 4);
	write_key("key-str-escaped-nul", &b);
	coco_key_put_str(&b, "\xc3\xa9t\xc3\xa9", 6);
	write_key("key-str-utf8", &b);
	coco_key_put_bytes(&b, "\x00\xff\x00", 3);
	write_key("key-bytes", &b);
	for (int i = 0; i < UUID_LEN; i++)
		u.data[i] = (unsigned char) (i * 17);
	coco_key_put_uuid(&b, &u);
	write_key("key-uuid", &b);
	coco_key_put_symbol(&b, "docs", 4);
	write_key("key-symbol", &b);

	/* a row key: the tuple of the primary-key values */
	coco_key_begin_tuple(&b);
	coco_key_put_int(&b, 42);
	coco_key_put_str(&b, "x", 1);
	coco_key_end_tuple(&b);
	write_key("key-row", &b);

	/* a table key as identifiers.c builds it, and an index's as pg_attach.c */
	coco_key_begin_tuple(&b);
	coco_key_put_str(&b, "local", 5);
	coco_key_put_str(&b, "public", 6);
	coco_key_put_str(&b, "docs", 4);
	coco_key_end_tuple(&b);
	write_key("key-table", &b);
	coco_key_begin_tuple(&b);
	coco_key_put_str(&b, "local", 5);
	coco_key_put_str(&b, "public", 6);
	coco_key_put_str(&b, "docs", 4);
	coco_key_put_symbol(&b, "index", 5);
	coco_key_put_str(&b, "docs_title_idx", 14);
	coco_key_end_tuple(&b);
	write_key("key-index", &b);

	/* every kind inside nested tuples */
	coco_key_begin_tuple(&b);
	coco_key_put_symbol(&b, "s", 1);
	coco_key_begin_tuple(&b);
	coco_key_put_str(&b, "docs", 4);
	coco_key_put_bytes(&b, "", 0);
	coco_key_put_uuid(&b, &u);
	coco_key_put_null(&b);
	coco_key_end_tuple(&b);
	coco_key_put_bool(&b, false);
	coco_key_end_tuple(&b);
	write_key("key-nested", &b);

	coco_key_begin_tuple(&b);
	coco_key_end_tuple(&b);
	write_key("key-empty-tuple", &b);

	/* nesting at and around the depth limit */
	for (int depth = 31; depth <= 34; depth++)
	{
		char		name[64];

		for (int i = 0; i < depth; i++)
			coco_key_begin_tuple(&b);
		coco_key_put_int(&b, depth);
		for (int i = 0; i < depth; i++)
			coco_key_end_tuple(&b);
		snprintf(name, sizeof(name), "key-deep-%d", depth);
		write_key(name, &b);
	}

	/* truncated and damaged encodings */
	coco_key_put_str(&b, "abc", 3);
	write_seed("key-truncated-str", 0, b.data, b.len - 1);
	resetStringInfo(&b);
	coco_key_put_int(&b, 7);
	write_seed("key-truncated-int", 0, b.data, b.len - 3);
	resetStringInfo(&b);
	write_seed("key-bad-escape", 0, "\x20\x61\x00\x01\x00\x00", 6);
	write_seed("key-bad-tag", 0, "\x7f", 1);
	write_seed("key-open-tuple", 0, "\x60\x01", 2);

	/* numerics (1, -1, -12.5, NaN), a date, a timestamp, a timestamptz */
	write_seed("key-numeric-1", 0, "\x11\x04\x80\x00\x00\x01\x02\x00", 8);
	write_seed("key-numeric-minus-1", 0, "\x11\x02\x7f\xff\xff\xfe\xfd\xff", 8);
	write_seed("key-numeric-tuple", 0, "\x60\x11\x02\x7f\xff\xff\xfd\xfd\xfc\xf9\xff\x11\x06\x00", 14);
	write_seed("key-date", 0, "\x12\x80\x00\x00\x00\x00\x00\x00\x07", 9);
	write_seed("key-timestamp-tuple", 0, "\x60\x13\x7f\xff\xff\xff\xff\xff\xff\xff"
			   "\x14\x80\x00\x00\x00\x00\x00\x00\x00\x00", 20);

	/* structured keys: two values from a byte program */
	write_seed("values-ints", 1, "\x03\x01\x04\x03\x00\x05", 6);
	write_seed("values-tuples", 1, "\x08\x03\x03\x02\x07\x04\x03" "abc\x08\x02\x01\x06", 14);
	write_seed("values-deep", 1, "\x09\x21\x03\x00\x01\x09\x20\x04\x01x", 10);
	write_seed("values-strings", 1, "\x04\x03\x61\x00\x62\x04\x02\x61\x00", 9);
	/* decision rules */
	write_seed("diff-equal", 2, "\x00\x02\x00\x00\x00", 5);
	write_seed("diff-mixed", 2, "\x02\x03\x00\x00\x02\x01", 6);
	write_seed("diff-undeclared", 2, "\x01\x01\x00\x00", 4);
	write_seed("composite-same", 3, "\x00\x01\x03\x00\x01\x00\x02\x00\x03\x00\x02\x00\x01\x00\x02\x00", 16);
	write_seed("composite-changed", 3, "\x00\x02\x04\x00\x01\x00\x02\x01\x03\x00\x04\x01\x02\x00\x01\x02\x05\x01\x02\x00\x03\x00\x01\x00", 24);
	write_seed("composite-undeclared", 3, "\x01\x01\x02\x00\x01\x00\x02\x00", 8);
	/* row buffers */
	write_seed("rows-mixed", 4, "\x04\x05\x01\x03" "abc\x01\x01\x06\x01\x02xy\x00\x00\x02\x01\x00\x00\x00\x07\x00", 23);
}

int
main(int argc, char **argv)
{
	if (argc != 2)
	{
		fprintf(stderr, "usage: gen_seeds DIR\n");
		return 2;
	}
	outdir = argv[1];
	if (!fz_try(make_seeds, NULL))
	{
		fprintf(stderr, "gen_seeds: %s\n", fz_error_message());
		return 1;
	}
	fz_arena_reset();
	printf("gen_seeds: wrote %d seeds to %s\n", nwritten, outdir);
	return 0;
}
