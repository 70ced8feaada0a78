-- coco_target demo: declare a derived table and its rows, reconcile, change
-- the source, declare again, reconcile again. Run it with: bash scripts/demo.sh
-- (placeholder: to be finished alongside the extension's API)

\echo '== 1. Install the extension (its objects live in schema coco).'
CREATE EXTENSION coco_target;

\echo '== 2. A source table: the documents we want to derive a table from.'
CREATE TABLE src_docs (id bigint PRIMARY KEY, title text, body text);
INSERT INTO src_docs VALUES
    (1, 'Hello', 'The first document.'),
    (2, 'World', 'A second, somewhat longer document.'),
    (3, 'Again', 'Third.');
SELECT * FROM src_docs ORDER BY id;

\echo '== 3. Create an app: a named set of declarations.'
SELECT coco.create_app('demo');

\echo '== 4. Declare the target table public.docs (columns, primary key) ...'
SELECT coco.declare_table('demo', 'public.docs',
    '[{"name":"id","type":"bigint","nullable":false},
      {"name":"title","type":"text"},
      {"name":"body_len","type":"integer"}]',
    '{id}');

\echo '== ... and the rows it should hold, as a query over the source.'
SELECT coco.declare_rows('demo', 'public.docs',
    'SELECT id, title, length(body) AS body_len FROM src_docs');

\echo '== 5. Reconcile: the table does not exist yet, so it is created and filled.'
SELECT jsonb_pretty(coco.reconcile('demo'));
SELECT * FROM docs ORDER BY id;

\echo '== 6. Change the source: update row 2, delete row 3, insert row 4.'
UPDATE src_docs SET body = 'Shorter now.' WHERE id = 2;
DELETE FROM src_docs WHERE id = 3;
INSERT INTO src_docs VALUES (4, 'New', 'A brand new document.');

\echo '== 7. Declare again. Declaring replaces the previous declarations.'
SELECT coco.declare_table('demo', 'public.docs',
    '[{"name":"id","type":"bigint","nullable":false},
      {"name":"title","type":"text"},
      {"name":"body_len","type":"integer"}]',
    '{id}');
SELECT coco.declare_rows('demo', 'public.docs',
    'SELECT id, title, length(body) AS body_len FROM src_docs');

\echo '== 8. Reconcile again: only the changes are written'
\echo '==    (1 update, 1 delete, 1 insert; row 1 is left untouched).'
SELECT jsonb_pretty(coco.reconcile('demo'));
SELECT * FROM docs ORDER BY id;

\echo '== 9. Every run is recorded.'
SELECT * FROM coco.runs;
