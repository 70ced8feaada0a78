-- 24_key_types: primary keys of type numeric, date, timestamp, timestamptz
-- and char(n) are stable keys.  Equal values are one key however they are
-- spelled (1.0 and 1.00, 'a' and 'a  ' in a char(3), one instant in two
-- time zones); the bytewise order of the keys is the order of the values;
-- keys go to their jsonb spelling and back unchanged, whatever DateStyle
-- and TimeZone say; rows go through insert, update, delete (found from the
-- key alone) and re-reconciles that write nothing.
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE FUNCTION pg_temp.summary(r jsonb) RETURNS text LANGUAGE sql AS $$
  SELECT format('table(+%s ~%s -%s =%s) row(+%s ~%s -%s =%s)',
                r#>>'{providers,postgres.table,inserted}', r#>>'{providers,postgres.table,updated}',
                r#>>'{providers,postgres.table,deleted}', r#>>'{providers,postgres.table,unchanged}',
                r#>>'{providers,postgres.row,inserted}', r#>>'{providers,postgres.row,updated}',
                r#>>'{providers,postgres.row,deleted}', r#>>'{providers,postgres.row,unchanged}')
$$;
CREATE FUNCTION pg_temp.sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

--
-- 1. The jsonb spelling of each new kind of key item.
--
SELECT coco.key_to_jsonb(coco.row_key(v)) AS key
  FROM unnest(ARRAY[1.0, 1.00, -0.00120, 0.0, 123000, 12.5, 'NaN', 'Infinity', '-Infinity']::numeric[]) v;
SELECT coco.key_to_jsonb(coco.row_key(v)) AS key
  FROM unnest(ARRAY['2024-02-29', '0044-03-15 BC', '4714-11-24 BC', 'infinity', '-infinity']::date[]) v;
SELECT coco.key_to_jsonb(coco.row_key(v)) AS key
  FROM unnest(ARRAY['2024-02-29 10:11:12.5', '0044-03-15 12:00 BC', 'infinity', '-infinity']::timestamp[]) v;
SELECT coco.key_to_jsonb(coco.row_key(v)) AS key
  FROM unnest(ARRAY['2024-02-29 10:11:12.5+02', '0044-03-15 12:00+00 BC', 'infinity']::timestamptz[]) v;
SELECT coco.key_to_jsonb(coco.row_key(v)) AS key
  FROM unnest(ARRAY['a', 'a  ', ' a', '', 'a b']::char(3)[]) v;
-- A composite key mixing them.
SELECT coco.key_to_jsonb(coco.row_key(12.50::numeric(10,2), '2024-01-01'::date,
                                      '2024-01-01 12:00+01'::timestamptz, 'x'::char(2), 7));

-- Equal values are one key, spelled one way: numeric scale, char(n)
-- padding, the time zone a timestamptz was written in.
SELECT coco.row_key(1.0::numeric) = coco.row_key(1.000::numeric) AS numeric_scale,
       coco.row_key(-0.0::numeric) = coco.row_key(0::numeric) AS numeric_zero,
       coco.row_key('a'::char(3)) = coco.row_key('a  '::char(3)) AS char_padding,
       coco.row_key('a'::char(1)) = coco.row_key('a'::char(8)) AS char_length,
       coco.row_key('2024-01-01 10:00+02'::timestamptz) = coco.row_key('2024-01-01 08:00Z'::timestamptz) AS same_instant;
-- The session's DateStyle and TimeZone change neither the key nor its spelling.
CREATE TEMP TABLE spelled AS
  SELECT coco.row_key('2024-01-01 10:00+02'::timestamptz, '2024-03-01'::date,
                      '2024-03-01 01:02:03'::timestamp) AS k;
SET TimeZone = 'America/New_York';
SET DateStyle = 'SQL, DMY';
SELECT coco.row_key('2024-01-01 10:00+02'::timestamptz, '2024-03-01'::date,
                    '2024-03-01 01:02:03'::timestamp) = k AS same_key,
       coco.key_to_jsonb(k) AS spelling,
       coco.key_from_jsonb(coco.key_to_jsonb(k)) = k AS round_trip
  FROM spelled;
SET TimeZone = 'Asia/Kolkata';
SET DateStyle = 'German';
SELECT coco.key_to_jsonb(k) AS spelling, coco.key_from_jsonb(coco.key_to_jsonb(k)) = k AS round_trip
  FROM spelled;
-- Spelled by hand: any input the type accepts, a numeric also as a JSON number.
SELECT coco.key_from_jsonb('[{"numeric": "1.500"}, {"numeric": 1.5}, {"numeric": "15e-1"}]')
     = coco.row_key(1.5::numeric, 1.5::numeric, 1.5::numeric) AS numeric_by_hand,
       coco.key_from_jsonb('[{"timestamptz": "2024-01-01 10:00+02"}, {"timestamptz": "2024-01-01T08:00:00Z"}]')
     = coco.row_key('2024-01-01 08:00Z'::timestamptz, '2024-01-01 08:00Z'::timestamptz) AS timestamptz_by_hand,
       coco.key_from_jsonb('[{"date": "2024-03-01"}, "a"]')
     = coco.row_key('2024-03-01'::date, 'a  '::char(3)) AS date_char_by_hand;
RESET TimeZone;
RESET DateStyle;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

--
-- 2. Order: for every pair of values, the bytewise order of their keys is
-- the order of the values (and equal keys are equal values), and every key
-- goes to jsonb and back unchanged.  Many values of each type: negatives,
-- fractions, huge and tiny numerics, infinities, NaN, BC dates.
--
CREATE TEMP TABLE nums AS
  SELECT ((g * 7919) % 2001 - 1000)::numeric / (10::numeric ^ (g % 9)) AS v FROM generate_series(1, 150) g
  UNION ALL
  SELECT v::numeric FROM unnest(ARRAY['NaN', 'Infinity', '-Infinity', '0', '-0.000', '0.1', '0.10', '0.12',
      '0.123', '0.1234', '1', '1.0', '9.99', '10', '10.01', '100', '-0.1', '-0.12', '-0.123', '-1', '-10',
      '-100', '1e100', '-1e100', '1e-100', '-1e-100', '123456789012345678901234567890.123456789',
      '-123456789012345678901234567890.123456789', '9999999999999999999', '10000000000000000000',
      '1e-16383', '-1e-16383', '0.99999999999999999999', '1.00000000000000000001']) v
  UNION ALL
  SELECT ('9' || repeat('0', 131071))::numeric
  UNION ALL
  SELECT -('9' || repeat('0', 131071))::numeric;
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE (a.v < b.v) <> (coco.row_key(a.v) < coco.row_key(b.v))
                           OR (a.v = b.v) <> (coco.row_key(a.v) = coco.row_key(b.v))) AS misordered
  FROM nums a, nums b;
