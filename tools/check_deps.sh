#!/usr/bin/env bash
# Proves that a build relies only on packages that tools/deps.sh names or that
# those packages *depend* on: Debian installs Recommends by default, but
# tools/deps.sh (and a fresh machine set up with --no-install-recommends) does
# not, so a file that came from a merely recommended package works here and
# fails there (libdnnl-dev's CMake files need the OpenCL headers, which it only
# recommends).
#
#   tools/check_deps.sh BUILD_DIR
#
# Every system file the build touched — headers from the compilers' .d files,
# libraries from the link lines, paths CMake found (CMakeCache) — is mapped to
# the package owning it (dpkg -S); each such package must be in the closure of
# Depends and Pre-Depends of tools/deps.sh's list over the installed packages.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: tools/check_deps.sh BUILD_DIR}
[[ -f "$build/CMakeCache.txt" ]] || { echo "check_deps: $build is not a configured build" >&2; exit 2; }
command -v dpkg-query >/dev/null || { echo "check_deps: not a Debian system, nothing checked"; exit 0; }

# The packages tools/deps.sh installs (its pkgs=( ... ) array).
mapfile -t roots < <(sed -n '/^pkgs=(/,/)/p' tools/deps.sh | tr -d '()' | sed 's/pkgs=//' | tr ' ' '\n' | grep -E '^[a-z0-9]')

# Closure of Depends/Pre-Depends among installed packages (an alternative or a
# virtual package is satisfied by whichever installed package provides it).
declare -A provider closure
while IFS=' ' read -r pkg provides; do
  provider[$pkg]=$pkg
  for v in ${provides//,/ }; do [[ $v == \(* || $v == *\) || $v == = ]] || provider[$v]=$pkg; done
done < <(dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Provides}\n' | awk '$1=="ii"{ $1=""; sub(/^ /,""); print }')
queue=("${roots[@]}")
while ((${#queue[@]})); do
  p=${queue[0]}; queue=("${queue[@]:1}")
  p=${p%%:*}
  [[ -n ${closure[$p]:-} ]] && continue
  closure[$p]=1
  deps=$(dpkg-query -W -f '${Depends}, ${Pre-Depends}' "$p" 2>/dev/null || true)
  IFS=',' read -ra items <<<"$deps"
  for item in "${items[@]}"; do
    IFS='|' read -ra alts <<<"$item"
    for a in "${alts[@]}"; do
      name=$(sed -E 's/\(.*\)//; s/:any//; s/[[:space:]]//g' <<<"$a")
      [[ -z $name ]] && continue
      if [[ -n ${provider[$name]:-} ]]; then queue+=("${provider[$name]}"); break; fi
    done
  done
done

# Every system path the build used.
paths=$( { find "$build" -name '*.o.d' -exec cat {} + | tr ' \\' '\n\n'
           find "$build" -name link.txt -exec cat {} + | tr ' ' '\n'
           grep -E '^[A-Za-z_]+:(FILE)?PATH=/' "$build/CMakeCache.txt" | sed 's/^[^=]*=//'
         } | grep -E '^/usr/' | sort -u)
bad=0
declare -A seen
while read -r f; do
  [[ -f $f ]] || continue
  # the path as named (a -dev package's .so link) and the file it leads to
  owner=$( { dpkg -S "$f" 2>/dev/null; dpkg -S "$(realpath "$f")" 2>/dev/null; } || true)
  [[ -z $owner ]] && continue
  # "pkg:arch: /path", or "pkg1, pkg2: /path" for a file shared by packages
  for o in $(sed 's/: .*//; s/,/ /g' <<<"$owner"); do
    o=${o%%:*}
    [[ -n ${closure[$o]:-} || -n ${seen[$o]:-} ]] && continue
    seen[$o]=1
    echo "check_deps: the build uses $f from package '$o', which tools/deps.sh neither installs nor depends on" >&2
    bad=1
  done
done <<<"$paths"
if ((bad)); then echo "check_deps: add those packages to tools/deps.sh" >&2; exit 1; fi
echo "check_deps: every file the build used comes from tools/deps.sh's packages or their dependencies (${#closure[@]} packages)"
