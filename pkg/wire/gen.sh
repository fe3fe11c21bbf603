#!/usr/bin/env bash
# Regenerates wire.pb.go from wire.proto (make proto). Needs Debian's
# protobuf-compiler and protoc-gen-go v1.36.12:
#   apt-get install -y protobuf-compiler
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:$(go env GOPATH)/bin"
protoc --go_out=. --go_opt=paths=source_relative wire.proto