SELECT count(*) FILTER (WHERE coco.key_from_jsonb(coco.key_to_jsonb(coco.row_key(v))) <> coco.row_key(v)) AS bad_round_trips,
       count(*) FILTER (WHERE (coco.key_to_jsonb(coco.row_key(v))->0->>'numeric')::numeric <> v) AS bad_values
  FROM nums;

CREATE TEMP TABLE dates AS
  SELECT '2000-01-01'::date + ((g * 104729) % 4000000 - 2000000) AS v FROM generate_series(1, 200) g
  UNION ALL
  SELECT v::date FROM unnest(ARRAY['infinity', '-infinity', '4714-11-24 BC', '5874897-12-31', '0001-01-01',
      '0001-12-31 BC', '2000-01-01', '1999-12-31', '1970-01-01']) v;
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE (a.v < b.v) <> (coco.row_key(a.v) < coco.row_key(b.v))
                           OR (a.v = b.v) <> (coco.row_key(a.v) = coco.row_key(b.v))) AS misordered
  FROM dates a, dates b;
SELECT count(*) FILTER (WHERE coco.key_from_jsonb(coco.key_to_jsonb(coco.row_key(v))) <> coco.row_key(v)) AS bad_round_trips,
       count(*) FILTER (WHERE (coco.key_to_jsonb(coco.row_key(v))->0->>'date')::date <> v) AS bad_values
  FROM dates;

