-- 08_types: values round-trip exactly, through declare_row (jsonb) and
-- through declare_rows (a query): text with quotes, backslashes, newlines
-- and unicode; smallint, integer, bigint at their limits; numeric (with
-- scale and typmod); float8 including extremes, NaN and infinities;
-- boolean; jsonb; timestamptz; date; uuid; bytea (spelled "\\x…" in
-- jsonb); text[] and int[] with NULL elements; NULLs everywhere.
-- Each target is compared with the source by EXCEPT both ways, typed and
-- as text (which also sees numeric scale).
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE TABLE typ_src (
    id int, t text, s smallint, i integer, b bigint, n numeric, n2 numeric(10,2),
    f float8, ok boolean, j jsonb, ts timestamptz, d date, u uuid, by bytea,
    ta text[], ia int[]);
INSERT INTO typ_src VALUES
  (1, E'it''s "quoted" \\ back\\slash\nnew line\ttab\r ünïcödé ✓ 😀 \u00e9',
      -32768, -2147483648, -9223372036854775808,
      123456789012345678901234567890.000000001, 1.5, 0.1, true,
      '{"nested": [1, "two", null, {"x": 1.50, "y": "\"q\""}], "": "empty key"}',
      '2024-02-29 23:59:59.999999+05:30', '2024-02-29',
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x00ff0a5c27',
      ARRAY['a b', 'c,d', '"q"', NULL, '', 'x\y'], ARRAY[1, NULL, -3]),
  (2, '', 32767, 2147483647, 9223372036854775807, -0.000100, -99999999.99,
      -1.7976931348623157e308, false, '"just a string"',
      '1970-01-01 00:00:00+00', '0001-01-01', '00000000-0000-0000-0000-000000000000', '\x',
      '{}', '{}'),
  (3, 'NULL', 0, 0, 0, 'NaN', 0, 'NaN', NULL, '[]',
      'infinity', '-infinity', NULL, '\x5c78', ARRAY[NULL]::text[], ARRAY[NULL]::int[]),
  (4, NULL, NULL, NULL, NULL, NULL, NULL, 5e-324, NULL, '{"a": {"b": {"c": [[]]}}}',
      NULL, NULL, NULL, NULL, NULL, NULL),
  (5, 'tab	and spaces  ', 1, 1, 1, 1e-20, 0.01, 'Infinity', true, '1.0',
      '2000-06-15 12:00:00-07', '9999-12-31', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '\xdeadbeef',
      ARRAY['{braces}', 'quote''s'], ARRAY[2147483647, -2147483648]),
  (6, NULL, NULL, NULL, NULL, NULL, NULL, '-Infinity', NULL, NULL,
      NULL, NULL, NULL, NULL, NULL, NULL);

-- Two tables with the same columns: one filled by declare_row, one by
-- declare_rows.
CREATE FUNCTION pg_temp.declare_tables() RETURNS void LANGUAGE sql AS $$
  SELECT coco.declare_table('typ', t,
      '[{"name": "id", "type": "int"}, {"name": "t", "type": "text"},
        {"name": "s", "type": "smallint"}, {"name": "i", "type": "integer"},
        {"name": "b", "type": "bigint"}, {"name": "n", "type": "numeric"},
        {"name": "n2", "type": "numeric(10,2)"}, {"name": "f", "type": "float8"},
        {"name": "ok", "type": "boolean"}, {"name": "j", "type": "jsonb"},
        {"name": "ts", "type": "timestamptz"}, {"name": "d", "type": "date"},
        {"name": "u", "type": "uuid"}, {"name": "by", "type": "bytea"},
        {"name": "ta", "type": "text[]"}, {"name": "ia", "type": "int[]"}]', '{id}')
    FROM unnest(ARRAY['typ_row', 'typ_query']) t;
$$;

