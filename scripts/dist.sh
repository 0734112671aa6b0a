#!/usr/bin/env bash
# Builds release archives of clustertx for every platform the manager runs
# on, plus SHA256SUMS, into dist/. Usage: scripts/dist.sh [VERSION]
# (default: git describe). Needs Go and tar; the Windows .zip is written by
# scripts/zipdir (Go's archive/zip), so no zip binary is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
VERSION=${1:-$(git describe --tags --always --dirty 2>/dev/null || echo devel)}
COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
TARGETS=${TARGETS:-"linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64"}
rm -rf dist
mkdir -p dist
for t in $TARGETS; do
	os=${t%/*} arch=${t#*/}
	name=clustertx-$VERSION-$os-$arch
	dir=dist/$name
	mkdir -p "$dir"
	exe=clustertx
	[ "$os" = windows ] && exe=clustertx.exe
	echo "building $name"
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch $GO build -trimpath \
		-ldflags "-s -w -X clustertx/app.Version=$VERSION -X clustertx/app.Commit=$COMMIT" \
		-o "$dir/$exe" .
	cp README.md transcode.yml.example "$dir/"
	if [ "$os" = windows ]; then
		$GO run ./scripts/zipdir "dist/$name.zip" "$dir"
	else
		tar -C dist -czf "dist/$name.tar.gz" "$name"
	fi
	rm -rf "$dir"
done
(cd dist && sha256sum clustertx-* >SHA256SUMS)
cat dist/SHA256SUMS