CREATE TEMP TABLE stamps AS
  SELECT '2000-01-01'::timestamp + ((g * 104729) % 4000000 - 2000000) * interval '1 day'
         + (g * 7777777) % 86400000000 * interval '1 microsecond' AS v FROM generate_series(1, 200) g
  UNION ALL
  SELECT v::timestamp FROM unnest(ARRAY['infinity', '-infinity', '4714-11-24 00:00 BC',
      '294276-12-31 23:59:59.999999', '2000-01-01', '1999-12-31 23:59:59.999999', '2000-01-01 00:00:00.000001']) v;
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE (a.v < b.v) <> (coco.row_key(a.v) < coco.row_key(b.v))
                           OR (a.v = b.v) <> (coco.row_key(a.v) = coco.row_key(b.v))) AS misordered
  FROM stamps a, stamps b;
SELECT count(*) FILTER (WHERE coco.key_from_jsonb(coco.key_to_jsonb(coco.row_key(v))) <> coco.row_key(v)) AS bad_round_trips,
       count(*) FILTER (WHERE (coco.key_to_jsonb(coco.row_key(v))->0->>'timestamp')::timestamp <> v) AS bad_values
  FROM stamps;

-- timestamptz: the instants of those timestamps in UTC, and the same
-- instants again as local times of +05:30 (the POSIX zone UTC-05:30), read
-- in one session time zone and compared in another.
SET TimeZone = 'Pacific/Chatham';
CREATE TEMP TABLE stampstz AS
  SELECT v AT TIME ZONE 'UTC' AS v FROM stamps
  UNION ALL
  SELECT (v + interval '5 hours 30 minutes') AT TIME ZONE 'UTC-05:30' FROM stamps
   WHERE v < '294276-01-01';
SET TimeZone = 'America/St_Johns';
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE (a.v < b.v) <> (coco.row_key(a.v) < coco.row_key(b.v))
                           OR (a.v = b.v) <> (coco.row_key(a.v) = coco.row_key(b.v))) AS misordered
  FROM stampstz a, stampstz b;
SELECT count(DISTINCT v) AS instants, count(DISTINCT coco.row_key(v)) AS keys,
       count(*) FILTER (WHERE coco.key_from_jsonb(coco.key_to_jsonb(coco.row_key(v))) <> coco.row_key(v)) AS bad_round_trips,
       count(*) FILTER (WHERE (coco.key_to_jsonb(coco.row_key(v))->0->>'timestamptz')::timestamptz <> v) AS bad_values,
       count(*) FILTER (WHERE coco.key_to_jsonb(coco.row_key(v))->0->>'timestamptz' NOT LIKE '%+00:00%'
                          AND isfinite(v)) AS not_utc
  FROM stampstz;
SET TimeZone = 'UTC';

-- char(n): strings order bytewise, as under the C collation.
CREATE TEMP TABLE chars AS
  SELECT v::char(4) AS v
    FROM unnest(ARRAY['', ' ', 'a', 'a ', 'a  ', ' a', 'a b', 'ab', 'b', 'B', 'ä', E'a\t', E'a\x01', 'abcd', 'abc',
                      'zzzz', '~', '0', '09', '9']) v;
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE (a.v COLLATE "C" < b.v) <> (coco.row_key(a.v) < coco.row_key(b.v))
                           OR (a.v = b.v) <> (coco.row_key(a.v) = coco.row_key(b.v))) AS misordered
  FROM chars a, chars b;
SELECT count(*) FILTER (WHERE coco.key_from_jsonb(coco.key_to_jsonb(coco.row_key(v))) <> coco.row_key(v)) AS bad_round_trips,
       count(*) FILTER (WHERE (coco.key_to_jsonb(coco.row_key(v))->>0)::char(4) <> v) AS bad_values
  FROM chars;

