#!/bin/sh
# Wharf agent installer, served by a hub at /install.sh:
#   curl -sfL http://HUB:7480/install.sh | sh -s - --token TOKEN [--name NAME] [--labels k=v,...]
#        [--pool POOL] [--machine-id ID] [--hub GATEWAY]... [--hub-url URL]... [--root DIR]
#   curl -sfL http://HUB:7480/install.sh | sh -s - --uninstall [--root DIR]
# It installs the wharf binary from the hub and starts the agent: as a
# systemd unit where systemd runs (systemctl present and the root's
# /run/systemd/system exists), else as a restart loop in its own session
# (PID in /var/lib/wharf-agent/agent.pid, output in /var/log/wharf-agent.log).
# The binary comes from the first --hub-url (repeatable; default: the hub
# that served this script) that delivers it whole: a hub that refuses, fails
# or stalls (under WHARF_MIN_SPEED bytes/s, default 102400, for
# WHARF_STALL_SECONDS, default 10) is left for the next one, for up to five
# rounds over the list.
# --root DIR (or WHARF_ROOT) installs below DIR instead of /. --uninstall
# stops the agent and removes the binary, the unit and the data dir; it
# also stays installed as /usr/local/bin/wharf-agent-uninstall.
set -eu

HUB_URL="{{.HubURL}}"
HUB_URLS=""
HUB_GATEWAYS="{{.Gateways}}"
ROOT="${WHARF_ROOT:-}"
TOKEN=""
NAME=""
LABELS=""
POOL=""
MACHINE_ID=""
GATEWAYS=""
UNINSTALL=""

die() { echo "wharf install: $*" >&2; exit 1; }

# The agent's command line is built by word splitting, so every value is
# kept to characters that need no quoting. The message never quotes the
# value: it may be the join token.
safe() {
	case "$2" in
	"" | -*) die "$1 needs a value" ;;
	*[!A-Za-z0-9._:,=/@+_-]*) die "$1: only letters, digits and . _ : , = / @ + - are allowed" ;;
	esac
}

while [ $# -gt 0 ]; do
	opt="$1"
	case "$opt" in
	--uninstall) UNINSTALL=1; shift; continue ;;
	--token | --name | --labels | --pool | --machine-id | --hub | --hub-url | --root) ;;
	*) die "unknown option $opt (use --token, --name, --labels, --pool, --machine-id, --hub, --hub-url, --root, --uninstall)" ;;
	esac
	[ $# -ge 2 ] || die "$opt needs a value"
	safe "$opt" "$2"
	case "$opt" in
	--token) TOKEN="$2" ;;
	--name) NAME="$2" ;;
	--labels) LABELS="$2" ;;
	--pool) POOL="$2" ;;
	--machine-id) MACHINE_ID="$2" ;;
	--hub) GATEWAYS="$GATEWAYS,$2" ;;
	--hub-url) case ",$HUB_URLS," in *",${2%/},"*) ;; *) HUB_URLS="$HUB_URLS,${2%/}" ;; esac ;;
	--root) ROOT="$2" ;;
	esac
	shift 2
