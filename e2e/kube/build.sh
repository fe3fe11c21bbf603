#!/usr/bin/env bash
# Builds the Kubernetes binaries that e2e/kubeenv runs (kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kubectl, etcd and the
# pause program) at the versions pinned in go.mod and etcd/go.mod, into
# ${WHARF_KUBE_BIN:-$HOME/.cache/wharf-kube/v1.35.4}. Only what is missing
# (or was built from another pin) is built, so a second run does nothing and
# returns at once. Usage: build.sh [NAME...] (default: all of them).
#
# Everything comes from the Go module proxy: a module that requires
# k8s.io/kubernetes cannot be built with `go install` (its staging modules
# are replace directives), so go.mod here replaces them with their published
# v0.35.4 versions. Cold, on a 2-core machine, the whole set takes about
# 25 minutes (see README.md); Go's build cache makes rebuilds cheap.
set -euo pipefail

KUBE_VERSION=v1.35.4
ETCD_VERSION=v3.6.16
here=$(cd "$(dirname "$0")" && pwd)
dest=${WHARF_KUBE_BIN:-$HOME/.cache/wharf-kube/$KUBE_VERSION}
all=(pause etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet)
if [ $# -gt 0 ]; then names=("$@"); else names=("${all[@]}"); fi

# pin NAME prints what a binary is built from; a binary whose stamp
# (NAME.version beside it) differs is rebuilt.
pin() {
	case "$1" in
	etcd) echo "go.etcd.io/etcd/server/v3 $ETCD_VERSION" ;;
	pause) echo "pause $(sha256sum "$here/pause/main.go" | cut -c1-16)" ;;
	kube-apiserver | kube-controller-manager | kube-scheduler | kubelet | kubectl) echo "k8s.io/kubernetes $KUBE_VERSION" ;;
	*)
		echo "build.sh: unknown binary $1 (known: ${all[*]})" >&2
		return 1
		;;
	esac
}

missing() { # the names whose binary or stamp is missing or stale
	local n
	for n in "${names[@]}"; do
		p=$(pin "$n")
		if [ ! -x "$dest/$n" ] || [ "$(cat "$dest/$n.version" 2>/dev/null)" != "$p" ]; then
			echo "$n"
		fi
	done
}

for n in "${names[@]}"; do pin "$n" >/dev/null || exit 2; done
todo=$(missing)
[ -z "$todo" ] && exit 0

GO=${GO:-go}
command -v "$GO" >/dev/null 2>&1 || {
	echo "build.sh: go is not installed (needed to build: $(echo $todo))" >&2
	exit 1
}
mkdir -p "$dest"
# One build at a time per cache dir: test packages may ask in parallel.
exec 9>"$dest/.build.lock"
flock 9
todo=$(missing)
[ -z "$todo" ] && exit 0

# Version stamps, as the Kubernetes release build sets them (a fixed build
# date keeps rebuilds reproducible and cacheable).
kver=${KUBE_VERSION#v}
kldflags=""
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
	kldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=${kver%%.*}"
	kldflags+=" -X $pkg.gitMinor=$(echo "$kver" | cut -d. -f2) -X $pkg.gitTreeState=clean"
	kldflags+=" -X $pkg.buildDate=2026-04-15T18:01:22Z"
done
export CGO_ENABLED=0 GOWORK=off GOFLAGS="${GOFLAGS:-} -buildvcs=false"

total_start=$(date +%s)
for n in $todo; do
	case "$n" in
	etcd) dir="$here/etcd" pkg=go.etcd.io/etcd/server/v3 ldflags="-X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" ;;
	pause) dir="$here" pkg=./pause ldflags="-s -w" ;;
	*) dir="$here" pkg=k8s.io/kubernetes/cmd/$n ldflags="$kldflags" ;;
	esac
	echo "build.sh: building $n ($(pin "$n")) into $dest ..."
	start=$(date +%s)
	tmp="$dest/.$n.tmp.$$"
	(cd "$dir" && "$GO" build -trimpath -ldflags "$ldflags" -o "$tmp" "$pkg") || {
		rm -f "$tmp"
		echo "build.sh: building $n failed" >&2
		exit 1
	}
	mv -f "$tmp" "$dest/$n"
	pin "$n" >"$dest/$n.version"
	echo "build.sh: built $n in $(($(date +%s) - start))s"
done
echo "build.sh: done in $(($(date +%s) - total_start))s ($dest)"