-- A composite key orders by its first column, then the next.
CREATE TEMP TABLE combos AS
  SELECT n.v AS n, d.v AS d FROM (SELECT v FROM nums WHERE abs(v) < 1000 LIMIT 20) n,
                                (SELECT v FROM dates LIMIT 20) d;
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE ((a.n, a.d) < (b.n, b.d)) <> (coco.row_key(a.n, a.d) < coco.row_key(b.n, b.d))
                           OR ((a.n, a.d) = (b.n, b.d)) <> (coco.row_key(a.n, a.d) = coco.row_key(b.n, b.d))) AS misordered
  FROM combos a, combos b;

--
-- 3. Tables keyed by each type, and by all of them: insert, re-reconcile
-- (nothing written), update, delete by key.
--
CREATE TABLE kt_src (n numeric(12,3), d date, t timestamp, tz timestamptz, c char(3), v text);
INSERT INTO kt_src VALUES
  (1.5, '2024-01-01', '2024-01-01 10:00', '2024-01-01 10:00+00', 'a', 'one'),
  (-1e8, '0044-03-15 BC', '0044-03-15 12:00 BC', '0044-03-15 12:00+00 BC', 'ab', 'two'),
  (0, 'infinity', 'infinity', 'infinity', 'abc', 'three'),
  ('NaN', '-infinity', '-infinity', '-infinity', ' ', 'four'),
  (0.001, '1970-01-01', '1970-01-01 00:00:00.000001', '1970-01-01 00:00:00.000001+00', 'z', 'five');
-- Declared with declare_rows, or (by_row) with declare_row for three of
-- the tables, the keys spelled differently but equal: 1.5 as "1.50", char(3)
-- 'a' as "a  ", each instant in +09:00.
CREATE FUNCTION pg_temp.declare_all(by_row boolean DEFAULT false) RETURNS void LANGUAGE sql AS $$
  SELECT coco.declare_table('kt', 'kt_n', '[{"name": "n", "type": "numeric(12,3)"}, {"name": "v", "type": "text"}]', '{n}');
  SELECT coco.declare_table('kt', 'kt_d', '[{"name": "d", "type": "date"}, {"name": "v", "type": "text"}]', '{d}');
  SELECT coco.declare_table('kt', 'kt_t', '[{"name": "t", "type": "timestamp"}, {"name": "v", "type": "text"}]', '{t}');
  SELECT coco.declare_table('kt', 'kt_tz', '[{"name": "tz", "type": "timestamptz"}, {"name": "v", "type": "text"}]', '{tz}');
  SELECT coco.declare_table('kt', 'kt_c', '[{"name": "c", "type": "char(3)"}, {"name": "v", "type": "text"}]', '{c}');
  SELECT coco.declare_table('kt', 'kt_all',
      '[{"name": "n", "type": "numeric(12,3)"}, {"name": "d", "type": "date"}, {"name": "t", "type": "timestamp"},
        {"name": "tz", "type": "timestamptz"}, {"name": "c", "type": "char(3)"}, {"name": "v", "type": "text"}]',
      '{c,tz,n,d,t}');
  SELECT coco.declare_rows('kt', 'kt_d', 'SELECT d, v FROM kt_src');
  SELECT coco.declare_rows('kt', 'kt_t', 'SELECT t, v FROM kt_src');
  SELECT coco.declare_rows('kt', 'kt_all', 'SELECT * FROM kt_src');
  SELECT coco.declare_rows('kt', 'kt_n', 'SELECT n, v FROM kt_src') WHERE NOT by_row;
  SELECT coco.declare_rows('kt', 'kt_tz', 'SELECT tz, v FROM kt_src') WHERE NOT by_row;
  SELECT coco.declare_rows('kt', 'kt_c', 'SELECT c, v FROM kt_src') WHERE NOT by_row;
  SELECT count(coco.declare_row('kt', 'kt_n', jsonb_build_object('n', CASE WHEN n = 1.5 THEN '1.50' ELSE n::text END, 'v', v)))
    FROM kt_src WHERE by_row;
  SELECT count(coco.declare_row('kt', 'kt_c', jsonb_build_object('c', CASE WHEN c = 'a' THEN 'a  ' ELSE c::text END, 'v', v)))
    FROM kt_src WHERE by_row;
  SELECT count(coco.declare_row('kt', 'kt_tz', jsonb_build_object('tz',
           CASE WHEN isfinite(tz) THEN to_char(tz AT TIME ZONE 'UTC-09', 'YYYY-MM-DD HH24:MI:SS.US "+09:00" AD')
                ELSE tz::text END, 'v', v)))
    FROM kt_src WHERE by_row;
