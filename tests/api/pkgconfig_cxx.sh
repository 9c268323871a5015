#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds a program against this build's libbips with a plain compiler and
# nothing but `pkg-config --cflags --libs bips-1.0`, then runs it. GCC 12
# defaults to C++17, so this passes only if the .pc file asks for C++20.
#
# Usage: pkgconfig_cxx.sh BUILD_ROOT SOURCE OUTPUT   (exit 77: skipped)
set -eu
build_root=$1
source=$2
output=$3
cxx=${BIPS_PLAIN_CXX:-g++}

command -v pkg-config >/dev/null 2>&1 || { echo "pkg-config not found: skipped"; exit 77; }
command -v "$cxx" >/dev/null 2>&1 || { echo "$cxx not found: skipped"; exit 77; }

# The installed .pc file (as `meson install` writes it) must say C++20 ...
installed_cflags=$(PKG_CONFIG_PATH="$build_root/meson-private" PKG_CONFIG_DISABLE_UNINSTALLED=1 \
    pkg-config --cflags bips-1.0)
echo "installed bips-1.0.pc: Cflags: $installed_cflags"
case " $installed_cflags " in
*" -std=c++20 "*) ;;
*) echo "error: the Cflags of bips-1.0.pc lack -std=c++20"; exit 1 ;;
esac

# ... and the uninstalled one, which points at this build, must be enough to
# compile, link and run a program.
export PKG_CONFIG_PATH="$build_root/meson-uninstalled"
cflags=$(pkg-config --cflags bips-1.0)
libs=$(pkg-config --libs bips-1.0)
echo "+ $cxx $cflags $source -o $output $libs"
# shellcheck disable=SC2086 # the flags are word lists
"$cxx" $cflags "$source" -o "$output" $libs
LD_LIBRARY_PATH="$build_root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$output"
