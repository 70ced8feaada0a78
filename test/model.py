#!/usr/bin/env python3
"""Model-based random tester of coco_target.

An in-memory oracle holds what an app declares: tables with random column
sets, types, nullability, composite keys and indexes, system- or
user-managed; components holding rows with NULLs, unicode and large
values. Random operations change it: schema changes of every kind, rows
declared with declare_row or declare_rows, moves between components,
clears, full runs, rolled-back rounds, runs through the worker, hand
edits of user-managed tables (rows, primary key), drop and re-create of
the app, and crashes between declaring and reconciling and during a run.

Each operation is also done on a real server. The oracle predicts whether
the run fails (and with which SQLSTATE); after every run the checks are:
  - each declared table exists with the declared columns, types,
    nullability, primary key and indexes; tables no longer declared are
    gone (system-managed) or keep only the rows the app did not write
    (user-managed);
  - the rows of each table equal the oracle's (rows of a stale component
    only by key: a lossy change may have changed their values);
  - coco.verify(repair => false) finds no drift;
  - now and then, declaring everything again in a full run writes nothing.

A failure prints the seed and the operations that led to it; replay with
--seed N. Connection settings come from PGHOST/PGPORT/PGUSER.
"""
import argparse
import copy
import json
import os
import random
import string
import subprocess
import sys
import time

import psycopg2
import psycopg2.extensions

OWNER = 'model_owner'
SCHEMA = 'm'

# Column types, in the canonical spelling declare_table stores and
# format_type() prints.
KEY_TYPES = ['integer', 'bigint', 'text', 'character varying(20)']
VALUE_TYPES = KEY_TYPES + ['boolean', 'jsonb', 'text[]', 'numeric']
# What a column may be retyped to (some convert in place, some do not).
RETYPES = {
    'integer': ['bigint', 'text', 'numeric'],
    'bigint': ['integer', 'text'],
    'text': ['integer', 'jsonb', 'character varying(20)'],
    'character varying(20)': ['text', 'integer'],
    'boolean': ['text', 'integer'],
    'jsonb': ['text'],
    'text[]': ['text'],
    'numeric': ['integer', 'text'],
}
COLUMN_POOL = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6']
FAULT_POINTS = ['after_staging_read', 'after_decisions', 'after_table_ddl',
                'after_row_batch', 'before_attachments', 'before_consume']


class Failure(Exception):
    pass


class Predicted(Exception):
    """The oracle says the run fails, with one of these SQLSTATEs (a run
    stops at the first failure it meets, in an order of its own)."""

    def __init__(self, errors):
        self.sqlstates = {code for code, _ in errors}
        self.why = '; '.join(f'{code}: {why}' for code, why in errors)
        super().__init__(self.why)


# ---------------------------------------------------------------- values


def rand_text(rng, maxlen):
    pool = string.ascii_letters + string.digits + " '\"\\-_%,;ß€日本語😀\t"
    n = rng.choice([0, 1, 3, 8, maxlen]) if maxlen else 0
    if maxlen is None:
        n = rng.choice([0, 1, 5, 12, 40])
    s = ''.join(rng.choice(pool) for _ in range(n))
    if maxlen is None and rng.random() < 0.05:
        s = s + 'large ✓ ' * 1500    # toasted; compresses enough to be indexed
    if rng.random() < 0.25:
        s = str(rng.randint(-999, 99999))   # text that converts to integer
    if maxlen is not None:
        s = s[:maxlen]
    return s


def rand_value(rng, typ):
    if typ == 'integer':
        return rng.choice([0, 1, -1, 2147483647, -2147483648, rng.randint(-10**6, 10**6)])
    if typ == 'bigint':
        return rng.choice([0, 9007199254740991, -9007199254740991, rng.randint(-10**12, 10**12)])
    if typ == 'text':
        return rand_text(rng, None)
    if typ == 'character varying(20)':
        return rand_text(rng, 20)
    if typ == 'boolean':
        return rng.random() < 0.5
    if typ == 'jsonb':
        return rng.choice([{}, {'a': rng.randint(0, 9)}, {'n': None, 'ü': [1, 'x']}])
    if typ == 'text[]':
        return [rand_text(rng, 6) for _ in range(rng.randint(0, 3))]
    if typ == 'numeric':
        return rng.choice(['0', '1.50', '-12.345', str(rng.randint(0, 10**9)), '1e3'])
    raise ValueError(typ)


def valid_for(value, typ):
    """Is a declared value valid input for a column of this type?"""
    if value is None:
        return True
    if typ == 'integer':
        return type(value) is int and -2**31 <= value < 2**31
    if typ == 'bigint':
        return type(value) is int and -2**63 <= value < 2**63
    if typ == 'text':
        return isinstance(value, str)
    if typ == 'character varying(20)':
        return isinstance(value, str) and len(value) <= 20
    if typ == 'boolean':
        return isinstance(value, bool)
    if typ == 'jsonb':
        return isinstance(value, dict)
    if typ == 'text[]':
        return isinstance(value, list)
    if typ == 'numeric':
        return isinstance(value, str) and value not in ('',)
    return False


# ---------------------------------------------------------------- oracle


