#!/usr/bin/env bash
# Scenario: a static check that every SQL string the C code hands to SPI
# splices only what cannot change the statement's shape.
#
# For each SPI call that takes SQL text (SPI_exec, SPI_execute,
# SPI_execute_with_args, SPI_execute_extended, SPI_prepare*,
# SPI_cursor_open_with_args, SPI_cursor_parse_open), and pg_parse_query
# (statements run at top level), in src/**/*.c and examples/**/*.c, the SQL
# argument is followed back through the code:
#
#   - string literals (and macros that are literals) are fine;
#   - psprintf / appendStringInfo: the format must be a literal, and every
#     %s argument must itself be fine (numbers, %d etc., always are);
#   - quote_identifier, quote_qualified_identifier, coco_quote_qualified,
#     quote_literal_cstr, and the server's type-name formatters are fine;
#     so is a number printed by its output function (numeric_out, ...);
#   - a local variable is fine if every assignment to it is; a StringInfo
#     if every append to it is (and nothing else writes into it); a
#     project function's result if every `return` is; a struct field if
#     every assignment to that field is; an array if its initializer is
#     (a fixed list of internal table names);
#   - a function parameter is fine if the argument is fine at every call
#     site, also through function pointers and provider callbacks. That is
#     how wrappers such as coco_spi_exec, coco_spi_int8 and
#     coco_run_snap_exec are found and their callers checked.
#
# Anything else fails the check, with the chain that led to it. Not seen:
# text that reaches SQL through memcpy, whole-struct copies or globals set
# in another file, and SQL run by other means than these calls. Two ways
# to accept what is SQL by design (the user's declare_rows query, index
# predicates, @sql_command text, canonical type names): the BY_DESIGN and
# TRUSTED_FIELDS lists below, each entry with its reason, or a comment
# `/* lint-spi: <reason> */` on the line of the SPI call or of the spliced
# expression. Both are printed when used.
#
# The script first checks itself: it copies the tree, plants a
# psprintf("SELECT %s", user_text) passed to SPI_execute (directly, through
# a wrapper, a StringInfo and a struct field) and expects each to fail, and
# expects an exempted copy to pass; then it checks the real tree.
#
#   test/lint_spi.sh            self-test, then the tree
#   test/lint_spi.sh --check DIR   only check DIR (a tree with src/)
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"

command -v perl >/dev/null 2>&1 || {
    echo "lint_spi: FAIL: perl is not installed" >&2
    exit 1
}

read -r -d '' LINT_PL <<'PERL' || true
use strict;
use warnings;

my $root = shift @ARGV or die "usage: lint ROOT\n";

# ---- configuration -------------------------------------------------------

# SPI functions that take SQL text, and the position of that argument.
my %SINKS = (
    SPI_exec => 0, SPI_execute => 0, SPI_execute_with_args => 0,
    SPI_execute_extended => 0, SPI_execute_with_receiver => 0,
    SPI_prepare => 0, SPI_prepare_cursor => 0, SPI_prepare_params => 0,
    SPI_prepare_extended => 0,
    SPI_cursor_open_with_args => 1, SPI_cursor_parse_open => 1,
    # not SPI, but the same: text parsed here is run (worker.c runs
    # top-level statements with pg_parse_query + ProcessUtility)
    pg_parse_query => 0,
);
# Their results are quoted identifiers, literals or server-spelled type names.
my %QUOTERS = map { $_ => 1 } qw(
    quote_identifier quote_qualified_identifier coco_quote_qualified
    quote_literal_cstr format_type_extended format_type_with_typemod
    format_type_be format_type_be_qualified);
# Output functions of number types: digits, sign, point.
my %NUMBER_OUT = map { $_ => 1 } qw(numeric_out int2out int4out int8out oidout float4out float8out);
# Functions that return (a copy of) one of their arguments.
my %PASS = (pstrdup => 0, pnstrdup => 0, MemoryContextStrdup => 1, DatumGetCString => 0);
# Functions that only read or free a StringInfo they are given.
my %READS_STRINGINFO = map { $_ => 1 } qw(pfree);
# Format macros from c.h.
my %KNOWN_MACROS = (INT64_FORMAT => '%ld', UINT64_FORMAT => '%lu');
# Wrappers the check must find (when they exist), so a parse failure shows.
my @KNOWN_WRAPPERS = qw(coco_spi_exec coco_spi_int8 coco_run_snap_exec);

# SQL by design, accepted with a reason: [file, function, expression, reason].
my @BY_DESIGN = (
    ['src/connectors/postgres/declare.c', 'coco_declare_rows', 'query',
     "the user's declare_rows query: prepared alone, refused unless one read-only SELECT, run as the app owner"],
    ['src/connectors/postgres/pg_rows_sql.c', 'declared_sql', 'q->query',
     "a staged declare_rows query (checked as above when declared), run as the app owner"],
    ['src/connectors/postgres/pg_rows_sql.c', 'declared_sql', 'ctid_query',
     "a staged declare_rows query as PostgreSQL's deparser writes it back with its rows' ctids (pg_rows_ctid.c), run as the app owner"],
    ['src/connectors/postgres/pg_rows_sql.c', 'build_ctid_read_sql', 'query',
     "the same, restricted to a parameter's ctids, run as the app owner"],
    ['src/connectors/postgres/pg_rows_ctid.c', 'rewrite_query', 'c->query',
     "a staged declare_rows query, parsed and analyzed (never run) to be written back with its rows' ctids"],
    ['src/connectors/postgres/pg_rows_ctid.c', 'deparse_exactly', 'sql',
     "that query as PostgreSQL's deparser writes it back, parsed and analyzed (never run) to compare it with the query"],
    ['src/connectors/postgres/pg_index.c', 'index_sql', 'where',
     "an index WHERE predicate: SQL by design, run as the app owner"],
    ['src/connectors/postgres/pg_index.c', 'index_sql', 'e->val.string.val',
     "an index expression: SQL by design, checked to be one expression when declared, run as the app owner"],
    ['src/connectors/postgres/pg_sql_command.c', 'sql_command_apply', 'attach_spec_text(actions[i].state->desired, "setup")',
     "the \@sql_command setup: SQL by design, run as the app owner"],
    ['src/connectors/postgres/pg_sql_command.c', 'sql_command_retire', 'teardown',
     "the \@sql_command teardown: SQL by design, run as the app owner"],
);
# Struct fields that hold something safe by construction: "Struct.field".
my %TRUSTED_FIELDS = (
    'CocoColumn.type' =>
        "a canonical type name: parsed by the server's type parser and spelled by format_type when declared",
);