done
[ -z "$ROOT" ] || safe --root "$ROOT"
ROOT="${ROOT%/}"
[ -z "$ROOT" ] || case "$ROOT" in /*) ;; *) die "--root must be an absolute path" ;; esac

# The uninstaller, kept on the host as /usr/local/bin/wharf-agent-uninstall
# so that a machine can be removed without its hub. It runs with
# WHARF_UNINSTALL_ROOT set; WHARF_STOP_ONLY=1 only stops the agent (a
# reinstall does that first).
UNINSTALL_BODY=$(
	cat <<'EOF'
set -eu
ROOT="${WHARF_UNINSTALL_ROOT:-}"
DATA="$ROOT/var/lib/wharf-agent"
UNIT="$ROOT/etc/systemd/system/wharf-agent.service"
has_systemd() { command -v systemctl >/dev/null 2>&1 && [ -d "$ROOT/run/systemd/system" ]; }
if [ -f "$UNIT" ] && has_systemd; then
	systemctl disable --now wharf-agent.service >/dev/null 2>&1 || true
fi
# The restart loop is its own session and process group: stop the group
# (the loop and the agent), but only when the PID is still our loop's, so
# a PID reused after a reboot is never signalled.
if [ -f "$DATA/agent.pid" ]; then
	pid=$(cat "$DATA/agent.pid")
	case "$pid" in
	"" | *[!0-9]*) ;;
	*)
		if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$DATA/run"; then
			kill -TERM "-$pid" 2>/dev/null || true
			n=0
			while kill -0 "$pid" 2>/dev/null && [ $n -lt 50 ]; do
				sleep 0.1
				n=$((n + 1))
			done
			kill -KILL "-$pid" 2>/dev/null || true
		fi
		;;
	esac
	rm -f "$DATA/agent.pid"
fi
[ "${WHARF_STOP_ONLY:-}" != 1 ] || exit 0
if [ -f "$UNIT" ]; then
	rm -f "$UNIT"
	if has_systemd; then systemctl daemon-reload || true; fi
fi
rm -f "$ROOT/usr/local/bin/wharf"
rm -rf "$DATA"
rm -f "$ROOT/usr/local/bin/wharf-agent-uninstall"
echo "wharf agent uninstalled"
EOF
)

uninstall() { printf '%s\n' "$UNINSTALL_BODY" | WHARF_UNINSTALL_ROOT="$ROOT" sh; }

if [ -n "$UNINSTALL" ]; then
	uninstall
	exit 0
fi

[ -n "$TOKEN" ] || die "--token is required (wharf join-token create --pool POOL)"
case "$TOKEN" in WJ1.*) ;; *) die "that is not a Wharf join token" ;; esac
[ -n "$GATEWAYS" ] || GATEWAYS="$HUB_GATEWAYS"
[ -n "$HUB_URLS" ] || HUB_URLS="${HUB_URL%/}"
HUB_URLS="${HUB_URLS#,}"
MIN_SPEED="${WHARF_MIN_SPEED:-102400}"
STALL="${WHARF_STALL_SECONDS:-10}"
case "$MIN_SPEED$STALL" in *[!0-9]*) die "WHARF_MIN_SPEED and WHARF_STALL_SECONDS must be whole numbers" ;; esac

arch=$(uname -m)
case "$arch" in
x86_64 | amd64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
*) die "unsupported architecture $arch" ;;
esac

BIN="$ROOT/usr/local/bin/wharf"
UNIT="$ROOT/etc/systemd/system/wharf-agent.service"
DATA="$ROOT/var/lib/wharf-agent"
LOG="$ROOT/var/log/wharf-agent.log"
mkdir -p "$(dirname "$BIN")" "$DATA" "$(dirname "$LOG")"

tmp="$BIN.download"
# Without curl's own retries: a stalled hub would be waited on again; the
# rounds retry instead, on every hub. The summary goes to the console, and
# says which hub served and how fast. --compressed: a third of the bytes
# (every distribution's curl has zlib; probing with curl -V took seconds
# on busy machines).
got=""
round=0
while [ -z "$got" ] && [ $round -lt 5 ]; do
	[ $round -eq 0 ] || sleep 1
	round=$((round + 1))
	for u in $(echo "$HUB_URLS" | tr ',' ' '); do
		if info=$(curl -sSfL --compressed --connect-timeout 5 --speed-limit "$MIN_SPEED" --speed-time "$STALL" \
			-w "%{size_download} bytes in %{time_total} s" -o "$tmp" "$u/download/wharf-linux-$arch"); then
			echo "wharf install: wharf-linux-$arch from $u: $info"
			got="$u"
			break
		fi
		echo "wharf install: $(date -u +%H:%M:%S) download from $u failed; trying the next hub" >&2
	done
done
[ -n "$got" ] || { rm -f "$tmp"; die "download of wharf-linux-$arch failed from every hub ($HUB_URLS)"; }
chmod 0755 "$tmp"

# A reinstall replaces a running agent: stop it before its binary moves.
WHARF_STOP_ONLY=1 uninstall
mv "$tmp" "$BIN"
{
	echo "#!/bin/sh"
	echo "# Uninstalls the Wharf agent (written by install.sh)."
	echo "WHARF_UNINSTALL_ROOT='$ROOT'"
	echo "export WHARF_UNINSTALL_ROOT"
	printf '%s\n' "$UNINSTALL_BODY"
} >"$ROOT/usr/local/bin/wharf-agent-uninstall"
chmod 0755 "$ROOT/usr/local/bin/wharf-agent-uninstall"

if [ -n "$MACHINE_ID" ]; then
	echo "$MACHINE_ID" >"$DATA/machine-id"
fi

# The agent's flags after --data-dir, the same under systemd and the loop.
args="--token $TOKEN"
for g in $(echo "$GATEWAYS" | tr ',' ' '); do args="$args --hub $g"; done
[ -z "$NAME" ] || args="$args --name $NAME"
[ -z "$LABELS" ] || args="$args --labels $LABELS"
[ -z "$POOL" ] || args="$args --pool $POOL"
[ -z "$MACHINE_ID" ] || args="$args --machine-id $MACHINE_ID"

if command -v systemctl >/dev/null 2>&1 && [ -d "$ROOT/run/systemd/system" ]; then
	mkdir -p "$(dirname "$UNIT")"
	(
		umask 077 # the unit holds the join token
		cat >"$UNIT" <<UNIT
[Unit]
Description=Wharf agent
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/local/bin/wharf agent --data-dir /var/lib/wharf-agent $args
Restart=always
RestartSec=2
LimitNOFILE=65536
# The exec driver's instance supervisors outlive an agent restart and are
# adopted by the next agent: stop only the agent's own process.
KillMode=process

[Install]
WantedBy=multi-user.target
UNIT
	)
	chmod 0600 "$UNIT"
	systemctl daemon-reload
	systemctl enable wharf-agent.service
	systemctl restart wharf-agent.service
	echo "wharf agent installed and started (systemctl status wharf-agent)"
	exit 0
fi

# No systemd: a restart loop in a session of its own (so the SSH session or
# cloud-init step that ran this script can end), recording its PID, which
# is also its process group, for --uninstall.
(
	umask 077 # the loop holds the join token
	cat >"$DATA/run" <<RUN
#!/bin/sh
# Keeps the Wharf agent running on a host without systemd (written by install.sh).
echo \$\$ >"$DATA/agent.pid"
while :; do
	status=0
	"$BIN" agent --data-dir "$DATA" $args || status=\$?
	echo "wharf agent exited with status \$status; restarting in 2s"
	sleep 2
done
RUN
)
chmod 0700 "$DATA/run"
setsid nohup sh "$DATA/run" </dev/null >>"$LOG" 2>&1 &
n=0
while [ ! -s "$DATA/agent.pid" ] && [ $n -lt 50 ]; do
	sleep 0.1
	n=$((n + 1))
done
[ -s "$DATA/agent.pid" ] || die "the agent's restart loop did not start (see $LOG)"
echo "wharf agent installed and started without systemd (PID $(cat "$DATA/agent.pid"), log $LOG)"
