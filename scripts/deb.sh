#!/usr/bin/env bash
# Builds target/debian/nettools_VERSION_ARCH.deb from what `make release man completions`
# left in target/: the four tools, their man pages and their bash, zsh and fish
# completions, in the places Debian's packages put them. Plain dpkg-deb, so that building
# it needs nothing beyond dpkg-dev (no cargo-deb to fetch); Depends comes from
# dpkg-shlibdeps, which reads the libraries the binaries link.
# Usage: scripts/deb.sh (from the workspace root; `make deb` runs it). Prints the file.
set -euo pipefail

bins=(portscan sockls proctree svcname)
version=$(target/release/portscan --version | awk '{ print $2 }')
arch=$(dpkg --print-architecture)
package=nettools
work=target/debian/work
stage=$work/debian/$package

rm -rf "$work"
mkdir -p "$stage/DEBIAN" "$stage/usr/bin" "$stage/usr/share/man/man1" \
  "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
  "$stage/usr/share/fish/vendor_completions.d" "$stage/usr/share/doc/$package"
for bin in "${bins[@]}"; do
  install -m755 "target/release/$bin" "$stage/usr/bin/$bin"
  # Debian policy: man pages gzipped, without a timestamp (-n) so builds are reproducible.
  gzip -9n < "target/man/$bin.1" > "$stage/usr/share/man/man1/$bin.1.gz"
  install -m644 "target/completions/bash/$bin.bash" "$stage/usr/share/bash-completion/completions/$bin"
  install -m644 "target/completions/zsh/_$bin" "$stage/usr/share/zsh/vendor-completions/_$bin"
  install -m644 "target/completions/fish/$bin.fish" "$stage/usr/share/fish/vendor_completions.d/$bin.fish"
done
# The record contract the man pages' RECORD FIELDS section points to.
install -m644 docs/FORMAT.md "$stage/usr/share/doc/$package/FORMAT.md"
{
  echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
  echo "Upstream-Name: $package"
  echo
  echo "Files: *"
  echo "License: $(sed -n 's/^license = "\(.*\)"$/\1/p' Cargo.toml)"
} > "$stage/usr/share/doc/$package/copyright"

# dpkg-shlibdeps wants to run where debian/control is; the package needs none of it.
: > "$work/debian/control"
depends=$(cd "$work" && dpkg-shlibdeps -O "${bins[@]/#/debian/$package/usr/bin/}" |
  sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "deb.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

cat > "$stage/DEBIAN/control" <<EOF
Package: $package
Version: $version
Architecture: $arch
Maintainer: nettools developers <nettools@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: $depends
Section: net
Priority: optional
Description: $(sed -n 's/^description = "\(.*\)"$/\1/p' Cargo.toml | tail -1)
 portscan: an adaptive, unprivileged TCP connect and UDP scanner; sockls: every
 socket with its owner; proctree: processes and their tree; svcname: port numbers
 to service names and back. Records as text, NDJSON or CSV with the same fields.
EOF

deb=target/debian/${package}_${version}_${arch}.deb
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
rm -rf "$work"
echo "$deb"