# ---- reading the sources -------------------------------------------------

my (%TEXT, %MTEXT, %RAW, %LINES, %EXEMPT, %MACRO, @FUNCS, %FUNCS_BY_NAME, %PUBLIC);

sub rel { my $f = shift; $f =~ s{^\Q$root\E/}{}; return $f; }

sub find_c_files {
    my @out;
    my @dirs = ("$root/src", "$root/examples");
    while (my $d = shift @dirs) {
        next unless -d $d;
        opendir(my $dh, $d) or next;
        for my $e (sort readdir $dh) {
            next if $e =~ /^\./;
            my $p = "$d/$e";
            if (-d $p) { push @dirs, $p; }
            elsif ($p =~ /\.c$/) { push @out, $p; }
        }
        closedir $dh;
    }
    return @out;
}

# Comments become spaces (offsets and lines are kept); lint-spi comments
# with a reason mark their lines.
sub strip_comments {
    my ($file, $src) = @_;
    my $out = '';
    my $line = 1;
    while ($src =~ m{\G(/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|[^/"']+|.)}gsc) {
        my $tok = $1;
        if ($tok =~ m{^/[*/]}) {
            if ($tok =~ /lint-spi:\s*(\S.*?)\s*(?:\*\/)?$/s) {
                my $reason = $1;
                my $n = () = $tok =~ /\n/g;
                $EXEMPT{$file}{$_} = $reason for $line .. $line + $n;
            }
            (my $blank = $tok) =~ s/[^\n]/ /g;
            $out .= $blank;
        } else {
            $out .= $tok;
        }
        $line += () = $tok =~ /\n/g;
    }
    return $out;
}

# #define NAME "literal"... are kept; preprocessor lines become spaces.
sub strip_preprocessor {
    my ($text) = @_;
    $text =~ s{^([ \t]*#(?:[^\n]*\\\n)*[^\n]*)}{
        my $d = $1;
        if ($d =~ /^\s*#\s*define\s+(\w+)[ \t]+(.*)$/s) {
            my ($name, $body) = ($1, $2);
            $body =~ s/\\\n/ /g;
            $body =~ s/^\s+|\s+$//g;
            $MACRO{$name} = $body;
        }
        (my $b = $d) =~ s/[^\n]/ /g; $b;
    }gme;
    return $text;
}

sub line_of {
    my ($file, $off) = @_;
    my $starts = $LINES{$file};
    my ($lo, $hi) = (0, $#$starts);
    while ($lo < $hi) {
        my $mid = int(($lo + $hi + 1) / 2);
        if ($starts->[$mid] <= $off) { $lo = $mid; } else { $hi = $mid - 1; }
    }
    return $lo + 1;
}

# Index of the bracket closing the one at $pos (strings and chars skipped).
sub matching {
    my ($t, $pos) = @_;
    my $depth = 0;
    pos($t) = $pos;
    while ($t =~ /\G("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|[(\[{]|[)\]}]|[^"'()\[\]{}]+)/gc) {
        my $tok = $1;
        if ($tok =~ /^[(\[{]$/) { $depth++; }
        elsif ($tok =~ /^[)\]}]$/) { $depth--; return pos($t) - 1 if $depth == 0; }
    }
    return -1;
}

# Split at top-level commas: [text, offset] pairs.
sub split_top {
    my ($t, $base, $sep) = @_;
    $sep //= ',';
    my @parts;
    my ($depth, $start) = (0, 0);
    pos($t) = 0;
    while ($t =~ /\G("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|[(\[{]|[)\]}]|,|;|[^"'()\[\]{},;]+)/gc) {
        my $tok = $1;
        if ($tok =~ /^[(\[{]$/) { $depth++; }
        elsif ($tok =~ /^[)\]}]$/) { $depth--; }
        elsif ($tok eq $sep && $depth == 0) {
            push @parts, [substr($t, $start, pos($t) - 1 - $start), $base + $start];
            $start = pos($t);
        }
    }
    push @parts, [substr($t, $start), $base + $start] if $start < length($t) || @parts;
    return @parts;
}

# The end of an expression starting at $pos: the first top-level , ; or
# unbalanced closing bracket.
sub expr_end {
    my ($t, $pos) = @_;
    my $depth = 0;
    pos($t) = $pos;
    while ($t =~ /\G("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|[(\[{]|[)\]}]|[,;]|[^"'()\[\]{},;]+)/gc) {
        my $tok = $1;
        if ($tok =~ /^[(\[{]$/) { $depth++; }
        elsif ($tok =~ /^[)\]}]$/) { return pos($t) - 1 if $depth == 0; $depth--; }
        elsif ($tok =~ /^[,;]$/ && $depth == 0) { return pos($t) - 1; }
    }
    return length($t);
}

# The text with the insides of string and char literals blanked (same
# offsets), for finding names and calls without matching inside SQL text.
sub mask {
    my ($t) = @_;
    $t =~ s{("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')}{
        my $l = $1; substr($l, 0, 1) . ('x' x (length($l) - 2)) . substr($l, -1)
    }ge;
    return $t;
}

sub norm { my $s = shift; $s =~ s/\s+/ /g; $s =~ s/^ | $//g; $s =~ s/\( /(/g; $s =~ s/ \)/)/g; return $s; }

sub load {
    for my $h (glob("$root/src/*.h $root/src/*/*.h $root/src/*/*/*.h")) {
        local $/;
        open(my $fh, '<', $h) or die "$h: $!";
        my $raw = <$fh>;
        my $t = strip_preprocessor(strip_comments(rel($h), $raw));
        # the installed header: connectors outside the tree call these
        if ($h =~ m{/coco_target\.h$}) {
            $PUBLIC{$1} = 1 while $t =~ /^\s*extern\b[^;(]*?\b(\w+)\s*\(/mg;
        }
    }
    for my $path (find_c_files()) {
        local $/;
        open(my $fh, '<', $path) or die "$path: $!";
        my $raw = <$fh>;
        my $file = rel($path);
        $RAW{$file} = $raw;
        my @starts = (0);
        push @starts, $-[0] + 1 while $raw =~ /\n/g;
        $LINES{$file} = \@starts;
        my $text = strip_preprocessor(strip_comments($file, $raw));
        $TEXT{$file} = $text;
        $MTEXT{$file} = mask($text);
        find_functions($file, $text);
    }
}

# Top-level function definitions: name, parameters, body.
sub find_functions {
    my ($file, $t) = @_;
    my $depth = 0;
    my $stmt_start = 0;
    pos($t) = 0;
    while ($t =~ /\G("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|[{};]|[^"'{};]+)/gc) {
        my $tok = $1;
        next unless $tok =~ /^[{};]$/;
        if ($tok eq ';') { $stmt_start = pos($t) if $depth == 0; next; }
        if ($tok eq '}') { $depth--; $stmt_start = pos($t) if $depth == 0; next; }
        if ($depth > 0) { $depth++; next; }
        my $open = pos($t) - 1;
        my $header = substr($t, $stmt_start, $open - $stmt_start);
        my $close = matching($t, $open);
        die "$file: unbalanced braces\n" if $close < 0;
        if ($header !~ /=\s*$/ && $header !~ /^\s*(?:typedef|struct|union|enum)\b/
            && $header =~ /(\w+)\s*\(/g) {
            # the name is the identifier before the last top-level parameter list
            my ($name, $popen);
            my $h = $header;
            while ($h =~ /(\w+)\s*\(/g) {
                my ($cand, $p) = ($1, pos($h) - 1);
                my $pc = matching($h, $p);
                next if $pc < 0;
                if (substr($h, $pc + 1) =~ /^\s*$/) { ($name, $popen) = ($cand, $p); last; }
            }
            if (defined $name && $name !~ /^(?:if|while|for|switch|sizeof)$/) {
                my $pclose = matching($h, $popen);
                my $ptext = substr($h, $popen + 1, $pclose - $popen - 1);
                my (@params, %fnptr);
                for my $p (split_top($ptext, 0)) {
                    my $ps = $p->[0];
                    next if $ps =~ /^\s*void\s*$/ || $ps =~ /^\s*$/;
                    if ($ps =~ /\(\s*\*\s*(\w+)\s*\)\s*\(/) { push @params, $1; $fnptr{$1} = 1; }
                    elsif ($ps =~ /^\s*PG_FUNCTION_ARGS\s*$/) { push @params, 'fcinfo'; }
                    elsif ($ps =~ /(\w+)\s*(?:\[[^\]]*\]\s*)*$/) { push @params, $1; }
                }
                my $f = {
                    file => $file, name => $name, params => \@params, fnptr => \%fnptr,
                    static => ($header =~ /\bstatic\b/ ? 1 : 0),
                    header => $header, body => substr($t, $open + 1, $close - $open - 1),
                    mbody => mask(substr($t, $open + 1, $close - $open - 1)), off => $open + 1,
                };
                push @FUNCS, $f;
                push @{ $FUNCS_BY_NAME{$name} }, $f;
            }
        }
        pos($t) = $close + 1;
        $stmt_start = $close + 1;
    }
}

# The definition a call from $file resolves to: a static one in the same
# file first, then a global one.
sub resolve_func {
    my ($file, $name) = @_;
    my $list = $FUNCS_BY_NAME{$name} or return undef;
    for my $f (@$list) { return $f if $f->{file} eq $file; }
    for my $f (@$list) { return $f unless $f->{static}; }
    return undef;
}

# Calls `name(` in a function body (not member calls): [args-list, offset].
sub calls_in {
    my ($f, $name, $member) = @_;
    my $b = $f->{body};
    my $m = $f->{mbody};
    my @out;
    my $re = $member ? qr/(?:->|\.)\s*\Q$name\E\s*\(/ : qr/(?<![\w.>])\Q$name\E\s*\(/;
    while ($m =~ /$re/g) {
        my ($start, $open) = ($-[0], pos($m) - 1);
        my $close = matching($b, $open);
        next if $close < 0;
        my @args = split_top(substr($b, $open + 1, $close - $open - 1), $f->{off} + $open + 1);
        push @out, [\@args, $f->{off} + $start, $f->{off} + $close];
        pos($m) = $open + 1;
    }
    return @out;
}

# ---- the judgement -------------------------------------------------------
# safe(expr, ctx) returns undef when the expression is safe, else why not.

my (%MEMO, %BUSY, @USED, %WRAPPERS, $NSINKS);

sub exempt_span {
    my ($file, $from, $to) = @_;
    for my $l (line_of($file, $from) .. line_of($file, $to)) {
        return "$file:$l: $EXEMPT{$file}{$l}" if exists $EXEMPT{$file}{$l};
    }
    return undef;
}

sub where { my ($ctx, $off) = @_; return "$ctx->{file}:" . line_of($ctx->{file}, $off); }

sub safe {
    my ($ctx, $expr, $off) = @_;
    my $lead = ($expr =~ /^(\s*)/)[0];
    $off += length $lead;
    $expr =~ s/^\s+|\s+$//g;
    my $n = norm($expr);
    if (my $why = exempt_span($ctx->{file}, $off, $off + length($expr))) {
        push @USED, "exempt: $why";
        return undef;
    }
    for my $d (@BY_DESIGN) {
        if ($d->[0] eq $ctx->{file} && $d->[1] eq $ctx->{name} && norm($d->[2]) eq $n) {
            push @USED, "by design: " . where($ctx, $off) . " in $ctx->{name}(): `$n` — $d->[3]";
            return undef;
        }
    }
    my $key = "$ctx->{file}\0$ctx->{name}\0$n";
    return $MEMO{$key} if exists $MEMO{$key};
    return undef if $BUSY{$key};      # a cycle: decided by its other definitions
    $BUSY{$key} = 1;
    my $r = judge($ctx, $expr, $off, $n);
    delete $BUSY{$key};
    $MEMO{$key} = $r;
    return $r;
}

sub literal_text {
    # the text of a literal/macro concatenation, or undef if not one
    my ($expr, $depth) = @_;
    return undef if ($depth // 0) > 10;
    my $out = '';
    my $s = $expr;
    while ($s =~ /\G\s*("(?:\\.|[^"\\])*"|[A-Za-z_]\w*)/gc) {
        my $tok = $1;
        if ($tok =~ /^"(.*)"$/s) { $out .= $1; next; }
        if (exists $KNOWN_MACROS{$tok}) { $out .= $KNOWN_MACROS{$tok}; next; }
        return undef unless $tok =~ /^[A-Z][A-Z0-9_]*$/ && exists $MACRO{$tok};
        my $m = literal_text($MACRO{$tok}, ($depth // 0) + 1);
        return undef unless defined $m;
        $out .= $m;
    }
    return undef unless ($s =~ /\G\s*$/gc);
    return $out;
}

sub top_ternary {
    my ($e) = @_;
    my $depth = 0;
    my ($q, $nest) = (-1, 0);
    pos($e) = 0;
    while ($e =~ /\G("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|[(\[{]|[)\]}]|\?|:|[^"'()\[\]{}?:]+)/gc) {
        my $tok = $1;
        my $p = pos($e) - length($tok);
        if ($tok =~ /^[(\[{]$/) { $depth++; }
        elsif ($tok =~ /^[)\]}]$/) { $depth--; }
        elsif ($depth == 0 && $tok eq '?') { if ($q < 0) { $q = $p; } else { $nest++; } }
        elsif ($depth == 0 && $tok eq ':' && $q >= 0) {
            if ($nest) { $nest--; next; }
            return ($q, $p);
        }
    }
    return ();
}

sub judge {
    my ($ctx, $e, $off, $n) = @_;
    my $at = where($ctx, $off);

    # (…) around everything
    if ($e =~ /^\(/ && matching($e, 0) == length($e) - 1) {
        return safe($ctx, substr($e, 1, length($e) - 2), $off + 1);
    }
    # c ? a : b
    if (my ($q, $c) = top_ternary($e)) {
        my $a = substr($e, $q + 1, $c - $q - 1);
        my $b = substr($e, $c + 1);
        return safe($ctx, $a, $off + $q + 1) // safe($ctx, $b, $off + $c + 1);
    }
    # a cast
    if ($e =~ /^\(\s*(?:const\s+)?(?:unsigned\s+|signed\s+|struct\s+)?\w+(?:\s*\*)*\s*(?:const\s*)?\)\s*(?=\S)/) {
        return safe($ctx, substr($e, $+[0]), $off + $+[0]);
    }
    return undef if $e eq 'NULL';
    # literals and literal macros
    if (defined literal_text($e)) { return undef; }
    if ($e =~ /^[A-Z][A-Z0-9_]*$/) { return "$at: macro `$e` is not a string literal"; }
    # f(args)
    if ($e =~ /^(\w+)\s*\(/) {
        my ($fname, $open) = ($1, $+[0] - 1);
        if (matching($e, $open) == length($e) - 1) {
            my @args = split_top(substr($e, $open + 1, length($e) - $open - 2), $off + $open + 1);
            return judge_call($ctx, $fname, \@args, $off, $n);
        }
    }
    # x->member(args): a callback
    my ($member, $mopen) = $e =~ /^(?:.+?)(?:->|\.)\s*(\w+)\s*\(/s ? ($1, $+[0] - 1) : ();
    if (defined $member && matching($e, $mopen) == length($e) - 1) {
        my @targets = member_targets($member);
        return "$at: `$n` calls ->$member, which nothing is assigned to" unless @targets;
        for my $t (@targets) {
            my $r = returns_safe($t);
            return "$at: `$n` may call $t->{name}(): $r" if defined $r;
        }
        return undef;
    }
    # a StringInfo's text
    if ($e =~ /^(\w+)\s*(\.|->)\s*data$/) {
        return stringinfo_safe($ctx, $1, $2 eq '->', $off);
    }
    # a name
    if ($e =~ /^\w+$/) { return ident_safe($ctx, $e, $off); }
    # an array element
    if ($e =~ /^(\w+)\s*\[/) {
        my ($arr, $open) = ($1, $+[0] - 1);
        return ident_safe($ctx, $arr, $off) if matching($e, $open) == length($e) - 1;
    }
    # a struct field
    if ($e =~ /^(.*?)\s*(?:->|\.)\s*(\w+)$/s) {
        return field_safe($ctx, $1, $2, $off, $n);
    }
    return "$at: cannot tell what `$n` is";
}

sub judge_call {
    my ($ctx, $fname, $args, $off, $n) = @_;
    my $at = where($ctx, $off);
    return undef if $QUOTERS{$fname};
    if ($fname eq 'psprintf') {
        return format_safe($ctx, $args, 0, $off, 'psprintf');
    }
    if (exists $PASS{$fname}) {
        my $a = $args->[ $PASS{$fname} ] or return "$at: `$n`: missing argument";
        return safe($ctx, $a->[0], $a->[1]);
    }
    if ($fname =~ /^(?:Direct|Oid)FunctionCall1(?:Coll)?$/) {
        return undef if $args->[0] && $args->[0][0] =~ /^\s*(\w+)\s*$/ && $NUMBER_OUT{$1};
        return "$at: `$n` calls a function that may return anything";
    }
    my $f = resolve_func($ctx->{file}, $fname);
    if ($f) {
        my $r = returns_safe($f);
        return defined $r ? "$at: `$n`: $r" : undef;
    }
    if ($ctx->{fnptr}{$fname}) {
        return "$at: `$n` calls through the function pointer $fname";
    }
    return "$at: `$n`: $fname() is not known to return quoted SQL";
}

sub returns_safe {
    my ($f) = @_;
    my $key = "returns\0$f->{file}\0$f->{name}";
    return $MEMO{$key} if exists $MEMO{$key};
    return undef if $BUSY{$key};
    $BUSY{$key} = 1;
    my $r;
    my $b = $f->{body};
    my $m = $f->{mbody};
    my $found = 0;
    while ($m =~ /(?<![\w.>])return\b/g) {
        my $s = pos($m);
        my $end = expr_end($b, $s);
        my $x = substr($b, $s, $end - $s);
        next if $x =~ /^\s*$/;
        $found++;
        $r = safe($f, $x, $f->{off} + $s);
        if (defined $r) { $r = "what $f->{name}() returns: $r"; last; }
    }
    $r = "$f->{name}() returns nothing" if !$found && !defined $r;
    delete $BUSY{$key};
    $MEMO{$key} = $r;
    return $r;
}

# psprintf(fmt, …) or appendStringInfo(buf, fmt, …): the format is a
# literal and every %s argument is safe.
sub format_safe {
    my ($ctx, $args, $fi, $off, $what) = @_;
    my $at = where($ctx, $off);
    my $fa = $args->[$fi] or return "$at: $what without a format";
    my $fmt = literal_text($fa->[0]);
    return "$at: $what format `" . norm($fa->[0]) . "` is not a literal" unless defined $fmt;
    my $ai = $fi + 1;
    while ($fmt =~ /%([-+ #0]*)(\*|\d+)?(?:\.(\*|\d+))?(hh|h|ll|l|L|z|j|t)?([a-zA-Z%])/g) {
        my ($width, $prec, $conv) = ($2, $3, $5);
        next if $conv eq '%' || $conv eq 'm';
        $ai++ if defined $width && $width eq '*';
        $ai++ if defined $prec && $prec eq '*';
        my $a = $args->[$ai++] or return "$at: $what has fewer arguments than its format";
        if ($conv eq 's') {
            my $r = safe($ctx, $a->[0], $a->[1]);
            return $r if defined $r;
        } elsif ($conv eq 'c') {
            return "$at: %c of `" . norm($a->[0]) . "`" unless $a->[0] =~ /^\s*'(?:\\.|[^'\\])'\s*$/;
        }
    }
    return undef;
}

sub is_param {
    my ($ctx, $name) = @_;
    for my $i (0 .. $#{ $ctx->{params} }) { return $i if $ctx->{params}[$i] eq $name; }
    return undef;
}

# Assignments `name = …` (and initializers) in a function body.
sub definitions {
    my ($ctx, $name) = @_;
    my $b = $ctx->{body};
    my $m = $ctx->{mbody};
    my @defs;
    while ($m =~ /(?<![\w.>])\Q$name\E\s*((?:\[[^\]]*\]\s*)*)=(?!=)/g) {
        my $s = pos($m);
        my $end = expr_end($b, $s);
        push @defs, [substr($b, $s, $end - $s), $ctx->{off} + $s];
        pos($m) = $s;
    }
    my @compound;
    while ($m =~ /(?<![\w.>])\Q$name\E\s*(?:\+|-|\||&|<<|>>)=/g) { push @compound, $ctx->{off} + $-[0]; }
    return (\@defs, \@compound);
}

sub ident_safe {
    my ($ctx, $name, $off) = @_;
    my $at = where($ctx, $off);
    my ($defs, $compound) = definitions($ctx, $name);
    return where($ctx, $compound->[0]) . ": `$name` is changed in place" if @$compound;
    if (@$defs) {
        for my $d (@$defs) {
            my $r = init_safe($ctx, $d->[0], $d->[1]);
            return "$at: `$name`: $r" if defined $r;
        }
        return undef unless defined is_param($ctx, $name);
    }
    my $i = is_param($ctx, $name);
    return param_safe($ctx, $i, $off) if defined $i;
    return undef if @$defs;
    # a file-level variable: its initializer
    my $t = $TEXT{ $ctx->{file} };
    my $fctx = { file => $ctx->{file}, name => '(file)', params => [], fnptr => {}, body => $t,
                 mbody => $MTEXT{ $ctx->{file} }, off => 0 };
    my ($fdefs) = definitions($fctx, $name);
    if (@$fdefs) {
        for my $d (@$fdefs) {
            my $r = init_safe($fctx, $d->[0], $d->[1]);
            return "$at: `$name`: $r" if defined $r;
        }
        return undef;
    }
    return "$at: cannot tell where `$name` comes from";
}

# An initializer: an expression or a {…} list of them.
sub init_safe {
    my ($ctx, $x, $off) = @_;
    (my $t = $x) =~ s/^\s+//;
    my $lead = length($x) - length($t);
    if ($t =~ /^\{/) {
        my $close = matching($t, 0);
        for my $el (split_top(substr($t, 1, $close - 1), $off + $lead + 1)) {
            next if $el->[0] =~ /^\s*$/;
            my $r = safe($ctx, $el->[0], $el->[1]);
            return $r if defined $r;
        }
        return undef;
    }
    return safe($ctx, $x, $off);
}

# A parameter: the argument at every call site, direct or through a
# function pointer or a provider callback.
sub param_safe {
    my ($ctx, $i, $off) = @_;
    my $f = $ctx;
    my $pname = $f->{params}[$i];
    my $key = "param\0$f->{file}\0$f->{name}\0$i";
    return $MEMO{$key} if exists $MEMO{$key};
    return undef if $BUSY{$key};
    $BUSY{$key} = 1;
    $WRAPPERS{"$f->{name}() [$f->{file}] argument " . ($i + 1)} = 1;
    my $r;
    my @sites = call_sites($f);
    # The public statement helpers take SQL by design: a connector outside
    # the tree answers for its own; the tree's calls are checked like any.
    if ($PUBLIC{ $f->{name} } && !grep { $_ eq $f->{name} } @KNOWN_WRAPPERS) {
        $r = "`$pname` is a parameter of $f->{name}(), which is public (src/include/coco_target.h): "
            . "connectors may pass anything";
    } elsif (!@sites) {
        $r = value_references($f) // "`$pname` is a parameter of $f->{name}(), and nothing in the "
            . "tree calls it: what it is given cannot be checked";
    }
    for my $s ($r ? () : @sites) {
        my ($caller, $args, $coff, $how) = @$s;
        my $a = $args->[$i];
        if (!$a) { $r = where($caller, $coff) . ": $how without argument " . ($i + 1); last; }
        if (my $why = exempt_span($caller->{file}, $coff, $a->[1] + length($a->[0]))) {
            push @USED, "exempt: $why";
            next;
        }
        my $x = safe($caller, $a->[0], $a->[1]);
        if (defined $x) { $r = "`$pname` is a parameter of $f->{name}(), given by $how: $x"; last; }
    }
    if (!defined $r && @sites) {
        my $refs = value_references($f);
        $r = $refs if defined $refs && !ref $refs;
    }
    delete $BUSY{$key};
    $MEMO{$key} = $r;
    return $r;
}

sub visible {
    my ($f, $caller_file) = @_;
    return !$f->{static} || $f->{file} eq $caller_file;
}

# Every place f is called: [caller, args, offset, description].
sub call_sites {
    my ($f) = @_;
    my @out;
    for my $c (@FUNCS) {
        next unless visible($f, $c->{file});
        my $r = resolve_func($c->{file}, $f->{name});
        next unless $r && $r == $f;
        for my $call (calls_in($c, $f->{name}, 0)) {
            push @out, [$c, $call->[0], $call->[1], "$f->{name}() at " . where($c, $call->[1])];
        }
    }
    for my $ref (value_uses($f)) {
        my ($kind, $x, $j) = @$ref;
        if ($kind eq 'member') {
            for my $c (@FUNCS) {
                for my $call (calls_in($c, $x, 1)) {
                    push @out, [$c, $call->[0], $call->[1], "the ->$x callback at " . where($c, $call->[1])];
                }
            }
        } elsif ($kind eq 'arg') {
            my $g = $x;
            my $p = $g->{params}[$j];
            next unless defined $p;
            for my $call (calls_in($g, $p, 0)) {
                push @out, [$g, $call->[0], $call->[1], "$g->{name}()'s $p at " . where($g, $call->[1])];
            }
        }
    }
    return @out;
}

# Where f is used as a value: ['member', name] for `.member = f`, ['arg',
# g, j] when passed as argument j of g; ['unknown', where] otherwise.
sub value_uses {
    my ($f) = @_;
    my @out;
    for my $file (sort keys %TEXT) {
        next if $f->{static} && $file ne $f->{file};
        my $t = $MTEXT{$file};
        while ($t =~ /(?<![\w.>])\Q$f->{name}\E\b(?!\s*\()/g) {
            my $p = $-[0];
            my $before = substr($t, 0, $p);
            if ($before =~ /(?:\.|->)\s*(\w+)\s*=\s*\&?\s*$/) { push @out, ['member', $1]; next; }
            if ($before =~ /PG_FUNCTION_INFO_V1\s*\(\s*$/) { next; }
            # an argument of a call: find the call around it
            my $found = 0;
            for my $g (@FUNCS) {
                next unless $g->{file} eq $file && $p >= $g->{off} && $p < $g->{off} + length($g->{body});
                for my $c (@FUNCS) {
                    for my $call (calls_in($g, $c->{name}, 0)) {
                        next unless $call->[1] <= $p && $p <= $call->[2];
                        my $args = $call->[0];
                        for my $j (0 .. $#$args) {
                            if ($args->[$j][0] =~ /^\s*&?\s*\Q$f->{name}\E\s*$/) {
                                my $callee = resolve_func($file, $c->{name});
                                push @out, ['arg', $callee, $j] if $callee;
                                $found = 1;
                            }
                        }
                    }
                }
            }
            push @out, ['unknown', "$file:" . line_of($file, $p)] unless $found;
        }
    }
    return @out;
}

sub value_references {
    my ($f) = @_;
    for my $u (value_uses($f)) {
        return "$f->{name}() is used as a value at $u->[1], so not every caller can be checked"
            if $u->[0] eq 'unknown';
    }
    return undef;
}

# Functions assigned to a callback member anywhere.
sub member_targets {
    my ($member) = @_;
    my @out;
    for my $file (sort keys %TEXT) {
        my $t = $MTEXT{$file};
        while ($t =~ /(?:\.|->)\s*\Q$member\E\s*=\s*\&?\s*(\w+)\s*[,;}]/g) {
            my $f = resolve_func($file, $1);
            push @out, $f if $f;
        }
    }
    return @out;
}

# A StringInfo: every append to it is safe and nothing else writes to it.
sub stringinfo_safe {
    my ($ctx, $var, $is_ptr, $off) = @_;
    my $at = where($ctx, $off);
    my $key = "si\0$ctx->{file}\0$ctx->{name}\0$var";
    return $MEMO{$key} if exists $MEMO{$key};
    return undef if $BUSY{$key};
    $BUSY{$key} = 1;
    my $r = stringinfo_judge($ctx, $var, $is_ptr, $at);
    delete $BUSY{$key};
    $MEMO{$key} = $r;
    return $r;
}

sub stringinfo_judge {
    my ($ctx, $var, $is_ptr, $at) = @_;
    my $b = $ctx->{body};
    my $m = $ctx->{mbody};
    my $ref = $is_ptr ? qr/\Q$var\E/ : qr/&\s*\Q$var\E/;
    # every call with the buffer as an argument
    while ($m =~ /(?<![\w.>])(\w+)\s*\(/g) {
        my ($fname, $start, $open) = ($1, $-[0], pos($m) - 1);
        my $close = matching($b, $open);
        next if $close < 0;
        my @args = split_top(substr($b, $open + 1, $close - $open - 1), $ctx->{off} + $open + 1);
        my $argi;
        for my $j (0 .. $#args) { if ($args[$j][0] =~ /^\s*$ref\s*$/) { $argi = $j; last; } }
        pos($m) = $open + 1;
        next unless defined $argi;
        my $cat = where($ctx, $ctx->{off} + $start);
        next if $fname =~ /^(?:initStringInfo|resetStringInfo|appendStringInfoSpaces|enlargeStringInfo)$/;
        next if $READS_STRINGINFO{$fname};
        if (my $why = exempt_span($ctx->{file}, $ctx->{off} + $start, $ctx->{off} + $close)) {
            push @USED, "exempt: $why";
            next;
        }
        my $r;
        if ($argi != 0) {
            $r = "$cat: `$var` is handed to $fname()";
        } elsif ($fname eq 'appendStringInfo') {
            $r = format_safe($ctx, \@args, 1, $ctx->{off} + $start, 'appendStringInfo');
            $r = "$cat: appended: $r" if defined $r;
        } elsif ($fname =~ /^(?:appendStringInfoString|appendBinaryStringInfo|appendBinaryStringInfoNT)$/) {
            $r = $args[1] ? safe($ctx, $args[1][0], $args[1][1]) : "$cat: $fname without text";
            $r = "$cat: appended: $r" if defined $r;
        } elsif ($fname =~ /^appendStringInfoChar(?:Macro)?$/) {
            $r = "$cat: appendStringInfoChar of `" . norm($args[1][0]) . "`"
                unless $args[1] && $args[1][0] =~ /^\s*'(?:\\.|[^'\\])'\s*$/;
        } else {
            my $g = resolve_func($ctx->{file}, $fname);
            if ($g && defined $g->{params}[0]) {
                my $p = $g->{params}[0];
                $r = stringinfo_safe($g, $p, 1, $g->{off});
                $r = "$cat: `$var` is written by $fname(): $r" if defined $r;
            } else {
                $r = "$cat: `$var` is handed to $fname(), which may write anything into it";
            }
        }
        return "$at: `$var`: $r" if defined $r;
    }
    # a StringInfo parameter: what the callers put in before
    my $i = is_param($ctx, $var);
    if (defined $i) {
        my $r = param_safe($ctx, $i, $ctx->{off});
        return $r if defined $r;
    }
    my ($defs) = definitions($ctx, $var);
    for my $d (@$defs) {
        next if $d->[0] =~ /^\s*makeStringInfo\s*\(\s*\)\s*$/;
        return where($ctx, $d->[1]) . ": `$var` is assigned `" . norm($d->[0]) . "`";
    }
    return undef;
}

# x->field: a trusted field, or every assignment to that field is safe.
sub field_safe {
    my ($ctx, $base, $field, $off, $n) = @_;
    my $at = where($ctx, $off);
    if ($base =~ /^\w+$/) {
        my $decl = $ctx->{header} // '';
        $decl .= "\n" . $ctx->{body};
        if ($decl =~ /\b(\w+)\s*\*?\s*\b\Q$base\E\b\s*[=;,)]/) {
            my $type = $1;
            if (exists $TRUSTED_FIELDS{"$type.$field"}) {
                push @USED, "trusted field: $at in $ctx->{name}(): `$n` — " . $TRUSTED_FIELDS{"$type.$field"};
                return undef;
            }
        }
    }
    my $key = "field\0$field";
    return $MEMO{$key} if exists $MEMO{$key};
    return undef if $BUSY{$key};
    $BUSY{$key} = 1;
    my ($r, $count) = (undef, 0);
    for my $f (@FUNCS) {
        my $b = $f->{body};
        my $m = $f->{mbody};
        while ($m =~ /(?:->|\.)\s*\Q$field\E\s*=(?!=)/g) {
            my $s = pos($m);
            my $end = expr_end($b, $s);
            $count++;
            my $x = safe($f, substr($b, $s, $end - $s), $f->{off} + $s);
            if (defined $x) {
                $r = "$at: `$n`: field $field is assigned at " . where($f, $f->{off} + $s)
                    . " in $f->{name}(): $x";
                last;
            }
            pos($m) = $s;
        }
        last if defined $r;
    }
    $r = "$at: `$n`: nothing assigns field $field" if !$count && !defined $r;
    delete $BUSY{$key};
    $MEMO{$key} = $r;
    return $r;
}

# ---- main ----------------------------------------------------------------

load();
my @bad;
for my $f (@FUNCS) {
    for my $sink (sort keys %SINKS) {
        for my $call (calls_in($f, $sink, 0)) {
            $NSINKS++;
            my ($args, $coff, $cend) = @$call;
            if (my $why = exempt_span($f->{file}, $coff, $cend)) {
                push @USED, "exempt: $why";
                next;
            }
            my $a = $args->[ $SINKS{$sink} ];
            if (!$a) { push @bad, where($f, $coff) . ": $sink without SQL"; next; }
            my $r = safe($f, $a->[0], $a->[1]);
            push @bad, where($f, $coff) . ": $sink gets SQL that may splice unquoted text:\n      $r"
                if defined $r;
        }
    }
}
for my $w (@KNOWN_WRAPPERS) {
    next unless $FUNCS_BY_NAME{$w};
    push @bad, "$w() exists but was not found to pass its SQL to SPI (the check did not parse it)"
        unless grep { /^\Q$w\E\(\)/ } keys %WRAPPERS;
}
my %seen;
print "lint_spi: $_\n" for grep { !$seen{$_}++ } @USED;
print "lint_spi: parameters that carry SQL, checked at their callers: ", join(', ', sort keys %WRAPPERS), "\n"
    if %WRAPPERS;
for my $file (sort keys %EXEMPT) {
    for my $l (sort { $a <=> $b } keys %{ $EXEMPT{$file} }) {
        my $s = "exempt: $file:$l: $EXEMPT{$file}{$l}";
        print "lint_spi: note: unused exemption $file:$l\n" unless $seen{$s};
    }
}
if (@bad) {
    my %u;
    print "lint_spi: FAIL: $_\n" for grep { !$u{$_}++ } @bad;
    exit 1;
}
die "lint_spi: no SPI calls found under $root: the check saw nothing\n" unless $NSINKS;
print "lint_spi: $NSINKS statements checked (SPI calls and pg_parse_query) in ", scalar(keys %TEXT), " files, all splice only quoted or fixed text\n";
exit 0;
PERL

# check ROOT: exit status of the lint over ROOT/src and ROOT/examples
check() {
    perl -e "$LINT_PL" "$1"
}

if [ "${1:-}" = "--check" ]; then
    check "${2:?usage: $0 --check DIR}"
    exit
fi

# ---- self-test: planted injections must fail, an exempted one must pass ----
tmp="$(mktemp -d -t coco-lint-spi.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

copy_tree() {
    mkdir -p "$1"
    cp -a "$here/src" "$1/"
    [ -d "$here/examples" ] && cp -a "$here/examples" "$1/"
    # the copy is checked as sources only
    find "$1" -name '*.o' -o -name '*.bc' -o -name '*.so' | xargs -r rm -f
}

expect_fail() {
    local name=$1 pattern=$2 out
    if out=$(check "$tmp/$name" 2>&1); then
        echo "$out"
        echo "lint_spi: FAIL: self-test '$name': the planted injection was not caught" >&2
        exit 1
    fi
    if ! grep -q -- "$pattern" <<<"$out"; then
        echo "$out"
        echo "lint_spi: FAIL: self-test '$name': failed, but not at $pattern" >&2
        exit 1
    fi
    echo "lint_spi: self-test '$name': caught at $pattern"
}

# 1. the plain case, appended to a real file
copy_tree "$tmp/direct"
cat >>"$tmp/direct/src/store/app.c" <<'EOF'

static void
lint_spi_planted(const char *user_text)
{
	SPI_execute(psprintf("SELECT %s", user_text), false, 0);
}

PG_FUNCTION_INFO_V1(lint_spi_planted_sql);
Datum
lint_spi_planted_sql(PG_FUNCTION_ARGS)
{
	lint_spi_planted(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}
EOF
line=$(grep -n 'SPI_execute(psprintf("SELECT %s", user_text)' "$tmp/direct/src/store/app.c" | cut -d: -f1)
expect_fail direct "src/store/app.c:$line"

# 2. through the project's wrapper, a StringInfo and a quoted part
copy_tree "$tmp/wrapper"
cat >"$tmp/wrapper/src/zz_planted.c" <<'EOF'
#include "postgres.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "coco_internal.h"

static void
zz_planted(const char *table, const char *user_text)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT * FROM %s", quote_identifier(table));
	appendStringInfo(&sql, " WHERE %s", user_text);
	coco_spi_exec(sql.data, 0, NULL, NULL, NULL, SPI_OK_SELECT);
}

PG_FUNCTION_INFO_V1(zz_planted_sql);
Datum
zz_planted_sql(PG_FUNCTION_ARGS)
{
	zz_planted(text_to_cstring(PG_GETARG_TEXT_PP(0)), text_to_cstring(PG_GETARG_TEXT_PP(1)));
	PG_RETURN_VOID();
}
EOF
line=$(grep -n 'appendStringInfo(&sql, " WHERE %s", user_text)' "$tmp/wrapper/src/zz_planted.c" | cut -d: -f1)
expect_fail wrapper "src/zz_planted.c:$line"

# 3. through a struct field set in another function
copy_tree "$tmp/field"
cat >"$tmp/field/src/zz_planted.c" <<'EOF'
#include "postgres.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"

typedef struct ZzStatements
{
	char	   *cleanup;
} ZzStatements;

static void
zz_build(ZzStatements *st, const char *filter)
{
	st->cleanup = psprintf("DELETE FROM coco.run WHERE %s", filter);
}

static void
zz_run(const ZzStatements *st)
{
	SPI_execute(st->cleanup, false, 0);
}

PG_FUNCTION_INFO_V1(zz_cleanup_sql);
Datum
zz_cleanup_sql(PG_FUNCTION_ARGS)
{
	ZzStatements st;

	zz_build(&st, text_to_cstring(PG_GETARG_TEXT_PP(0)));
	zz_run(&st);
	PG_RETURN_VOID();
}
EOF
line=$(grep -n 'st->cleanup = psprintf' "$tmp/field/src/zz_planted.c" | cut -d: -f1)
expect_fail field "src/zz_planted.c:$line"

# 4. the first case with an exemption comment: passes, and says so
copy_tree "$tmp/exempt"
cp "$tmp/direct/src/store/app.c" "$tmp/exempt/src/store/app.c"
sed -i 's|SPI_execute(psprintf("SELECT %s", user_text), false, 0);|& /* lint-spi: planted by the self-test */|' \
    "$tmp/exempt/src/store/app.c"
if ! out=$(check "$tmp/exempt" 2>&1) || ! grep -q 'planted by the self-test' <<<"$out"; then
    echo "$out"
    echo "lint_spi: FAIL: self-test 'exempt': an exempted line was not accepted" >&2
    exit 1
fi
echo "lint_spi: self-test 'exempt': accepted and reported"

# ---- the real tree -----------------------------------------------------------
echo "lint_spi: checking $here"
check "$here"
