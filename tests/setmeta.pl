#!/usr/bin/perl
# setmeta.pl IN OUT STRIP [KEY VALUE]... — OUT is the safetensors file IN with each
# metadata KEY set to the string VALUE (the header is JSON after an 8-byte
# little-endian length); STRIP=1 also drops every tensor, leaving the metadata.
# For the tests' hostile checkpoints; only plain perl (no JSON module).
use strict;
use warnings;
my ($in, $out, $strip, @kv) = @ARGV;
open(my $f, "<:raw", $in) or die "$in: $!\n";
my $b = do { local $/; <$f> };
close $f;
my $n = unpack("Q<", substr($b, 0, 8));
my $h = substr($b, 8, $n);
my $data = substr($b, 8 + $n);
$h =~ s/\s+$//;
while (@kv) {
    my ($k, $v) = splice(@kv, 0, 2);
    (my $e = $v) =~ s/(["\\])/\\$1/g;
    $h =~ s/("\Q$k\E":)"(?:[^"\\]|\\.)*"/$1"$e"/ or die "$in: no metadata key '$k'\n";
}
if ($strip) {
    $h =~ /("__metadata__":\{(?:[^"{}]|"(?:[^"\\]|\\.)*")*\})/ or die "$in: no metadata\n";
    $h = "{$1}";
    $data = "";
}
$h .= " " x ((8 - length($h) % 8) % 8);
open(my $o, ">:raw", $out) or die "$out: $!\n";
print $o pack("Q<", length $h), $h, $data;
close $o or die "$out: $!\n";
