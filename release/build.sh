#!/usr/bin/env bash
# Builds the release Debian package and its checksum, then prints how to install it on a VPS:
#   release/build.sh              # target/debian/quicket-followup_<version>_amd64.deb + SHA256SUMS
#   release/build.sh --fast       # any other arguments go to `cargo deb` (see cargo deb --help)
# The release profile is link-time optimised: a few minutes and about 2 GB of memory. Build on a
# machine whose C library is not newer than the VPS's (a Debian 12 machine for a Debian 12 VPS);
# the package's Depends line says which libc6 it needs. Needs cargo-deb
# (cargo install --locked cargo-deb) and dpkg-dev (for the dependency line).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
    echo "release/build.sh: cargo-deb is missing: cargo install --locked cargo-deb" >&2
    exit 1
fi

# cargo deb builds the release binary (cargo build --release --locked), strips it, and prints the
# package's path last.
deb=$(cargo deb --locked "$@" | tail -n 1)
if [ ! -f "$deb" ]; then
    echo "release/build.sh: cargo deb did not say where the package is (it printed: $deb)" >&2
    exit 1
fi
dir=$(dirname "$deb")
name=$(basename "$deb")
(cd "$dir" && sha256sum "$name" >SHA256SUMS)
depends=$(dpkg-deb --field "$deb" Depends 2>/dev/null || echo "?")

cat <<EOM

Built $deb
  $(cat "$dir/SHA256SUMS")   (in $dir/SHA256SUMS)
  needs: $depends

Copy both files to the VPS:
  scp $deb $dir/SHA256SUMS root@VPS:

Then, on the VPS as root (sha256sum -c SHA256SUMS checks the copy), three commands:
  apt install ./$name
  nano /etc/quicket-followup/secrets.env /etc/quicket-followup/quicket-followup.toml
  systemctl enable --now quicket-followup

An upgrade is the first command again, with the newer package: it backs up the database first and
restarts the service. quicket-followup-admin check tests the configuration at any time.
EOM
