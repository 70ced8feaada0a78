-- 01_keys_statediff: unit-level tests, through SQL, of stable keys
-- (coco.key_from_jsonb / key_to_jsonb / row_key) and of the decision rules
-- (coco.diff, coco.composite_diff, coco.table_decision).  Nothing here
-- touches an app or a table.
\set VERBOSITY default
\set SHOW_CONTEXT never

--
-- Stable keys
--

-- Round trip jsonb -> bytea -> jsonb is exact for every kind of key,
-- including nested tuples, bytes, uuid, symbol and the int64 limits.
SELECT k AS key, coco.key_to_jsonb(coco.key_from_jsonb(k)) = k AS round_trips
  FROM (VALUES ('null'::jsonb), ('true'), ('false'), ('0'), ('-42'),
               ('9223372036854775807'), ('-9223372036854775808'),
               ('""'), ('"abc"'), ('"héllo ✓ \"q\" \\ \n"'),
               ('[]'), ('[1, "a", [true, null, [[]]]]'),
               ('{"bytes": "\\x"}'), ('{"bytes": "\\x00ff0010"}'),
               ('{"uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}'),
               ('{"symbol": "@index"}'),
               ('["local", {"symbol": "@sql_command"}, {"bytes": "\\x00"}, {"uuid": "00000000-0000-0000-0000-000000000000"}]')) v(k);

-- bytea -> jsonb -> bytea is exact too.
SELECT coco.key_from_jsonb(coco.key_to_jsonb(b)) = b AS round_trips
  FROM (VALUES (coco.row_key(1::int, 'a'::text)), (coco.row_key('\x0001'::bytea)),
               (coco.key_from_jsonb('[[1, [2, [3]]], {"symbol": "s"}]'))) v(b);

-- The encoding itself: a tuple tag, items, end of tuple.  Integers are
-- 8 bytes big-endian with the sign bit flipped; strings end with 00 00.
SELECT coco.key_from_jsonb('[1, "a"]') AS tuple_1_a,
       coco.key_from_jsonb('-1') AS minus_one,
       coco.key_from_jsonb('{"bytes": "\\x00"}') AS bytes_00;

-- A 1.0 in JSON is the integer 1.
SELECT coco.key_from_jsonb('1.0') = coco.key_from_jsonb('1') AS one_point_zero_is_one;

-- row_key: the tuple of a row's primary-key values; every integer width
-- encodes alike, text and varchar alike, and it equals the jsonb spelling.
SELECT coco.key_to_jsonb(coco.row_key(1::int, 'a'::text, '\x01'::bytea, true,
                                      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid,
                                      7::smallint, 'v'::varchar)) AS row_key;
SELECT coco.row_key(5::smallint) = coco.row_key(5::bigint) AS int2_eq_int8,
       coco.row_key('x'::text) = coco.row_key('x'::varchar) AS text_eq_varchar,
       coco.row_key(1::int, 'a'::text) = coco.key_from_jsonb('[1, "a"]') AS eq_jsonb_spelling;

-- Order preservation: sorting by the encoding = sorting by value.
-- Integers, negatives and the limits included:
WITH v(i) AS (SELECT unnest(ARRAY[3, -1, 0, 256, -256, 255, 1, -9223372036854775808,
                                  9223372036854775807, -2, 65536]::bigint[]))
SELECT array_agg(i ORDER BY coco.key_from_jsonb(to_jsonb(i))) AS by_key,
       array_agg(i ORDER BY coco.key_from_jsonb(to_jsonb(i))) = array_agg(i ORDER BY i) AS same_order
  FROM v;
-- The same through row_key on integer columns of different widths:
SELECT coco.row_key((-1)::int) < coco.row_key(0::int) AS a,
       coco.row_key((-32768)::smallint) < coco.row_key((-1)::bigint) AS b,
       coco.row_key(2147483647::int) < coco.row_key(2147483648::bigint) AS c;
-- Strings, with prefixes of each other (byte order, as COLLATE "C"):
WITH v(s) AS (SELECT unnest(ARRAY['b', 'ab', '', 'a', 'abc', 'B', 'a b', 'aa', 'é', 'z']))
SELECT array_agg(s ORDER BY coco.key_from_jsonb(to_jsonb(s))) AS by_key,
       array_agg(s ORDER BY coco.key_from_jsonb(to_jsonb(s))) =
       array_agg(s ORDER BY s COLLATE "C") AS same_order
  FROM v;
-- Bytes, including zero bytes and prefixes:
WITH v(b) AS (SELECT unnest(ARRAY['\x01', '\x', '\x0000', '\x00', '\x00ff', '\xff', '\x0001']::bytea[]))
SELECT array_agg(b ORDER BY coco.row_key(b)) AS by_key,
       array_agg(b ORDER BY coco.row_key(b)) = array_agg(b ORDER BY b) AS same_order
  FROM v;
