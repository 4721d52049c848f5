#!/bin/sh
# plot_test.sh DYNOPOOL RUNS — `dynopool plot` on the fixture runs in RUNS:
# vgg16-human and vgg16-dynopool (finished), vgg16-shape-adaptor (4 of 6 epochs,
# no summary.json) and bad-json (metrics.jsonl line 3 is cut short).
bin=$1 runs=$2
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "plot_test: FAIL: $*" >&2; fails=$((fails + 1)); }
# near A B: A and B agree to 1%
near() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; exit !(d <= 0.01 * m + 1e-9) }'; }
# attr FILE ID NAME: attribute NAME of the element with id="ID"
attr() { grep "id=\"$2\"" "$1" | sed -n "s/.* $3=\"\([-0-9.]*\)\".*/\1/p" | head -n 1; }
# at FILE PATTERN: "x y" of the marker whose tooltip matches PATTERN
at() { grep 'class="marker"' "$1" | grep -- "$2" | sed -n 's/.*translate(\([-0-9.]*\) \([-0-9.]*\)).*/\1 \2/p'; }

out=$tmp/a/figs # a directory that does not exist yet
"$bin" plot "$runs/vgg16-human" "$runs/vgg16-dynopool" "$runs/vgg16-shape-adaptor/" -o "$out" \
    --title 'Fashion & <MNIST>' >"$tmp/stdout" 2>"$tmp/stderr"
rc=$?
[ "$rc" -eq 0 ] || fail "exit status $rc: $(cat "$tmp/stderr")"
printf '%s\n' "$out/shapes.svg" "$out/tradeoff.svg" "$out/curves.svg" | cmp -s - "$tmp/stdout" ||
    fail "stdout is not the three paths: $(cat "$tmp/stdout")"
for f in shapes tradeoff curves; do
    svg=$out/$f.svg
    [ -s "$svg" ] || { fail "$f.svg missing or empty"; continue; }
    [ "$(head -c 4 "$svg")" = "<svg" ] || fail "$f.svg does not begin with <svg"
    [ "$(tail -n 1 "$svg")" = "</svg>" ] || fail "$f.svg does not end with </svg>"
    [ "$(grep -o '<text' "$svg" | wc -l)" -eq "$(grep -o '</text>' "$svg" | wc -l)" ] ||
        fail "$f.svg: unbalanced <text>"
    grep -q 'Fashion &amp; &lt;MNIST&gt;' "$svg" || fail "$f.svg: the title is not escaped"
    ! grep -q 'Fashion & <' "$svg" || fail "$f.svg: raw & and < in the text"
done

# shapes.svg: labels, captions, and every map to one scale (r<run>-s<stage>; s0 = input).
s=$out/shapes.svg
grep -q '>19x12<' "$s" || fail "shapes.svg: no 19x12 label"
grep -q '>3x2<' "$s" || fail "shapes.svg: no 3x2 label (the dynopool run's last stage)"
[ "$(grep -c '(unfinished)' "$s")" -eq 1 ] || fail "shapes.svg: not exactly one '(unfinished)' caption"
grep 'vgg16-shape-adaptor</tspan>' "$s" | grep -q 'shape-adaptor / none: 86.9%, 0.0741 GMACs (unfinished)' ||
    fail "shapes.svg: the unfinished run's caption is not from its last metrics line"
grep 'vgg16-dynopool</tspan>' "$s" | grep -q 'vgg16 / dynopool / none: 90.1%, 0.0213 GMACs<' ||
    fail "shapes.svg: the dynopool caption is not from summary.json"
w28=$(attr "$s" r0-s0 width) h28=$(attr "$s" r0-s0 height)
w1912=$(attr "$s" r1-s1 width) h1912=$(attr "$s" r1-s1 height)
w115=$(attr "$s" r1-s2 width) w66=$(attr "$s" r2-s4 width)
if [ -z "$w28" ] || [ -z "$h28" ] || [ -z "$w1912" ] || [ -z "$h1912" ] || [ -z "$w115" ] || [ -z "$w66" ]; then
    fail "shapes.svg: rectangles r0-s0, r1-s1, r1-s2, r2-s4 not all found"
else
    near "$(awk "BEGIN { print $w1912 / $w28 }")" "$(awk 'BEGIN { print 12 / 28 }')" ||
        fail "shapes.svg: width of 19x12 / width of 28x28 = $w1912 / $w28, not 12/28"
    near "$(awk "BEGIN { print $h1912 / $h28 }")" "$(awk 'BEGIN { print 19 / 28 }')" ||
        fail "shapes.svg: height of 19x12 / height of 28x28 = $h1912 / $h28, not 19/28"
    near "$(awk "BEGIN { print $w115 / $w66 }")" "$(awk 'BEGIN { print 5 / 6 }')" ||
        fail "shapes.svg: width of 11x5 (dynopool) / width of 6x6 (shape adaptor) = $w115 / $w66, not 5/6"
