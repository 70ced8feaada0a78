#!/usr/bin/env bash
# Scenario: the source tree's layers (docs/architecture.md).  src/ has one
# folder per layer, lowest first:
#   core < util < store < engine < connectors/{postgres,localfs,sql} < sched < bgworker < api
# and src/*.c (the module's initialisation) above them all.  A file may call
# and include only what its own folder and the layers below it define; the
# connectors are one layer, but none may use another; a connector includes
# only the public header (src/include/coco_target.h), its own folder's
# headers and PostgreSQL's; no two files call each other round a cycle.
# Every file under src/connectors/ whose includes keep to that is compiled
# with an include path of the public header and PostgreSQL's only.
#
# Any violation fails, named with the file and the call or include.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
pgconfig="${COCO_PGBIN:-/usr/lib/postgresql/15/bin}/pg_config"

LAYERS_PL=$(cat <<'PERL'
use strict;
use warnings;
my $root = shift;
my @order = qw(core util store engine connectors sched bgworker api);
my %rank;
@rank{@order} = (0 .. $#order);

sub folder {    # the folder a path is in, below src/ ("" for src/ itself)
    my $p = shift;
    $p =~ s{^src/}{};
    return $p =~ m{^(connectors/[^/]+)/} ? $1 : $p =~ m{^([^/]+)/} ? $1 : "";
}
sub layer {
    my $f = folder(shift);
    return scalar(@order) if $f eq "";
    (my $top = $f) =~ s{/.*}{};
    die "layers: unknown folder src/$f\n" unless exists $rank{$top};
    return $rank{$top};
}
sub strip {
    my $t = shift;
    $t =~ s{/\*.*?\*/}{ }gs;
    $t =~ s{//[^\n]*}{}g;
    $t =~ s{"(?:\\.|[^"\\\n])*"}{""}g;
    return $t;
}

my (@files, %text, %raw);
my @dirs = ("$root/src");
while (my $d = shift @dirs) {
    opendir(my $dh, $d) or die "$d: $!";
    for my $e (sort readdir $dh) {
        next if $e =~ /^\./;
        my $p = "$d/$e";
        if (-d $p) { push @dirs, $p; next; }
        next unless $e =~ /\.[ch]$/;
        (my $rel = $p) =~ s{^\Q$root\E/}{};
        local $/;
        open(my $fh, '<', $p) or die "$p: $!";
        $raw{$rel} = <$fh>;
        $text{$rel} = strip($raw{$rel});
        push @files, $rel;
    }
}

# what each .c file defines for others: functions and variables, not static
my %def;
for my $f (grep { /\.c$/ } @files) {
    my $t = $text{$f};
    my @lines = split /\n/, $t;
    for my $i (0 .. $#lines) {
        if ($lines[$i] =~ /^([A-Za-z_]\w*)\s*\(/) {
            my $name = $1;
            my $prev = $i > 0 ? $lines[$i - 1] : "";
            $def{$name} //= $f
                if $prev !~ /\bstatic\b/ && $prev =~ /\S/ && $prev !~ /[;{}]\s*$/;
        }
        if ($lines[$i] =~ /^(?!static\b)(?:const\s+)?[A-Za-z_]\w*\s+\**\s*(coco_\w+)\s*(?:=[^;]*)?;/) {
            $def{$1} //= $f;
        }
    }
}

my (@viol, %edge);
for my $f (grep { /\.c$/ } @files) {
    my %seen;
    while ($text{$f} =~ /\b([A-Za-z_]\w*)\b/g) {
        my $name = $1;
        my $g = $def{$name};
        next if !defined $g || $g eq $f || $seen{$g}++;
        $edge{$f}{$g} = 1;
    }
}
for my $f (sort keys %edge) {
    for my $g (sort keys %{ $edge{$f} }) {
        my ($ff, $fg) = (folder($f), folder($g));
        if (layer($g) > layer($f)) {
            push @viol, "call $f -> $g: up from $ff to $fg";
        } elsif (layer($g) == layer($f) && $ff ne $fg) {
            push @viol, "call $f -> $g: across from $ff to $fg";
        }
    }
}

# includes of our own headers
my %ours = map { (my $b = $_) =~ s{.*/}{}; ($b => $_) } grep { /\.h$/ } @files;
for my $f (@files) {
    while ($raw{$f} =~ /^\s*#\s*include\s+"([^"]+)"/mg) {
        my $inc = $1;
        (my $h = $inc) =~ s{.*/}{};
        next unless exists $ours{$h};
        my $hp = $ours{$h};
        # a path that is not ours names PostgreSQL's header of that name
        # ("postmaster/bgworker.h" is not src/bgworker/bgworker.h)
        next if $inc =~ m{/} && $hp !~ m{(^|/)\Q$inc\E$};
        my ($ff, $fh) = (folder($f), folder($hp));
        if ($ff =~ m{^connectors/} && $hp ne "src/include/coco_target.h" && $fh ne $ff) {
            push @viol, "include $f -> $hp: a connector's private reach";
        } elsif ($fh ne "" && $fh ne "include" && layer($hp) > layer($f)) {
            push @viol, "include $f -> $hp: up from $ff to $fh";
        }
    }
}

# cycles between files, over the calls that are not layer violations
# already (those are listed above): Tarjan's strongly connected components
my %down;
for my $f (keys %edge) {
    for my $g (keys %{ $edge{$f} }) {
        $down{$f}{$g} = 1 unless layer($g) > layer($f) || (layer($g) == layer($f) && folder($f) ne folder($g));
    }
}
my ($index, %idx, %low, %on, @stack) = (0);
my $scc;
$scc = sub {
    my $v = shift;
    $idx{$v} = $low{$v} = $index++;
    push @stack, $v;
    $on{$v} = 1;
    for my $w (sort keys %{ $down{$v} || {} }) {
        if (!exists $idx{$w}) { $scc->($w); $low{$v} = $low{$w} if $low{$w} < $low{$v}; }
        elsif ($on{$w}) { $low{$v} = $idx{$w} if $idx{$w} < $low{$v}; }
    }
    if ($low{$v} == $idx{$v}) {
        my @c;
        while (1) { my $w = pop @stack; $on{$w} = 0; push @c, $w; last if $w eq $v; }
        if (@c > 1) {
            my %in = map { $_ => 1 } @c;
            for my $a (sort @c) {
                for my $b (sort keys %{ $down{$a} }) {
                    push @viol, "call $a -> $b: a cycle between files" if $in{$b};
                }
            }
        }
    }
};
$scc->($_) for sort grep { /\.c$/ } @files;

print "$_\n" for sort @viol;
printf STDERR "layers: %d files, %d calls between files\n", scalar(@files),
    scalar(map { keys %$_ } values %edge);
PERL
)
# violations ROOT: the violations of the tree ROOT, one a line
violations() { perl -e "$LAYERS_PL" "$1"; }

found=$(violations "$here")

tmp="$(mktemp -d -t coco-layers.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

# the check itself: a call planted from the lowest layer up to the engine
# must be found
mkdir -p "$tmp/planted"
cp -a "$here/src" "$tmp/planted/"
cat >>"$tmp/planted/src/core/digest.c" <<'EOF'

void		coco_planted_call(void);

void
coco_planted_call(void)
{
	(void) coco_engine_reconcile(NULL, false, false, 0);
}
EOF
if ! violations "$tmp/planted" 2>/dev/null | grep -q "^call src/core/digest.c -> src/engine/engine.c: up from core to engine$"; then
    echo "layers: FAIL: a call planted from src/core up to src/engine was not found"
    exit 1
fi
# and a private header planted in a connector must be found, and must not
# build with the public header alone
sed -i 's|#include "pg_connector.h"|#include "coco_internal.h"\n#include "pg_connector.h"|' \
    "$tmp/planted/src/connectors/postgres/pg_names.c"
if ! violations "$tmp/planted" 2>/dev/null |
    grep -q "^include src/connectors/postgres/pg_names.c -> src/coco_internal.h: a connector's private reach$"; then
    echo "layers: FAIL: a private header planted in a connector was not found"
    exit 1
fi
if gcc -fsyntax-only -std=gnu99 -I"$here/src/include" -I"$tmp/planted/src/connectors/postgres" \
    -I"$("$pgconfig" --includedir-server)" "$tmp/planted/src/connectors/postgres/pg_names.c" 2>/dev/null; then
    echo "layers: FAIL: a connector with a private header built with the public header alone"
    exit 1
fi

status=0
if [ -n "$found" ]; then
    echo "layers: FAIL: violations of the layer order:"
    sed 's/^/  /' <<<"$found"
    status=1
fi

# the connectors, compiled against the public header and PostgreSQL's only
pginc="$("$pgconfig" --includedir-server)"
compiled=0
for c in "$here"/src/connectors/*/*.c; do
    rel="${c#"$here"/}"
    if ! gcc -fsyntax-only -std=gnu99 -Wall -Werror -Wno-unused-parameter \
        -I"$here/src/include" -I"$(dirname "$c")" -I"$pginc" "$c" 2>"$tmp/err"; then
        echo "layers: FAIL: $rel does not build with only the public header:"
        sed 's/^/  /' "$tmp/err" | head -n 20
        status=1
    fi
    compiled=$((compiled + 1))
done
echo "layers: $(printf '%s\n' "$found" | sed '/^$/d' | wc -l) violations; $compiled connector files built against the public header alone"
exit $status
