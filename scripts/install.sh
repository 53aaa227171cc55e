#!/usr/bin/env bash
# make install / make uninstall.
#   scripts/install.sh install PREFIX [DESTDIR]     after make build
#   scripts/install.sh uninstall PREFIX [DESTDIR]
# install configures build/ for PREFIX (so hookline.pc and the CMake package name the real
# prefix), installs under DESTDIR+PREFIX, and keeps the list of what it installed in
# PREFIX/share/hookline/install-manifest.txt; uninstall removes exactly those files, and the
# folders of hookline's own that are empty then. Into /usr or /usr/local (no DESTDIR) both run
# ldconfig, so that the dynamic linker knows about libhookline.so.0 at once.
set -euo pipefail
action=${1:-} prefix=${2:-} destdir=${3:-}
case "$prefix" in
  /*) ;;
  *) echo "PREFIX must be an absolute path, not '$prefix'" >&2; exit 2 ;;
esac
[ "$prefix" = / ] || prefix=${prefix%/}
manifest_rel=share/hookline/install-manifest.txt
manifest=$destdir${prefix%/}/$manifest_rel

refresh_linker() {
  [ -z "$destdir" ] || return 0
  case "$prefix" in /usr | /usr/local) ;; *) return 0 ;; esac
  if [ "$(id -u)" -eq 0 ]; then
    ldconfig
  else
    echo "note: run 'sudo ldconfig' so that programs find libhookline.so.0" >&2
  fi
}

case "$action" in
  install)
    cmake -S . -B build -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
    DESTDIR="$destdir" cmake --install build
    mkdir -p "$(dirname "$manifest")"
    # CMake lists the files with DESTDIR in front; the manifest names them as installed.
    {
      while IFS= read -r f || [ -n "$f" ]; do printf '%s\n' "${f#"$destdir"}"; done <build/install_manifest.txt
      printf '%s\n' "${prefix%/}/$manifest_rel"
    } >"$manifest.tmp"
    mv "$manifest.tmp" "$manifest"
    echo "-- Installed the list of these files: $manifest"
    refresh_linker
    ;;
  uninstall)
    if [ ! -f "$manifest" ]; then
      echo "nothing to uninstall: no $manifest (make install PREFIX=$prefix writes it)" >&2
      exit 1
    fi
    mapfile -t files <"$manifest"
    n=0
    for f in "${files[@]}"; do
      if [ -e "$destdir$f" ] || [ -L "$destdir$f" ]; then
        rm -f -- "$destdir$f"
        n=$((n + 1))
      fi
    done
    # hookline's own folders (include/hookline, lib/cmake/hookline, share/hookline), if empty
    for f in "${files[@]}"; do
      d=$(dirname "$destdir$f")
      [ "$(basename "$d")" != hookline ] || rmdir -- "$d" 2>/dev/null || true
    done
    echo "-- Removed $n files installed under $destdir$prefix"
    refresh_linker
    ;;
  *)
    echo "usage: $0 install|uninstall PREFIX [DESTDIR]" >&2
    exit 2
    ;;
esac