class Table:
    def __init__(self, name, cols, pk, managed, comp):
        self.name = name          # unqualified, in schema m
        self.cols = cols          # [[name, type, nullable]]
        self.pk = pk              # [name]
        self.managed = managed    # 'system' | 'user'
        self.comp = comp          # tuple: the component declaring it
        self.indexes = {}         # name -> [column]

    def col(self, name):
        return next(c for c in self.cols if c[0] == name)

    def types(self):
        return {c[0]: c[1] for c in self.cols}

    def spec(self):
        return [{'name': n, 'type': t, 'nullable': nl} for n, t, nl in self.cols]

    def key_of(self, row):
        return tuple(json.dumps(row.get(k), sort_keys=True) for k in self.pk)


class World:
    """What the app declares, as of its last successful run."""

    def __init__(self):
        self.tables = {}      # name -> Table
        self.rows = {}        # comp -> table -> key -> row dict
        self.stale = set()    # (table, comp): values may differ from declared
        self.outdated = set()  # (table, comp): written under other columns
        self.user_rows = {}   # table -> key -> row dict written by hand
        self.orphans = {}     # table -> key -> None: rows the app forgot
        self.comps = set()
        self.next_id = 1

    def holders(self, table):
        return {c for c, t in self.rows.items() if t.get(table)}


# ---------------------------------------------------------------- server


class Server:
    def __init__(self, db):
        self.db = db
        self.conn = None
        self.connect()

    def connect(self):
        for _ in range(240):
            try:
                self.conn = psycopg2.connect(dbname=self.db)
                self.conn.autocommit = True
                return
            except psycopg2.OperationalError:
                time.sleep(0.25)
        raise Failure('the server did not come back')

    def q(self, sql, args=None):
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else None

    def one(self, sql, args=None):
        rows = self.q(sql, args)
        return rows[0][0] if rows else None


def restart_immediate():
    pgbin = os.environ['COCO_PGBIN']
    subprocess.run(['runuser', '-u', 'postgres', '--', f'{pgbin}/pg_ctl', '-D',
                    os.environ['PGDATA'], '-l', os.environ['COCO_TMP'] + '/postgres.log',
                    '-m', 'immediate', '-w', 'restart'],
                   check=True, stdout=subprocess.DEVNULL, cwd='/')


# ---------------------------------------------------------------- tester