$$;
SELECT coco.create_app('kt');
SELECT pg_temp.declare_all();
SELECT pg_temp.summary(coco.reconcile('kt'));
CREATE FUNCTION pg_temp.show() RETURNS TABLE (tbl text, rows text) LANGUAGE sql AS $$
  SELECT 'kt_n', string_agg(format('%s=%s', n, v), ', ' ORDER BY n) FROM kt_n
  UNION ALL SELECT 'kt_d', string_agg(format('%s=%s', d, v), ', ' ORDER BY d) FROM kt_d
  UNION ALL SELECT 'kt_t', string_agg(format('%s=%s', t, v), ', ' ORDER BY t) FROM kt_t
  UNION ALL SELECT 'kt_tz', string_agg(format('%s=%s', tz, v), ', ' ORDER BY tz) FROM kt_tz
  UNION ALL SELECT 'kt_c', string_agg(format('[%s]=%s', c, v), ', ' ORDER BY c) FROM kt_c
  UNION ALL SELECT 'kt_all', string_agg(v, ', ' ORDER BY c, tz, n, d, t) FROM kt_all
$$;
SELECT * FROM pg_temp.show();
-- The row keys of kt_all (primary key c, tz, n, d, t), in key order.
SELECT coco.key_to_jsonb(coco.row_key(c, tz, n, d, t)) AS key, v
  FROM kt_all ORDER BY coco.row_key(c, tz, n, d, t);

-- Declared again, in another time zone and DateStyle: nothing is written.
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'SQL, DMY';
SELECT pg_temp.declare_all();
SELECT pg_temp.summary(coco.reconcile('kt'));
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

-- The same rows, their keys spelled differently but equal: nothing is written.
SELECT pg_temp.declare_all(true);
SELECT pg_temp.summary(coco.reconcile('kt'));
SELECT * FROM pg_temp.show() WHERE tbl IN ('kt_n', 'kt_c', 'kt_tz');

-- Update two rows, delete two (found from their keys alone), add one.
UPDATE kt_src SET v = v || '!' WHERE v IN ('one', 'four');
DELETE FROM kt_src WHERE v IN ('two', 'three');
INSERT INTO kt_src VALUES (-0.5, '2000-02-29', '2000-02-29 23:59:59', '2000-02-29 23:59:59-12', 'y', 'six');
SELECT pg_temp.declare_all();
SELECT pg_temp.summary(coco.reconcile('kt'));
SELECT * FROM pg_temp.show();
SELECT pg_temp.declare_all(true);
SELECT pg_temp.summary(coco.reconcile('kt'));

-- Every row deleted: the tables are empty.
DELETE FROM kt_src;
SELECT pg_temp.declare_all();
SELECT pg_temp.summary(coco.reconcile('kt'));
SELECT * FROM pg_temp.show();
SELECT coco.drop_app('kt');

