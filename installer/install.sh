#!/bin/sh
# Wharf agent installer, served by a hub at /install.sh:
#   curl -sfL http://HUB:7480/install.sh | sh -s - --token TOKEN [--name NAME] [--labels k=v,...]
# It installs the wharf binary from the hub, a systemd unit, and starts the
# agent. WHARF_ROOT (default /) installs into another root, for tests.
set -eu

HUB_URL="{{.HubURL}}"
HUB_GATEWAYS="{{.Gateways}}"
ROOT="${WHARF_ROOT:-}"
TOKEN=""
NAME=""
LABELS=""
POOL=""

die() { echo "wharf install: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
	case "$1" in
	--token) TOKEN="${2:-}"; shift 2 ;;
	--name) NAME="${2:-}"; shift 2 ;;
	--labels) LABELS="${2:-}"; shift 2 ;;
	--pool) POOL="${2:-}"; shift 2 ;;
	*) die "unknown option $1 (use --token, --name, --labels, --pool)" ;;
	esac
done
[ -n "$TOKEN" ] || die "--token is required (wharf join-token create --pool POOL)"
case "$TOKEN" in WJ1.*) ;; *) die "that is not a Wharf join token" ;; esac

arch=$(uname -m)
case "$arch" in
x86_64 | amd64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
*) die "unsupported architecture $arch" ;;
esac

BIN="$ROOT/usr/local/bin/wharf"
UNIT="$ROOT/etc/systemd/system/wharf-agent.service"
mkdir -p "$(dirname "$BIN")" "$(dirname "$UNIT")" "$ROOT/var/lib/wharf-agent"

tmp="$BIN.download"
curl -sfL -o "$tmp" "$HUB_URL/download/wharf-linux-$arch" || die "download of wharf-linux-$arch from $HUB_URL failed"
chmod 0755 "$tmp"
mv "$tmp" "$BIN"

args="agent --data-dir /var/lib/wharf-agent --token $TOKEN"
for g in $(echo "$HUB_GATEWAYS" | tr ',' ' '); do args="$args --hub $g"; done
[ -n "$NAME" ] && args="$args --name $NAME"
[ -n "$LABELS" ] && args="$args --labels $LABELS"
[ -n "$POOL" ] && args="$args --pool $POOL"

cat >"$UNIT" <<UNIT
[Unit]
Description=Wharf agent
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/local/bin/wharf $args
Restart=always
RestartSec=2
LimitNOFILE=65536
# The exec driver's instance supervisors outlive an agent restart and are
# adopted by the next agent: stop only the agent's own process.
KillMode=process

[Install]
WantedBy=multi-user.target
UNIT
chmod 0600 "$UNIT" # it holds the join token

systemctl daemon-reload
systemctl enable --now wharf-agent.service
echo "wharf agent installed and started (systemctl status wharf-agent)"