class Tester:
    def __init__(self, seed, ops, db, crashes, log):
        self.rng = random.Random(seed)
        self.seed = seed
        self.nops = ops
        self.db = db
        self.crashes = crashes
        self.log = log
        self.trace = []
        self.w = World()
        self.app = 'model'
        self.runs_checked = 0
        self.skip = set()
        self.dropped = {}     # table -> columns dropped earlier, as they were

    def note(self, msg):
        self.trace.append(msg)
        if self.log:
            print(f'  [{len(self.trace)}] {msg}', flush=True)

    # -- setup -------------------------------------------------------------

    def setup(self):
        admin = Server('postgres')
        admin.q(f'DROP DATABASE IF EXISTS {self.db} WITH (FORCE)')
        admin.q(f'CREATE DATABASE {self.db}')
        admin.conn.close()
        self.s = Server(self.db)
        self.s.q('CREATE EXTENSION IF NOT EXISTS coco_target')
        if not self.s.one("SELECT 1 FROM pg_roles WHERE rolname = %s", (OWNER,)):
            self.s.q(f'CREATE ROLE {OWNER}')
        self.s.q(f'CREATE SCHEMA {SCHEMA} AUTHORIZATION {OWNER}')
        self.as_owner('SELECT coco.create_app(%s)', (self.app,))
        # user-managed tables exist from the start, made by their owner
        for name in ('u0', 'u1'):
            self.as_owner(f'CREATE TABLE {SCHEMA}.{name} (id integer NOT NULL, k2 integer NOT NULL, '
                          f'v text, PRIMARY KEY (id))')
            self.w.user_rows[name] = {}
            self.w.orphans[name] = {}
        self.user_pk = {'u0': ['id'], 'u1': ['id']}

    def as_owner(self, sql, args=None):
        self.s.q(f'SET ROLE {OWNER}')
        try:
            return self.s.q(sql, args)
        finally:
            if not self.s.conn.closed and self.s.conn.get_transaction_status() == \
                    psycopg2.extensions.TRANSACTION_STATUS_IDLE:
                self.s.q('RESET ROLE')

    # -- generating declarations ---------------------------------------------

    def new_system_table(self, name, comp):
        rng = self.rng
        npk = 1 if rng.random() < 0.7 else 2
        pkcols = ['id', 'k2'][:npk]
        cols = [[c, rng.choice(KEY_TYPES), False] for c in pkcols]
        for c in rng.sample(COLUMN_POOL, rng.randint(1, 4)):
            cols.append([c, rng.choice(VALUE_TYPES), True])
        rng.shuffle(cols)
        t = Table(name, cols, pkcols, 'system', comp)
        if rng.random() < 0.5:
            self.add_index(t)
        return t

    def add_index(self, t):
        c = self.rng.choice([c[0] for c in t.cols if c[1] not in ('jsonb', 'text[]')] or ['id'])
        t.indexes[f'{c}_idx'] = [c]

    def user_table(self, name, comp):
        pk = list(self.user_pk[name])
        cols = [['id', 'integer', False], ['k2', 'integer', False], ['v', 'text', True]]
        return Table(name, cols, pk, 'user', comp)

    def change_table(self, t):
        """A random schema change of a system-managed table (or none)."""
        rng = self.rng
        t = copy.deepcopy(t)
        kind = rng.choice(['add', 'drop', 'retype', 'retype', 'reorder', 'nullable',
                           'pk', 'index', 'none'])
        nonkey = [c for c in t.cols if c[0] not in t.pk]
        if kind == 'add':
            free = [c for c in COLUMN_POOL if c not in [x[0] for x in t.cols]]
            back = [c for c in self.dropped.get(t.name, []) if c[1][0] in free]
            if back and rng.random() < 0.5:
                # a column dropped earlier comes back as it was, where it was
                pos, col = rng.choice(back)
                t.cols.insert(min(pos, len(t.cols)), list(col))
            elif free:
                t.cols.insert(rng.randint(0, len(t.cols)), [rng.choice(free), rng.choice(VALUE_TYPES), True])
        elif kind == 'drop' and len(nonkey) > 1:
            gone = rng.choice(nonkey)[0]
            self.dropped.setdefault(t.name, []).append(
                ([c[0] for c in t.cols].index(gone), list(t.col(gone))))
            t.cols = [c for c in t.cols if c[0] != gone]
            t.indexes = {n: cs for n, cs in t.indexes.items() if gone not in cs}
        elif kind == 'retype' and nonkey:
            c = rng.choice(nonkey)
            c[1] = rng.choice(RETYPES[c[1]])
            if c[1] in ('jsonb', 'text[]'):
                t.indexes = {n: cs for n, cs in t.indexes.items() if c[0] not in cs}
        elif kind == 'reorder' and len(nonkey) > 1:
            keys = [c for c in t.cols if c[0] in t.pk]
            rng.shuffle(nonkey)
            t.cols = keys + nonkey
        elif kind == 'nullable' and nonkey:
            c = rng.choice(nonkey)
            c[2] = not c[2]
        elif kind == 'pk':
            if t.pk == ['id'] and 'k2' not in [c[0] for c in t.cols]:
                t.cols.append(['k2', rng.choice(KEY_TYPES), False])
                t.pk = ['id', 'k2']
            elif t.pk == ['id', 'k2']:
                t.pk = ['id']
                t.col('k2')[2] = rng.random() < 0.5
        elif kind == 'index':
            if t.indexes and rng.random() < 0.5:
                del t.indexes[rng.choice(list(t.indexes))]
            else:
                self.add_index(t)
        return t, kind

    def gen_row(self, t, key=None):
        rng = self.rng
        row = {}
        for n, typ, nullable in t.cols:
            if n in t.pk:
                continue
            if nullable and rng.random() < 0.2:
                if rng.random() < 0.5:
                    row[n] = None
                continue                       # missing: NULL too
            row[n] = rand_value(rng, typ)
        if key is None:
            self.w.next_id += 1
            key = {}
            for k in t.pk:
                typ = t.types()[k]
                if k == 'id':
                    v = self.w.next_id
                    key[k] = v if typ in ('integer', 'bigint') else f'k{v}-{rand_text(rng, 5)}'[:20]
                else:
                    key[k] = rand_value(rng, typ)
                    if key[k] is None or key[k] == '':
                        key[k] = 'x' if isinstance(key[k], str) else 0
        row.update(key)
        return row

    def refit(self, t, row):
        """The row made valid for table t: missing key columns given, values
        of columns that no longer exist dropped, values that no longer fit
        their type regenerated."""
        row = {k: v for k, v in row.items() if k in t.types()}
        for n, typ, nullable in t.cols:
            if n in t.pk:
                if row.get(n) is None or not valid_for(row[n], typ):
                    return None                 # a key changed: a new row instead
            elif not valid_for(row.get(n), typ) or (not nullable and row.get(n) is None):
                row[n] = rand_value(self.rng, typ)
        return row

    # -- a round: declarations, then a run -----------------------------------

    def plan_round(self):
        """Pick the components a round declares and their complete content:
        comp -> {'tables': {name: Table}, 'rows': {table: {key: row}}}."""
        rng = self.rng
        w = self.w
        staged = {}
        tables = dict(w.tables)
        # tables: change one table component
        if rng.random() < 0.5 or not w.tables:
            tcomp = rng.choice([('tables',), ('tab', 'a'), ('tab', 'b')])
            content = {n: copy.deepcopy(t) for n, t in w.tables.items() if t.comp == tcomp}
            action = rng.random()
            pool = [n for n in ('t0', 't1', 't2', 'u0', 'u1') if n not in w.tables]
            if pool and (action < 0.35 or not content):
                name = rng.choice(pool)
                content[name] = (self.user_table(name, tcomp) if name.startswith('u')
                                 else self.new_system_table(name, tcomp))
                self.note(f'declare new table {name} in {tcomp}')
            elif content and action < 0.45:
                name = rng.choice(list(content))
                del content[name]
                self.note(f'table {name} no longer declared in {tcomp}')
            elif content:
                name = rng.choice(list(content))
                if content[name].managed == 'system':
                    content[name], kind = self.change_table(content[name])
                    self.note(f'change table {name}: {kind} -> {content[name].cols} pk {content[name].pk}')
                else:
                    content[name] = self.user_table(name, tcomp)
            staged[tcomp] = {'tables': content, 'rows': {}}
            for n in [n for n, t in tables.items() if t.comp == tcomp]:
                del tables[n]
            tables.update(content)
        # rows: one to three row components
        row_comps = [('r', str(i)) for i in range(4)]
        for _ in range(rng.randint(0 if staged else 1, 3)):
            c = rng.choice(row_comps)
            if c in staged:
                continue
            old = w.rows.get(c, {})
            content = {}
            kind = rng.random()
            if kind < 0.1:
                self.note(f'clear {c}')
            else:
                for tn, t in tables.items():
                    rows = {}
                    for row in old.get(tn, {}).values():
                        r = rng.random()
                        if r < 0.15:
                            continue                         # no longer declared
                        fitted = self.refit(t, row)
                        if fitted is None:
                            continue
                        if r < 0.35:
                            fitted = self.gen_row(t, {k: fitted[k] for k in t.pk})
                        rows[t.key_of(fitted)] = fitted
                    for _ in range(rng.choice([0, 0, 1, 3, 10])):
                        row = self.gen_row(t)
                        rows[t.key_of(row)] = row
                    if rows:
                        content[tn] = rows
                self.note(f'declare rows in {c}: ' +
                          ', '.join(f'{tn}:{len(r)}' for tn, r in content.items()))
            staged[c] = {'tables': {}, 'rows': content}
        # a move: rows of one component declared, as they are, by another
        if rng.random() < 0.3:
            src = rng.choice(row_comps)
            dst = rng.choice([c for c in row_comps if c != src])
            src_rows = staged[src]['rows'] if src in staged else w.rows.get(src, {})
            cands = [(tn, k) for tn, rs in src_rows.items() if tn in tables for k in rs]
            if cands:
                for c in (src, dst):
                    if c not in staged:
                        staged[c] = {'tables': {}, 'rows': copy.deepcopy(
                            {tn: rs for tn, rs in w.rows.get(c, {}).items() if tn in tables})}
                moved = rng.sample(cands, rng.randint(1, min(4, len(cands))))
                for tn, k in moved:
                    row = staged[src]['rows'][tn].pop(k)
                    staged[dst]['rows'].setdefault(tn, {})[k] = row
                self.note(f'move {len(moved)} rows {src} -> {dst}')
        # now and then a key another component holds, not moved: a conflict
        if rng.random() < 0.05:
            c = rng.choice(row_comps)
            others = [(tn, k, r) for oc, ts in w.rows.items() if oc != c and oc not in staged
                      for tn, rs in ts.items() if tn in tables for k, r in rs.items()]
            if others:
                tn, k, r = rng.choice(others)
                staged.setdefault(c, {'tables': {}, 'rows': copy.deepcopy(w.rows.get(c, {}))})
                staged[c]['rows'].setdefault(tn, {})[k] = r
                self.note(f'conflict: {c} declares a key of {tn} another component holds')
        return staged

    def predict(self, staged, full):
        """The world after the run, or Predicted(sqlstate)."""
        w = self.w
        replaced = set(staged) | (w.comps if full else set())
        errors = []
        new = World()
        new.user_rows = copy.deepcopy(w.user_rows)
        new.orphans = copy.deepcopy(w.orphans)
        new.next_id = w.next_id
        new.comps = w.comps | set(staged)
        for n, t in w.tables.items():
            if t.comp not in replaced:
                new.tables[n] = t
        for c in replaced:
            new.tables.update(staged.get(c, {}).get('tables', {}))
        for c in new.comps:
            src = staged.get(c, {}).get('rows', {}) if c in replaced else w.rows.get(c, {})
            new.rows[c] = copy.deepcopy(src)
            if c in replaced:
                for tn in src:
                    if tn not in new.tables:
                        errors.append(('42P01', f'{c} declares rows of {tn}, no longer declared'))
        new.stale = {(tn, c) for tn, c in w.stale if c not in replaced}
        new.outdated = {(tn, c) for tn, c in w.outdated if c not in replaced}
        # what the table changes do to rows of components not replaced
        for tn, old in w.tables.items():
            t = new.tables.get(tn)
            keep = [c for c in new.comps if c not in replaced and new.rows[c].get(tn)]
            if t is None:
                for c in new.comps:
                    new.rows[c].pop(tn, None)
                new.stale = {(x, c) for x, c in new.stale if x != tn}
                new.outdated = {(x, c) for x, c in new.outdated if x != tn}
                continue
            if old.pk != t.pk:
                for c in keep:
                    gone = new.rows[c].pop(tn)
                    if t.managed == 'user':
                        new.orphans[tn].update({k: None for k in gone})
                if t.managed == 'user':
                    # rows of replaced components under the old key: forgotten
                    for c in replaced:
                        for k in w.rows.get(c, {}).get(tn, {}):
                            new.orphans[tn][k] = None
                new.stale = {(x, c) for x, c in new.stale if x != tn}
                new.outdated = {(x, c) for x, c in new.outdated if x != tn}
                continue
            oldcols = old.types()
            lossy = any(n not in t.types() or t.types()[n] != typ for n, typ in oldcols.items())
            if lossy:
                new.stale |= {(tn, c) for c in keep}
            elif old.cols != t.cols:
                # columns added, moved or made (not) nullable: the rows of
                # components not declared again were written under another
                # spec, and verify only checks that they exist
                new.outdated |= {(tn, c) for c in keep}
        # orphans that the run writes again are tracked again
        for tn, orphans in new.orphans.items():
            t = new.tables.get(tn)
            if t is None:
                continue
            for c in new.comps:
                for k in new.rows[c].get(tn, {}):
                    orphans.pop(k, None)
        # one component per key
        for tn, t in new.tables.items():
            seen = {}
            for c in sorted(new.comps):
                for k in new.rows[c].get(tn, {}):
                    if k in seen:
                        errors.append(('23505', f'{tn} key {k} in {seen[k]} and {c}'))
                    seen[k] = c
            # NOT NULL columns: every row we know must have a value
            for n, typ, nullable in t.cols:
                if nullable or n in t.pk:
                    continue
                for c in new.comps:
                    if (tn, c) in new.stale and new.rows[c].get(tn):
                        raise Predicted([('?', f'{tn}.{n} NOT NULL over stale rows')])
                    for r in new.rows[c].get(tn, {}).values():
                        if r.get(n) is None:
                            errors.append(('23502', f'{tn}.{n} NULL in {c}'))
        # the destruction guard: a full run that would drop every table
        if full and w.tables and not new.tables:
            errors.append(('55000', 'a full run would drop every table'))
        if errors:
            first = {}
            for code, why in errors:
                first.setdefault(code, why)    # one reason per SQLSTATE
            raise Predicted(list(first.items()))
        return new

    def declare(self, staged):
        s = self.s
        # tables before the rows declared for them
        for c, content in sorted(staged.items(), key=lambda i: (not i[1]['tables'], i[0])):
            comp = list(c)
            if not content['tables'] and not any(content['rows'].values()):
                s.q('SELECT coco.clear_component(%s, %s)', (self.app, comp))
                continue
            for tn, t in content['tables'].items():
                s.q('SELECT coco.declare_table(%s, %s, %s, %s, managed_by => %s, component => %s)',
                    (self.app, f'{SCHEMA}.{tn}', json.dumps(t.spec()), t.pk, t.managed, comp))
                for iname, cols in t.indexes.items():
                    s.q('SELECT coco.declare_index(%s, %s, %s, %s, component => %s)',
                        (self.app, f'{SCHEMA}.{tn}', iname, cols, comp))
            for tn, rows in content['rows'].items():
                t = self.pending_tables.get(tn)
                rows = list(rows.values())
                if not rows:
                    continue
                if t is None or self.rng.random() < 0.5:
                    for r in rows:
                        s.q('SELECT coco.declare_row(%s, %s, %s, component => %s)',
                            (self.app, f'{SCHEMA}.{tn}', json.dumps(r), comp))
                else:
                    coldefs = ', '.join(f'"{n}" {typ}' for n, typ, _ in t.cols)
                    query = (f'SELECT * FROM jsonb_to_recordset($j${json.dumps(rows)}$j$::jsonb) '
                             f'AS x({coldefs})')
                    s.q('SELECT coco.declare_rows(%s, %s, %s, component => %s)',
                        (self.app, f'{SCHEMA}.{tn}', query, comp))

    def run_round(self):
        rng = self.rng
        s = self.s
        staged = self.plan_round()
        full = rng.random() < 0.1
        if full:
            # a full run: the rest of the app declared again as it is, mostly
            for c in sorted(self.w.comps):
                if c not in staged and rng.random() < 0.8:
                    staged[c] = self.redeclare(c)
            self.note('full run')
        self.pending_tables = dict(self.w.tables)
        for c, content in staged.items():
            for n, t in list(self.pending_tables.items()):
                if t.comp == c and n not in content['tables']:
                    del self.pending_tables[n]
            self.pending_tables.update(content['tables'])
        # rows carried over (moved, declared again) fitted to their table now
        for content in staged.values():
            for tn, rows in content['rows'].items():
                t = self.pending_tables.get(tn)
                if t is None:
                    continue
                fitted = (self.refit(t, r) for r in rows.values())
                content['rows'][tn] = {t.key_of(r): r for r in fitted if r is not None}
        if self.log:
            for c, content in sorted(staged.items()):
                for tn, rows in content['rows'].items():
                    held = sorted(self.w.rows.get(c, {}).get(tn, {}))
                    self.note(f'  staged {c} {tn}: {sorted(rows)} (held {held})')
        try:
            new = self.predict(staged, full)
            expect = None
        except Predicted as p:
            if '?' in p.sqlstates:
                self.note(f'skipped: {p.why}')
                return
            new, expect = None, p
        how = rng.random()
        crash = self.crashes and rng.random() < 0.06
        if expect is None and how < 0.15 and not crash:
            # declarations committed first, the run in another transaction
            s.q(f'BEGIN; SET LOCAL ROLE {OWNER}')
            self.declare(staged)
            s.q('COMMIT')
            if self.crashes and rng.random() < 0.3:
                self.note('crash between declaring and reconciling')
                restart_immediate()
                s.connect()
            if rng.random() < 0.5:
                run_id = self.as_owner('SELECT coco.submit(%s, %s)', (self.app, full))[0][0]
                res = self.as_owner("SELECT coco.wait(%s, '120s')", (run_id,))[0][0]
                self.note(f'worker run {run_id}: {short(res)}')
            else:
                res = self.as_owner('SELECT coco.reconcile(%s, %s)', (self.app, full))[0][0]
                self.note(f'run: {short(res)}')
            self.w = new
            return
        s.q('BEGIN')
        if crash:
            point = rng.choice(FAULT_POINTS)
            s.q('SET LOCAL coco_target.fault_point = %s', (point,))
        s.q(f'SET LOCAL ROLE {OWNER}')
        try:
            self.declare(staged)
            res = s.one('SELECT coco.reconcile(%s, %s)', (self.app, full))
        except psycopg2.OperationalError:
            if not crash:
                raise
            self.note(f'crash during a run at {point}')
            # the postmaster is about to end every session and restart: a
            # connection made before that would be cut too
            time.sleep(1.5)
            s.connect()
            return
        except psycopg2.Error as e:
            s.q('ROLLBACK')
            if expect is None:
                raise Failure(f'run failed: {e.pgcode} {e.pgerror.strip()}')
            if e.pgcode not in expect.sqlstates:
                raise Failure(f'expected {expect.why}, got {e.pgcode} {e.pgerror.strip()}')
            self.note(f'failed as predicted: {e.pgcode} ({expect.why})')
            return
        if expect is not None:
            s.q('ROLLBACK')
            raise Failure(f'run succeeded, expected {expect.why}')
        if rng.random() < 0.1:
            s.q('ROLLBACK')
            self.note('rolled back')
            return
        s.q('COMMIT')
        self.note(f'run{" (crash point not reached)" if crash else ""}: {short(res)}')
        self.w = new

    def redeclare(self, c):
        w = self.w
        return {'tables': {n: t for n, t in w.tables.items() if t.comp == c},
                'rows': copy.deepcopy(w.rows.get(c, {}))}

    # -- other operations ------------------------------------------------------

    def user_edit(self):
        """The user writes to a user-managed table of their own."""
        rng = self.rng
        tn = rng.choice(['u0', 'u1'])
        w = self.w
        if rng.random() < 0.6 or 'userkey' in self.skip:
            uid = -rng.randint(1, 10**6)
            row = {'id': uid, 'k2': rng.randint(0, 5), 'v': rand_text(rng, None)}
            key = tuple(json.dumps(row[k]) for k in self.user_pk[tn])
            if key in w.user_rows[tn]:
                return
            self.as_owner(f'INSERT INTO {SCHEMA}.{tn} VALUES (%s, %s, %s)', (row['id'], row['k2'], row['v']))
            w.user_rows[tn][key] = row
            self.note(f'user inserts {row["id"]} into {tn}')
            return
        # the user changes the table's primary key: (id) <-> (id, k2)
        old = self.user_pk[tn]
        new = ['id', 'k2'] if old == ['id'] else ['id']
        if new == ['id']:
            ids = self.s.one(f'SELECT count(*) = count(DISTINCT id) FROM {SCHEMA}.{tn}')
            if not ids:
                return
        self.as_owner(f'ALTER TABLE {SCHEMA}.{tn} DROP CONSTRAINT {tn}_pkey, '
                      f'ADD PRIMARY KEY ({", ".join(new)})')
        self.user_pk[tn] = new
        # re-key what the oracle knows of the table's rows
        w.user_rows[tn] = {tuple(json.dumps(r[k]) for k in new): r for r in w.user_rows[tn].values()}
        for c in w.rows:
            if tn in w.rows[c]:
                w.rows[c][tn] = {tuple(json.dumps(r.get(k)) for k in new): r for r in w.rows[c][tn].values()}
        # the orphans are only known by the table's content: keep their rows
        rows = self.s.q(f'SELECT to_jsonb(t) FROM {SCHEMA}.{tn} t')
        okeys = {}
        for (r,) in rows:
            okeys[tuple(json.dumps(r[k]) for k in new)] = None
        tracked = {k for c in w.rows for k in w.rows[c].get(tn, {})}
        w.orphans[tn] = {k: None for k in okeys if k not in tracked and k not in w.user_rows[tn]}
        self.note(f'user changes the primary key of {tn} to {new}')
        # the declaration must follow; the table stays as declared until then
        if tn in w.tables:
            t = w.tables[tn]
            staged = {t.comp: self.redeclare(t.comp)}
            staged[t.comp]['tables'][tn] = self.user_table(tn, t.comp)
            for c in list(w.rows):
                if tn in w.rows[c] and c not in staged:
                    pass
            self.pending_tables = dict(w.tables)
            self.pending_tables[tn] = staged[t.comp]['tables'][tn]
            new_w = self.predict(staged, False)
            self.s.q(f'BEGIN; SET LOCAL ROLE {OWNER}')
            try:
                self.declare(staged)
                res = self.s.one('SELECT coco.reconcile(%s)', (self.app,))
            except psycopg2.Error as e:
                self.s.q('ROLLBACK')
                raise Failure(f'run after a primary key change of {tn} failed: {e.pgcode} {e.pgerror.strip()}')
            self.s.q('COMMIT')
            self.note(f'run: {short(res)}')
            self.w = new_w

    def drop_app(self):
        self.as_owner('SELECT coco.drop_app(%s)', (self.app,))
        self.as_owner('SELECT coco.create_app(%s)', (self.app,))
        w = self.w
        for tn in ('u0', 'u1'):
            tracked = set()
            for c in w.rows:
                tracked |= set(w.rows[c].get(tn, {}))
        new = World()
        new.user_rows, new.orphans, new.next_id = w.user_rows, w.orphans, w.next_id
        self.w = new
        self.note('drop_app and create_app')

    # -- checks ------------------------------------------------------------

    def check(self):
        s = self.s
        w = self.w
        self.runs_checked += 1
        for tn in ('t0', 't1', 't2'):
            exists = s.one('SELECT to_regclass(%s) IS NOT NULL', (f'{SCHEMA}.{tn}',))
            if exists != (tn in w.tables):
                raise Failure(f'table {tn}: exists={exists}, declared={tn in w.tables}')
        for tn, t in w.tables.items():
            self.check_schema(t)
            self.check_rows(t)
        for tn in ('u0', 'u1'):
            if tn not in w.tables:
                self.check_user_leftovers(tn)
        if 'verify' in self.skip:
            return
        v = s.one('SELECT coco.verify(%s, repair => false)', (self.app,))
        if v['drifted'] != 0:
            raise Failure(f'verify reports drift: {v}')
        for tn, counts in v['tables'].items():
            name = tn.split('.')[-1]
            behind = sum(len(w.rows.get(c, {}).get(name, {})) for x, c in w.stale | w.outdated if x == name)
            if counts.get('unchecked', 0) != behind:
                raise Failure(f'verify: {tn} unchecked {counts.get("unchecked")}, expected {behind} '
                              f'(rows of stale or outdated components): {v}')
            want = 0
            if name in ('u0', 'u1'):
                want = len(w.user_rows[name]) + len(w.orphans[name])
            if counts['untracked'] != want:
                raise Failure(f'verify: {tn} untracked {counts["untracked"]}, expected {want}: {v}')

    def check_schema(self, t):
        s = self.s
        rel = f'{SCHEMA}.{t.name}'
        cols = s.q('SELECT attname, format_type(atttypid, atttypmod), NOT attnotnull FROM pg_attribute '
                   'WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum', (rel,))
        got = {n: (typ, nl) for n, typ, nl in cols}
        for n, typ, nullable in t.cols:
            if n not in got:
                raise Failure(f'{rel}: column {n} missing ({got})')
            if got[n][0] != typ:
                raise Failure(f'{rel}.{n} is {got[n][0]}, declared {typ}')
            if t.managed == 'system' and got[n][1] != (nullable and n not in t.pk):
                raise Failure(f'{rel}.{n} nullable={got[n][1]}, declared {nullable}')
        if t.managed == 'system' and set(got) != set(t.types()):
            raise Failure(f'{rel}: columns {list(got)}, declared {list(t.types())}')
        pk = s.q('SELECT a.attname FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(attnum, ord) '
                 'JOIN pg_attribute a ON a.attrelid = %s::regclass AND a.attnum = k.attnum '
                 'WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY k.ord', (rel, rel))
        if [r[0] for r in pk] != t.pk:
            raise Failure(f'{rel}: primary key {[r[0] for r in pk]}, declared {t.pk}')
        idx = s.q("SELECT c.relname, array_agg(a.attname ORDER BY k.ord) FROM pg_index i "
                  "JOIN pg_class c ON c.oid = i.indexrelid, unnest(i.indkey) WITH ORDINALITY k(attnum, ord) "
                  "JOIN pg_attribute a ON a.attrelid = %s::regclass AND a.attnum = k.attnum "
                  "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary GROUP BY c.relname", (rel, rel))
        # an index is named after its table: <table>_<index name>
        got_idx = {n[len(t.name) + 1:]: cs for n, cs in idx}
        if t.managed == 'system' and got_idx != t.indexes:
            raise Failure(f'{rel}: indexes {got_idx}, declared {t.indexes}')

    def expected_rows(self, t):
        """key -> canonical row (None: only the key is known)."""
        w = self.w
        exact, keys_only = [], {}
        for c in w.comps:
            for k, r in w.rows.get(c, {}).get(t.name, {}).items():
                if (t.name, c) in w.stale:
                    keys_only[k] = None
                else:
                    exact.append(r)
        out = dict(keys_only)
        if exact:
            canon = self.s.q(f'SELECT to_jsonb(jsonb_populate_record(NULL::{SCHEMA}.{t.name}, x)) '
                             f'FROM unnest(%s::jsonb[]) x', ([json.dumps(r) for r in exact],))
            for (r,) in canon:
                out[tuple(json.dumps(r[k], sort_keys=True) for k in t.pk)] = r
        return out

    def check_rows(self, t):
        w = self.w
        want = self.expected_rows(t)
        if t.managed == 'user':
            for k, r in w.user_rows[t.name].items():
                want[k] = None
            for k in w.orphans[t.name]:
                want.setdefault(k, None)
        got = {}
        for (r,) in self.s.q(f'SELECT to_jsonb(x) FROM {SCHEMA}.{t.name} x'):
            got[tuple(json.dumps(r[k], sort_keys=True) for k in t.pk)] = r
        missing = [k for k in want if k not in got]
        extra = [k for k in got if k not in want]
        if missing or extra:
            raise Failure(f'{t.name}: {len(missing)} rows missing {missing[:3]}, '
                          f'{len(extra)} extra {extra[:3]}')
        for k, r in want.items():
            if r is not None and json.dumps(r, sort_keys=True) != json.dumps(got[k], sort_keys=True):
                comp = [c for c in w.comps if k in w.rows.get(c, {}).get(t.name, {})]
                raise Failure(f'{t.name} key {k} (component {comp}): table has {json.dumps(got[k])[:300]}, '
                              f'declared {json.dumps(r)[:300]}')

    def check_user_leftovers(self, tn):
        w = self.w
        got = {tuple(json.dumps(r[k]) for k in self.user_pk[tn])
               for (r,) in self.s.q(f'SELECT to_jsonb(x) FROM {SCHEMA}.{tn} x')}
        want = set(w.user_rows[tn]) | set(w.orphans[tn])
        if got != want:
            raise Failure(f'{tn} (no longer declared): rows {sorted(got - want)[:3]} should be gone, '
                          f'{sorted(want - got)[:3]} missing')

    def check_repeat(self):
        """Everything declared again, in a full run: nothing is written."""
        w = self.w
        if 'repeat' in self.skip:
            return
        if w.stale:
            return
        if w.outdated:
            # the first run declaring them again writes them under the
            # current columns (as updates only); the one after writes nothing
            res = self.redeclare_all()
            other = {p: {k: v for k, v in st.items() if k not in ('unchanged', 'updated') and v}
                     for p, st in res['providers'].items()}
            if any(other.values()):
                raise Failure(f'declaring rows written under other columns again wrote {other}')
            w.outdated = set()
            self.note('full run: rows written under other columns updated')
        res = self.redeclare_all()
        writes = {p: {k: v for k, v in st.items() if k != 'unchanged' and v}
                  for p, st in res['providers'].items()}
        writes = {p: v for p, v in writes.items() if v}
        if writes:
            raise Failure(f'a full run declaring the same again wrote {writes}')
        self.note('full run of the same declarations wrote nothing')

    def redeclare_all(self):
        w = self.w
        staged = {c: self.redeclare(c) for c in w.comps}
        self.pending_tables = dict(w.tables)
        self.s.q(f'BEGIN; SET LOCAL ROLE {OWNER}')
        self.declare(staged)
        res = self.s.one('SELECT coco.reconcile(%s, true)', (self.app,))
        self.s.q('COMMIT')
        return res

    # -- main loop ---------------------------------------------------------

    def run(self):
        self.setup()
        for _ in range(self.nops):
            r = self.rng.random()
            if r < 0.8:
                self.run_round()
            elif r < 0.9:
                self.user_edit()
            elif r < 0.93:
                self.drop_app()
            else:
                self.check_repeat()
            self.check()
        self.check_repeat()
        self.check()
        self.s.conn.close()


