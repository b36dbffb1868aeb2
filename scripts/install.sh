#!/usr/bin/env bash
# Builds spillway and installs it for C and C++ programs, found by pkg-config
# or by CMake's find_package:
#   bash scripts/install.sh [--profile NAME] [--no-shared] PREFIX
#
#   PREFIX/include/spillway.h, spillway.hpp    the C header and the C++17 wrapper
#   PREFIX/lib/libspillway.a                   the static library
#   PREFIX/lib/libspillway.so.0.2.0            the shared library (soname libspillway.so.1),
#     libspillway.so.1 -> libspillway.so.0.2.0   with its links (not with --no-shared)
#     libspillway.so   -> libspillway.so.1
#   PREFIX/lib/pkgconfig/spillway.pc           Libs.private: what the static library needs
#   PREFIX/lib/cmake/spillway/spillwayConfig.cmake, spillwayConfigVersion.cmake
#                                              the CMake package: find_package(spillway 0.2),
#                                              target spillway::spillway (scripts/cmake/)
#
# --profile: the cargo profile to build (default release; release-small for
# size). LIBDIR overrides PREFIX/lib (say PREFIX/lib/x86_64-linux-gnu), and
# DESTDIR stages the files for a package (the .pc names PREFIX without it).
# ELF platforms (Linux, the BSDs); macOS and Windows are not handled here.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: scripts/install.sh [--profile NAME] [--no-shared] PREFIX" >&2; exit 2; }
profile=release
shared=1
prefix=
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) [ $# -ge 2 ] || usage; profile=$2; shift 2 ;;
    --no-shared) shared=0; shift ;;
    -*) usage ;;
    *) [ -z "$prefix" ] || usage; prefix=$1; shift ;;
  esac
done
[ -n "$prefix" ] || usage
case "$prefix" in /*) ;; *) prefix="$(pwd -P)/$prefix" ;; esac
libdir=${LIBDIR:-$prefix/lib}
includedir=$prefix/include
dest=${DESTDIR:-}

cargo build --quiet --profile "$profile" -p spillway --lib
# The system libraries a program must link besides libspillway.a; rustc
# prints them when it builds a static library (cargo replays the note later).
native=$(cargo rustc --quiet --profile "$profile" -p spillway --lib --crate-type staticlib \
           -- --print native-static-libs 2>&1 | sed -n 's/.*native-static-libs: //p' | tail -n 1)
[ -n "$native" ] || { echo "install.sh: rustc did not print native-static-libs" >&2; exit 1; }

case "$profile" in dev|test) outdir=debug ;; *) outdir=$profile ;; esac
built=${CARGO_TARGET_DIR:-target}/$outdir
version=$(cargo pkgid -p spillway | sed 's/.*[#@]//')

cmakedir=$libdir/cmake/spillway
install -d "$dest$includedir" "$dest$libdir/pkgconfig" "$dest$cmakedir"
install -m 644 include/spillway.h include/spillway.hpp "$dest$includedir/"
install -m 644 "$built/libspillway.a" "$dest$libdir/"
# The soname comes from build.rs; the file and its links are named after it.
soname=$(readelf -d "$built/libspillway.so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
[ -n "$soname" ] || { echo "install.sh: $built/libspillway.so has no soname" >&2; exit 1; }
if [ "$shared" = 1 ]; then
  install -m 755 "$built/libspillway.so" "$dest$libdir/libspillway.so.$version"
  ln -sfn "libspillway.so.$version" "$dest$libdir/$soname"
  ln -sfn "$soname" "$dest$libdir/libspillway.so"
else
  rm -f "$dest$libdir"/libspillway.so "$dest$libdir"/libspillway.so.*
fi

cat >"$dest$libdir/pkgconfig/spillway.pc" <<EOF
prefix=$prefix
libdir=$libdir
includedir=$includedir

Name: spillway
Description: Buffer data in memory and hand it to a sink in batches (C API and C++17 wrapper)
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -lspillway
Libs.private: $native
EOF

# The CMake package finds the libraries and headers relative to itself, so
# a staged (DESTDIR) or moved tree still works. The static target links
# what rustc named (the -l flags of Libs.private).
pointer_bytes=$(( $(rustc --print cfg | sed -n 's/^target_pointer_width="\(.*\)"/\1/p') / 8 ))
cmake_subst=(
  -e "s|@VERSION@|$version|g"
  -e "s|@VERSION_MAJOR@|${version%%.*}|g"
  -e "s|@VERSION_MINOR@|$(echo "$version" | cut -d. -f2)|g"
  -e "s|@SONAME@|$soname|g"
  -e "s|@LIBDIR_REL@|$(realpath -m --relative-to="$cmakedir" "$libdir")|g"
  -e "s|@INCLUDEDIR_REL@|$(realpath -m --relative-to="$cmakedir" "$includedir")|g"
  -e "s|@NATIVE_LIBS@|$(echo "$native" | tr -s ' ' ';')|g"
  -e "s|@POINTER_BYTES@|$pointer_bytes|g"
)
for f in spillwayConfig.cmake spillwayConfigVersion.cmake; do
  sed "${cmake_subst[@]}" "scripts/cmake/$f.in" >"$dest$cmakedir/$f"
  chmod 644 "$dest$cmakedir/$f"
done

echo "installed spillway $version ($profile) into $dest$prefix"