-- One row declared twice under two spellings of its key is one key: the
-- later declaration replaces the earlier one.
SELECT coco.create_app('kt_dup');
SELECT coco.declare_table('kt_dup', 'kt_dn', '[{"name": "n", "type": "numeric"}, {"name": "v", "type": "text"}]', '{n}');
SELECT coco.declare_row('kt_dup', 'kt_dn', '{"n": 1.5, "v": "x"}');
SELECT coco.declare_row('kt_dup', 'kt_dn', '{"n": "1.500", "v": "y"}');
SELECT pg_temp.summary(coco.reconcile('kt_dup'));
SELECT n, v FROM kt_dn;
SELECT coco.declare_table('kt_dup', 'kt_dc', '[{"name": "c", "type": "char(3)"}, {"name": "v", "type": "text"}]', '{c}');
SELECT coco.declare_row('kt_dup', 'kt_dc', '{"c": "a", "v": "x"}');
SELECT coco.declare_row('kt_dup', 'kt_dc', '{"c": "a  ", "v": "y"}');
SELECT pg_temp.summary(coco.reconcile('kt_dup'));
SELECT c, v FROM kt_dc;
SELECT coco.declare_table('kt_dup', 'kt_dtz', '[{"name": "tz", "type": "timestamptz"}, {"name": "v", "type": "text"}]', '{tz}');
SELECT coco.declare_row('kt_dup', 'kt_dtz', '{"tz": "2024-01-01 10:00+00", "v": "x"}');
SELECT coco.declare_row('kt_dup', 'kt_dtz', '{"tz": "2024-01-01 19:00+09", "v": "y"}');
SELECT pg_temp.summary(coco.reconcile('kt_dup'));
SELECT tz AT TIME ZONE 'UTC' AS tz_utc, v FROM kt_dtz;
-- in two components, the two spellings collide (23505)
SELECT coco.declare_row('kt_dup', 'kt_dtz', '{"tz": "2024-01-01 10:00+00", "v": "x"}', '{a}');
SELECT coco.declare_row('kt_dup', 'kt_dtz', '{"tz": "2024-01-01 19:00+09", "v": "y"}', '{b}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.drop_app('kt_dup');

--
-- 4. Refusals, each with its SQLSTATE.
--
-- still not a key type (0A000)
SELECT coco.row_key(1.5::float8);
\echo :LAST_ERROR_SQLSTATE
SELECT coco.row_key('1 day'::interval);
\echo :LAST_ERROR_SQLSTATE
SELECT coco.create_app('kt_bad');
SELECT coco.declare_table('kt_bad', 'kt_bad', '[{"name": "t", "type": "time"}]', '{t}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.drop_app('kt_bad');
-- the jsonb spelling: a value its type does not accept
SELECT coco.key_from_jsonb('{"numeric": "one"}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_from_jsonb('{"date": "2024-02-30"}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_from_jsonb('{"timestamp": "not a time"}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_from_jsonb('{"timestamptz": "294277-01-01 00:00+00"}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_from_jsonb('{"numeric": true}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_from_jsonb('{"date": 20240101}');
\echo :LAST_ERROR_SQLSTATE
SELECT coco.key_from_jsonb('{"time": "10:00"}');
\echo :LAST_ERROR_SQLSTATE
-- encodings that are not a key (22P03): a numeric with an unknown class,
-- no digits, a leading or trailing zero digit (not canonical), a digit
-- out of range, an exponent past numeric's range, no terminator; a date
-- or timestamp out of range, or cut short.
SELECT c AS "case", pg_temp.sqlstate_of(format('SELECT coco.key_to_jsonb(%L::bytea)', k)) AS sqlstate
  FROM (VALUES ('numeric class', '\x1107'), ('numeric no digits', '\x11048000000100'),
               ('numeric leading zero', '\x110480000001010200'),
               ('numeric trailing zero', '\x110480000001020100'),
               ('numeric digit 11', '\x1104800000010c00'),
               ('numeric exponent', '\x1104800200010200'),
               ('numeric unterminated', '\x1104800000010202'),
               ('numeric well formed', '\x1104800000010200'),
               ('negative numeric well formed', '\x11027ffffffefdff'),
               ('date out of range', '\x128000000080000000'),
               ('timestamp out of range', '\x13fffffffffffffff0'),
               ('timestamptz cut short', '\x1480000000')) v(c, k);
-- the well-formed ones above
SELECT coco.key_to_jsonb('\x1104800000010200'), coco.key_to_jsonb('\x11027ffffffefdff');