def short(res):
    if not isinstance(res, dict):
        return str(res)
    p = res.get('providers', {})
    return ' '.join(f'{k.split(".")[-1]}:{v.get("inserted", 0)}/{v.get("updated", 0)}/{v.get("deleted", 0)}'
                    for k, v in p.items())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--seed', type=int, help='run this seed only')
    ap.add_argument('--first-seed', type=int, default=1)
    ap.add_argument('--seconds', type=float, default=120)
    ap.add_argument('--ops', type=int, default=40, help='operations per seed')
    ap.add_argument('--no-crash', action='store_true', help='no server crashes')
    ap.add_argument('--keep-going', action='store_true', help='report every failing seed')
    ap.add_argument('--skip', default='', help='checks or operations to leave out, to tell failures apart: '
                    'verify, repeat (checks), userkey (primary-key changes of user tables)')
    ap.add_argument('-v', '--verbose', action='store_true')
    args = ap.parse_args()
    seeds = [args.seed] if args.seed is not None else None
    start = time.time()
    n = failed = ops = runs = 0
    seed = args.first_seed
    while True:
        if seeds is not None:
            if not seeds:
                break
            seed = seeds.pop()
        elif time.time() - start > args.seconds:
            break
        t = Tester(seed, args.ops, f'model_{seed % 4}', not args.no_crash, args.verbose)
        t.skip = set(filter(None, args.skip.split(',')))
        n += 1
        try:
            t.run()
        except Exception as e:     # noqa: BLE001 -- any failure names its seed
            failed += 1
            print(f'model: FAIL seed {seed} after {len(t.trace)} operations: '
                  f'{type(e).__name__}: {str(e).strip()}')
            for i, line in enumerate(t.trace[-15:], max(1, len(t.trace) - 14)):
                print(f'    {i}. {line}')
            print(f'    replay: test/model.sh --seed {seed} -v')
        ops += len(t.trace)
        runs += t.runs_checked
        if failed and not args.keep_going:
            break
        seed += 1
    print(f'model: {n} seeds ({failed} failed), {ops} operations, {runs} checks, '
          f'{time.time() - start:.0f} s')
    sys.exit(1 if failed or n == 0 else 0)


if __name__ == '__main__':
    main()