SELECT coco.create_app('typ');
SELECT pg_temp.declare_tables();
-- declare_row: each row in its jsonb spelling (to_jsonb of the source row).
SELECT count(coco.declare_row('typ', 'typ_row', to_jsonb(src))) AS declared FROM typ_src src;
-- declare_rows: the source table itself.
SELECT coco.declare_rows('typ', 'typ_query', 'SELECT * FROM typ_src') AS declared;
SELECT r->'inserted' AS inserted, r#>'{providers,postgres.row,inserted}' AS rows_inserted
  FROM coco.reconcile('typ') r;

-- The tables are created with the declared types.
SELECT attname, format_type(atttypid, atttypmod) AS type
  FROM pg_attribute WHERE attrelid = 'typ_row'::regclass AND attnum > 0 ORDER BY attnum;

-- Target = source, both ways, typed and as text.
SELECT 'typ_row' AS target,
       (SELECT count(*) FROM (SELECT * FROM typ_src EXCEPT SELECT * FROM typ_row) x) AS missing,
       (SELECT count(*) FROM (SELECT * FROM typ_row EXCEPT SELECT * FROM typ_src) x) AS extra,
       (SELECT count(*) FROM (SELECT src::text FROM typ_src src EXCEPT SELECT r::text FROM typ_row r) x) AS missing_text,
       (SELECT count(*) FROM (SELECT r::text FROM typ_row r EXCEPT SELECT src::text FROM typ_src src) x) AS extra_text
UNION ALL
SELECT 'typ_query',
       (SELECT count(*) FROM (SELECT * FROM typ_src EXCEPT SELECT * FROM typ_query) x),
       (SELECT count(*) FROM (SELECT * FROM typ_query EXCEPT SELECT * FROM typ_src) x),
       (SELECT count(*) FROM (SELECT src::text FROM typ_src src EXCEPT SELECT r::text FROM typ_query r) x),
       (SELECT count(*) FROM (SELECT r::text FROM typ_query r EXCEPT SELECT src::text FROM typ_src src) x);

-- A few values, as stored.
SELECT id, t, by, n, n2, f FROM typ_row ORDER BY id;
SELECT id, j, ts, d, ta, ia FROM typ_query ORDER BY id;
-- NULL and empty are kept apart.
SELECT id, t IS NULL AS t_null, ta IS NULL AS ta_null, ta = '{}' AS ta_empty, by IS NULL AS by_null
  FROM typ_row WHERE id IN (2, 3, 4) ORDER BY id;

-- Hand-written jsonb: bytea spelled "\\x…" (hex text), a jsonb value as a
-- JSON object, a numeric as a JSON string (its scale is kept), JSON escapes.
SELECT pg_temp.declare_tables();
SELECT count(coco.declare_row('typ', 'typ_row', to_jsonb(src))) AS declared FROM typ_src src;
SELECT coco.declare_rows('typ', 'typ_query', 'SELECT * FROM typ_src') AS declared;
SELECT coco.declare_row('typ', 'typ_row',
    '{"id": 7, "by": "\\x0102ff", "j": {"k": [true, false]}, "n": "12.3400", "ia": [7, 8],
      "t": "line1\nline2 \"q\" \\ \u20ac"}');
SELECT r#>'{providers,postgres.row}' AS rows FROM coco.reconcile('typ') r;
SELECT id, by, length(by) AS bytes, j, n, ia, t FROM typ_row WHERE id = 7;
SELECT t = E'line1\nline2 "q" \\ €' AS text_exact FROM typ_row WHERE id = 7;

-- The other way round: typ_row's rows now come from the query and
-- typ_query's from jsonb.  Same values, so nothing is written.
SELECT pg_temp.declare_tables();
SELECT coco.declare_rows('typ', 'typ_row', 'SELECT * FROM typ_src UNION ALL SELECT * FROM typ_row WHERE id = 7') AS declared;
SELECT count(coco.declare_row('typ', 'typ_query', to_jsonb(src))) AS declared FROM typ_src src;
SELECT r#>'{providers,postgres.row}' AS rows FROM coco.reconcile('typ') r;

-- Clean up.
SELECT coco.drop_app('typ');
DROP TABLE typ_src;
