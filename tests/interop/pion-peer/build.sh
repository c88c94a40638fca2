#!/bin/sh
# Builds the Pion peer (main.go) into $1, offline, against Debian's packaged Pion
# (apt-get install golang-go golang-github-pion-webrtc.v3-dev): Go's GOPATH mode over
# /usr/share/gocode. Debian keeps Pion's webrtc at github.com/pion/webrtc, but its code imports
# itself as github.com/pion/webrtc/v3 (its module path), so a link gives it that name.
set -eu
out=$1
gocode=${GOCODE:-/usr/share/gocode}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src/github.com/pion/webrtc" "$tmp/src/pion-peer"
ln -s "$gocode/src/github.com/pion/webrtc" "$tmp/src/github.com/pion/webrtc/v3"
cp "$here/main.go" "$tmp/src/pion-peer/"
cd "$tmp/src/pion-peer"
# Go keeps its build cache under $HOME; a CI shell may have none.
[ -n "${GOCACHE:-}" ] || [ -n "${HOME:-}" ] || export GOCACHE="$tmp/go-cache"
GOPATH="$tmp:$gocode" GO111MODULE=off GOFLAGS= CGO_ENABLED=0 go build -o "$out" .