-- Tuples: element by element, a prefix first.
WITH v(k, o) AS (VALUES ('["b"]'::jsonb, 7), ('["a", 1, 2]', 5), ('[]', 1), ('["a"]', 2),
                        ('["ab"]', 6), ('["a", 1]', 4), ('["a", null]', 3))
SELECT array_agg(k ORDER BY coco.key_from_jsonb(k)) AS by_key,
       array_agg(o ORDER BY coco.key_from_jsonb(k)) = array_agg(o ORDER BY o) AS same_order
  FROM v;

-- Invalid keys are refused with invalid_parameter_value (22023).
SELECT coco.key_from_jsonb('1.5');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_from_jsonb('{"foo": "x"}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_from_jsonb('{}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_from_jsonb('{"bytes": "\\x01", "symbol": "s"}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_from_jsonb('{"bytes": 1}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_from_jsonb('[1, {"symbol": null}]');
\echo :LAST_ERROR_SQLSTATE
-- Nested more than 32 levels deep:
SELECT coco.key_from_jsonb((repeat('[', 40) || '1' || repeat(']', 40))::jsonb);
\echo :LAST_ERROR_SQLSTATE
-- A scalar 33 levels deep is refused too (found by fuzzing: it was accepted,
-- then refused as corrupt on the way back); 32 levels round-trip.
SELECT coco.key_from_jsonb((repeat('[', 33) || '1' || repeat(']', 33))::jsonb);
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_to_jsonb(coco.key_from_jsonb((repeat('[', 32) || '1' || repeat(']', 32))::jsonb))
       = (repeat('[', 32) || '1' || repeat(']', 32))::jsonb AS round_trips;
-- An integer past 64 bits is out of range (22003).
SELECT coco.key_from_jsonb('9223372036854775808');
\echo :LAST_ERROR_SQLSTATE
-- Bad payloads of tagged forms are refused by the type's own input function.
SELECT coco.key_from_jsonb('{"bytes": "\\xzz"}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_from_jsonb('{"uuid": "not-a-uuid"}');
\echo :LAST_ERROR_SQLSTATE
-- A malformed encoding is refused: unknown tag, truncated integer, empty,
-- trailing bytes, unterminated tuple, unterminated string.
SELECT coco.key_to_jsonb('\x99');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_to_jsonb('\x1000');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_to_jsonb('\x');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_to_jsonb('\x0101');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_to_jsonb('\x6001');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_to_jsonb('\x206100');
\echo :LAST_ERROR_SQLSTATE
-- row_key refuses NULL key values and types that cannot be keys.
SELECT coco.row_key(1::int, NULL::text);
\echo :LAST_ERROR_SQLSTATE
SELECT coco.row_key(1.5::float8);
\echo :LAST_ERROR_SQLSTATE
SELECT coco.row_key('10:00'::time);
\echo :LAST_ERROR_SQLSTATE

--
-- coco.diff: desired and previous records are fingerprinted bytes;
-- NULL desired = no longer declared.
--
SELECT c AS "case", coco.diff(d, p, m) AS action
  FROM (VALUES
    ('first insert',                      'a'::bytea, '{}'::bytea[], true),
    ('first insert, prev null',           'a',        NULL,          false),
    ('no change',                         'a',        '{a}',         false),
    ('change',                            'b',        '{a}',         false),
    ('delete',                            NULL,       '{a}',         false),
    ('delete, may be missing',            NULL,       '{a}',         true),
    ('never existed, not declared',       NULL,       '{}',          false),
    ('several prev, all equal',           'a',        '{a,a}',       false),
    ('several prev, one differs',         'a',        '{a,b}',       false),
    ('several prev, first differs',       'a',        '{b,a}',       false),
    ('same, but prev may be missing',     'a',        '{a}',         true),
    ('several equal, may be missing',     'a',        '{a,a}',       true)
  ) v(c, d, p, m);
-- The prev_may_be_missing argument defaults to false.
SELECT coco.diff('a', '{a}') AS action;
-- A null previous record is refused.
SELECT coco.diff('a', ARRAY[NULL]::bytea[], false);
\echo :LAST_ERROR_SQLSTATE

--
-- coco.composite_diff: records {"main": …, "subs": {name: …}}, the rules
-- the table handler uses (REFERENCE.md "Table reconcile: decision table").
--
SELECT c AS "case", coco.composite_diff(d, p, m) AS result
  FROM (VALUES
    ('first run',
     '{"main": "pk int", "subs": {"v": "text"}}'::jsonb, '{}'::jsonb[], true),
    ('no change',
     '{"main": "pk int", "subs": {"v": "text"}}', ARRAY['{"main": "pk int", "subs": {"v": "text"}}'::jsonb], false),
    ('add col',
     '{"main": "pk int", "subs": {"v": "text", "w": "int"}}', ARRAY['{"main": "pk int", "subs": {"v": "text"}}'::jsonb], false),
    ('drop col',
     '{"main": "pk int", "subs": {"v": "text"}}', ARRAY['{"main": "pk int", "subs": {"v": "text", "w": "int"}}'::jsonb], false),
    ('retype',
     '{"main": "pk int", "subs": {"v": "int"}}', ARRAY['{"main": "pk int", "subs": {"v": "text"}}'::jsonb], false),
    ('pk change',
     '{"main": "pk bigint", "subs": {"v": "text"}}', ARRAY['{"main": "pk int", "subs": {"v": "text"}}'::jsonb], false),
    ('undeclared (no per-sub transitions)',
     NULL, ARRAY['{"main": "pk int", "subs": {"v": "text"}}'::jsonb], false),
    ('full reprocess, same schema',
     '{"main": "pk int", "subs": {"v": "text"}}', ARRAY['{"main": "pk int", "subs": {"v": "text"}}'::jsonb], true),
    ('full reprocess + retype',
     '{"main": "pk int", "subs": {"v": "int"}}', ARRAY['{"main": "pk int", "subs": {"v": "text"}}'::jsonb], true),
    ('C3: prev [+extra, -extra], desired -extra',
     '{"main": "pk int", "subs": {"v": "text"}}',
     ARRAY['{"main": "pk int", "subs": {"v": "text", "extra": "int"}}'::jsonb, '{"main": "pk int", "subs": {"v": "text"}}'], false),
    ('failed add: prev [-w, +w], desired +w',
     '{"main": "pk int", "subs": {"v": "text", "w": "int"}}',
     ARRAY['{"main": "pk int", "subs": {"v": "text"}}'::jsonb, '{"main": "pk int", "subs": {"v": "text", "w": "int"}}'], false),
    ('failed add: prev [-w, +w], desired -w',
     '{"main": "pk int", "subs": {"v": "text"}}',
     ARRAY['{"main": "pk int", "subs": {"v": "text"}}'::jsonb, '{"main": "pk int", "subs": {"v": "text", "w": "int"}}'], false),
    ('failed first create, retry',
     '{"main": "pk int", "subs": {"v": "text"}}', ARRAY['{"main": "pk int", "subs": {"v": "text"}}'::jsonb], true),
    ('prev ["int", "bigint"] vs "int"',
     '{"main": "pk int", "subs": {"v": "int"}}',
     ARRAY['{"main": "pk int", "subs": {"v": "int"}}'::jsonb, '{"main": "pk int", "subs": {"v": "bigint"}}'], false),
    ('pk change with multiple prev',
     '{"main": "pk int", "subs": {"v": "text"}}',
     ARRAY['{"main": "pk int", "subs": {"v": "text"}}'::jsonb, '{"main": "pk bigint", "subs": {"v": "text"}}'], false),
    ('none and empty inputs',
     NULL, '{}', false),
    ('none and null inputs',
     NULL, NULL, false)
  ) v(c, d, p, m);
-- Malformed composite records are refused (22023).
SELECT coco.composite_diff('[1]', '{}', false);
\echo :LAST_ERROR_SQLSTATE
SELECT coco.composite_diff('{"main": 1}', '{}', false);
\echo :LAST_ERROR_SQLSTATE
SELECT coco.composite_diff('{"main": "m", "subs": [1]}', '{}', false);
\echo :LAST_ERROR_SQLSTATE
SELECT coco.composite_diff('{"main": "m", "subs": {"v": 1}}', '{}', false);
\echo :LAST_ERROR_SQLSTATE

--
-- coco.table_decision: the postgres.table handler's decision on stored
-- specs.  pg_temp.spec('name:type[:nn],…', pk, managed_by) builds one.
--
CREATE FUNCTION pg_temp.spec(cols text, pk text[] DEFAULT '{id}', managed text DEFAULT 'system')
RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('schema', 'public', 'table', 't', 'managed_by', managed,
           'primary_key', to_jsonb(pk),
           'columns', (SELECT jsonb_agg(jsonb_build_object('name', split_part(c, ':', 1),
                                                           'type', split_part(c, ':', 2),
                                                           'nullable', split_part(c, ':', 3) <> 'nn')
                                        ORDER BY o)
                         FROM unnest(string_to_array(cols, ',')) WITH ORDINALITY AS u(c, o)))
$$;
SELECT c AS "case", r->>'action' AS action, r->>'invalidation' AS invalidation, r->'detail' AS detail
  FROM (VALUES
    ('first run', coco.table_decision(pg_temp.spec('id:integer:nn,v:text'), '{}', true)),
    ('no change', coco.table_decision(pg_temp.spec('id:integer:nn,v:text'),
                                      ARRAY[pg_temp.spec('id:integer:nn,v:text')], false)),
    ('add col', coco.table_decision(pg_temp.spec('id:integer:nn,v:text,w:integer'),
                                    ARRAY[pg_temp.spec('id:integer:nn,v:text')], false)),
    ('drop col', coco.table_decision(pg_temp.spec('id:integer:nn'),
                                     ARRAY[pg_temp.spec('id:integer:nn,v:text')], false)),
    ('retype', coco.table_decision(pg_temp.spec('id:integer:nn,v:integer'),
                                   ARRAY[pg_temp.spec('id:integer:nn,v:text')], false)),
    ('not null relaxed', coco.table_decision(pg_temp.spec('id:integer:nn,v:text'),
                                             ARRAY[pg_temp.spec('id:integer:nn,v:text:nn')], false)),
    ('not null tightened', coco.table_decision(pg_temp.spec('id:integer:nn,v:text:nn'),
                                               ARRAY[pg_temp.spec('id:integer:nn,v:text')], false)),
    ('pk type change', coco.table_decision(pg_temp.spec('id:bigint:nn,v:text'),
                                           ARRAY[pg_temp.spec('id:integer:nn,v:text')], false)),
    ('pk column change', coco.table_decision(pg_temp.spec('id:integer:nn,k:text:nn,v:text', '{id,k}'),
                                             ARRAY[pg_temp.spec('id:integer:nn,k:text:nn,v:text')], false)),
    ('undeclared', coco.table_decision(NULL, ARRAY[pg_temp.spec('id:integer:nn,v:text')], false)),
    ('never existed, undeclared', coco.table_decision(NULL, '{}', false)),
    ('full reprocess, same schema', coco.table_decision(pg_temp.spec('id:integer:nn,v:text'),
                                                        ARRAY[pg_temp.spec('id:integer:nn,v:text')], true)),
    ('full reprocess + retype', coco.table_decision(pg_temp.spec('id:integer:nn,v:integer'),
                                                    ARRAY[pg_temp.spec('id:integer:nn,v:text')], true)),
    ('C3: prev [+extra, -extra], desired -extra',
     coco.table_decision(pg_temp.spec('id:integer:nn,v:text'),
                         ARRAY[pg_temp.spec('id:integer:nn,v:text,extra:text'), pg_temp.spec('id:integer:nn,v:text')], false)),
    ('failed add: prev [-w, +w], desired +w',
     coco.table_decision(pg_temp.spec('id:integer:nn,v:text,w:text'),
                         ARRAY[pg_temp.spec('id:integer:nn,v:text'), pg_temp.spec('id:integer:nn,v:text,w:text')], false)),
    ('failed add: prev [-w, +w], desired -w',
     coco.table_decision(pg_temp.spec('id:integer:nn,v:text'),
                         ARRAY[pg_temp.spec('id:integer:nn,v:text'), pg_temp.spec('id:integer:nn,v:text,w:text')], false)),
    ('pk change with multiple prev',
     coco.table_decision(pg_temp.spec('id:bigint:nn,v:text'),
                         ARRAY[pg_temp.spec('id:integer:nn,v:text'), pg_temp.spec('id:bigint:nn,v:text')], false)),
    ('user-managed, changed', coco.table_decision(pg_temp.spec('id:integer:nn,v:integer', '{id}', 'user'),
                                                  ARRAY[pg_temp.spec('id:integer:nn,v:text', '{id}', 'user')], false)),
    ('user-managed, pk retyped alike', coco.table_decision(pg_temp.spec('id:bigint:nn,v:text', '{id}', 'user'),
                                                     ARRAY[pg_temp.spec('id:integer:nn,v:text', '{id}', 'user')], false)),
    ('user-managed, pk changed', coco.table_decision(pg_temp.spec('id:integer:nn,k2:integer:nn,v:text', '{id,k2}', 'user'),
                                                     ARRAY[pg_temp.spec('id:integer:nn,k2:integer:nn,v:text', '{id}', 'user')], false)),
    ('user-managed, undeclared', coco.table_decision(NULL, ARRAY[pg_temp.spec('id:integer:nn,v:text', '{id}', 'user')], false)),
    ('system -> user, changed', coco.table_decision(pg_temp.spec('id:integer:nn,v:integer', '{id}', 'user'),
                                                    ARRAY[pg_temp.spec('id:integer:nn,v:text')], false)),
    ('user -> system, changed', coco.table_decision(pg_temp.spec('id:integer:nn,v:integer'),
                                                    ARRAY[pg_temp.spec('id:integer:nn,v:text', '{id}', 'user')], false))
  ) v(c, r);