fi

# tradeoff.svg: one marker per run, placed by GMACs (x) and accuracy (y) on linear axes.
t=$out/tradeoff.svg
[ "$(grep -c 'class="marker"' "$t")" -eq 3 ] || fail "tradeoff.svg: not 3 markers"
for r in vgg16-human vgg16-dynopool vgg16-shape-adaptor; do
    grep -q ">$r<" "$t" || fail "tradeoff.svg: no label $r"
done
! grep -q 'log scale' "$t" || fail "tradeoff.svg: log scale for GMACs spanning under 10x"
hu=$(at "$t" '/ human /') dy=$(at "$t" '/ dynopool /') sa=$(at "$t" '/ shape-adaptor /')
if [ -z "$hu" ] || [ -z "$dy" ] || [ -z "$sa" ]; then
    fail "tradeoff.svg: markers of the three pools not found"
else
    # (dynopool - human) / (shape adaptor - human) in pixels equals the same in data
    near "$(echo "$hu $dy $sa" | awk '{ print ($3 - $1) / ($5 - $1) }')" \
         "$(awk 'BEGIN { print (0.0213 - 0.013059) / (0.0741 - 0.013059) }')" ||
        fail "tradeoff.svg: marker x not linear in GMACs ($hu / $dy / $sa)"
    near "$(echo "$hu $dy $sa" | awk '{ print ($4 - $2) / ($6 - $2) }')" \
         "$(awk 'BEGIN { print (90.1 - 89.3) / (86.9 - 89.3) }')" ||
        fail "tradeoff.svg: marker y not linear in accuracy ($hu / $dy / $sa)"
    echo "$hu $dy" | awk '{ exit !($4 < $2) }' || fail "tradeoff.svg: higher accuracy is not drawn higher"
fi

# curves.svg: 4 lines per run; a line has one point per epoch (6, 6, 4 epochs).
c=$out/curves.svg
[ "$(grep -c 'class="curve"' "$c")" -eq 12 ] || fail "curves.svg: not 12 curves"
n=$(grep 'class="curve"' "$c" | sed 's/.* d="\([^"]*\)".*/\1/' | tr -cd 'ML' | wc -c)
[ "$n" -eq $((4 * (6 + 6 + 4))) ] || fail "curves.svg: $n points, expected 64"
grep -q '>vgg16-shape-adaptor<' "$c" || fail "curves.svg: no legend entry"

# GMACs spanning over 10x: a log scale, markers placed by log(GMACs).
for g in 0.15 1.5; do
    mkdir -p "$tmp/g$g" && printf '{"model":"vgg16","pool":"human","input":64,"test_acc":70,"gmacs":%s}\n' "$g" \
        >"$tmp/g$g/summary.json"
done
"$bin" plot "$runs/vgg16-human" "$tmp/g0.15" "$tmp/g1.5" -o "$tmp/log" >/dev/null 2>&1 ||
    fail "plot with summary-only runs failed"
t=$tmp/log/tradeoff.svg
grep -q 'GMACs per image (log scale)' "$t" 2>/dev/null || fail "tradeoff.svg: no log scale for 0.013 to 1.5 GMACs"
x1=$(at "$t" ' 0.0131 GMACs' | cut -d' ' -f1) x2=$(at "$t" ' 0.15 GMACs' | cut -d' ' -f1)
x3=$(at "$t" ' 1.5 GMACs' | cut -d' ' -f1)
if [ -z "$x1" ] || [ -z "$x2" ] || [ -z "$x3" ]; then
    fail "tradeoff.svg (log): three markers not found"
else
    near "$(awk "BEGIN { print ($x2 - $x1) / ($x3 - $x1) }")" \
         "$(awk 'BEGIN { print log(0.15 / 0.013059) / log(1.5 / 0.013059) }')" ||
        fail "tradeoff.svg: marker x not linear in log(GMACs) ($x1, $x2, $x3)"
fi

# Degenerate values: GMACs whose span underflows (the axis rounding ran past its
# table, coordinates came out NaN) are left out with a warning naming the run.
for g in 5e-324 1e-323; do
    mkdir -p "$tmp/t$g" && printf '{"model":"vgg16","pool":"human","input":28,"dataset":"fashion-mnist","test_acc":60,"gmacs":%s}\n' "$g" \
        >"$tmp/t$g/summary.json"
