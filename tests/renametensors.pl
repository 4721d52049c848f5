#!/usr/bin/perl
# renametensors.pl IN OUT FROM TO — OUT is the safetensors file IN with every
# tensor whose name starts with FROM (also under "optimizer.momentum_buffer.")
# renamed to start with TO instead; the data are untouched.  For the tests'
# checkpoints under the names an older version wrote (docs/models.md, "Names
# against torchvision"); only plain perl (no JSON module).
use strict;
use warnings;
my ($in, $out, $from, $to) = @ARGV;
die "usage: renametensors.pl IN OUT FROM TO\n" unless defined $to;
open(my $f, "<:raw", $in) or die "$in: $!\n";
my $b = do { local $/; <$f> };
close $f;
my $n = unpack("Q<", substr($b, 0, 8));
my $h = substr($b, 8, $n);
my $data = substr($b, 8 + $n);
$h =~ s/\s+$//;
my $k = ($h =~ s/"((?:optimizer\.momentum_buffer\.)?)\Q$from\E/"$1$to/g);
die "$in: no tensor named $from...\n" unless $k;
$h .= " " x ((8 - length($h) % 8) % 8);
open(my $o, ">:raw", $out) or die "$out: $!\n";
print $o pack("Q<", length $h), $h, $data;
close $o or die "$out: $!\n";