done
"$bin" plot "$tmp/t5e-324" "$tmp/t1e-323" -o "$tmp/tiny" >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" -eq 0 ] || fail "tiny GMACs: exit status $rc"
grep -q 'warning: t5e-324: .* GMACs .* cannot be drawn' "$tmp/err" || fail "tiny GMACs: no warning naming the run: '$(cat "$tmp/err")'"
! grep -qi 'nan\|inf' "$tmp/tiny/tradeoff.svg" || fail "tiny GMACs: NaN or infinite coordinates in tradeoff.svg"

# A diverged run: loss on a log scale (the other runs stay readable), null and huge values
# skipped with a warning naming the run.
mkdir -p "$tmp/div"
cp "$runs/vgg16-human/run.json" "$tmp/div/"
{
    echo '{"epoch": 1, "train_loss": 2.1, "test_loss": 2.0, "train_acc": 20, "test_acc": 21}'
    echo '{"epoch": 2, "train_loss": 5000000.0, "test_loss": null, "train_acc": 10, "test_acc": 10}'
    echo '{"epoch": 3, "train_loss": 1e300, "test_loss": null, "train_acc": 10, "test_acc": 10}'
} >"$tmp/div/metrics.jsonl"
"$bin" plot "$runs/vgg16-human" "$tmp/div" -o "$tmp/divout" >/dev/null 2>"$tmp/err"
rc=$?
c=$tmp/divout/curves.svg
[ "$rc" -eq 0 ] || fail "diverged run: exit status $rc"
grep -q 'Loss (log scale)' "$c" || fail "curves.svg: no log scale for losses from 0.26 to 5e6"
grep -q 'warning: div: 3 values in .*div/metrics.jsonl are null, infinite or beyond 1e30 (the first: line 2, "test_loss"); not drawn' \
    "$tmp/err" || fail "diverged run: no warning naming the run: '$(cat "$tmp/err")'"
! grep -qi 'nan\|inf' "$c" || fail "diverged run: NaN or infinite coordinates in curves.svg"
# vgg16-human's train loss, 0.912 at epoch 1 and 0.258 at epoch 6, at least 10 px apart
ys=$(grep 'class="curve"' "$c" | head -n 1 | sed 's/.* d="\([^"]*\)".*/\1/' | tr 'ML' '\n\n' | awk 'NF { print $2 }')
echo "$ys" | awk 'NR == 1 { a = $1 } END { d = $1 - a; if (d < 0) d = -d; exit !(NR == 6 && d > 10) }' ||
    fail "curves.svg: vgg16-human's train loss is flattened by the diverged run (y: $(echo $ys))"

# Runs of different datasets or input sizes: a warning names each with its own.
mkdir -p "$tmp/c10" && printf '{"model":"vgg16","pool":"human","input":32,"dataset":"cifar10","test_acc":90,"gmacs":0.3}\n' \
    >"$tmp/c10/summary.json"
"$bin" plot "$runs/vgg16-human" "$tmp/c10" -o "$tmp/mixed" >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" -eq 0 ] || fail "mixed runs: exit status $rc"
grep -q 'warning: these runs differ in dataset, input size or variant' "$tmp/err" &&
    grep -q '  vgg16-human: fashion-mnist, input 28x28, variant none' "$tmp/err" &&
    grep -q '  c10: cifar10, input 32x32, variant none' "$tmp/err" || fail "mixed runs: warning '$(cat "$tmp/err")'"
"$bin" plot "$runs/vgg16-human" "$runs/vgg16-dynopool" -o "$tmp/same" >/dev/null 2>"$tmp/err"
! grep -q 'differ in dataset' "$tmp/err" || fail "same dataset: a warning anyway"

# Errors: the file and line of bad JSON, exit 1, nothing written; usage errors exit 2.
"$bin" plot "$runs/vgg16-human" "$runs/bad-json" -o "$tmp/bad" >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" -eq 1 ] || fail "malformed run: exit status $rc, expected 1"
grep -q 'bad-json/metrics.jsonl line 3: not valid JSON' "$tmp/err" || fail "malformed run: message '$(cat "$tmp/err")'"
[ ! -e "$tmp/bad/shapes.svg" ] || fail "malformed run: shapes.svg written anyway"
"$bin" plot "$tmp/no-such-run" >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" -eq 1 ] && grep -q 'no-such-run' "$tmp/err" || fail "missing run: exit status $rc, '$(cat "$tmp/err")'"
"$bin" plot --frobnicate "$runs/vgg16-human" >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" -eq 2 ] && grep -q "unknown option '--frobnicate'" "$tmp/err" || fail "unknown option: exit status $rc"
"$bin" plot -o "$tmp/x" >/dev/null 2>&1
rc=$?
[ "$rc" -eq 2 ] || fail "no RUN: exit status $rc, expected 2"

[ "$fails" -eq 0 ] && echo "plot_test: all passed"
exit $((fails != 0))
