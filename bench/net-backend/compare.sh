#!/bin/sh
# Measures libslirp (in-process, vmrun's UserNetwork) against passt (a helper process)
# as vmrun's user-mode back end: throughput both ways and connection set-up, with the
# host kernel's TCP stack in a network namespace as the "guest" behind a TAP device.
# Root only (netns, tun). Loopback and the namespace only: no outside traffic.
#   bench/net-backend/compare.sh [BYTES]
set -eu
cd -- "$(dirname -- "$0")"
BYTES=${1:-268435456}
ROOT=$(cd ../.. && pwd)
RELAY=${TMPDIR:-/tmp}/vmrun-net-relay
g++ -O2 -std=c++20 -I"$ROOT/native" -o "$RELAY" relay.cc "$ROOT"/native/devices/virtio/net/user_network.cc \
  "$ROOT"/native/devices/virtio/net/dns_relay.cc "$ROOT"/native/devices/virtio/net/ipv4_frame.cc "$ROOT"/native/common/error.cc -lslirp
NS=vmrun-nb$$
TAP=vmrnb$$
PY="python3 $(pwd)/tcp_measure.py"
cleanup() { [ -n "${RELAY_PID:-}" ] && kill "$RELAY_PID" 2>/dev/null; ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null; ip netns del "$NS" 2>/dev/null || true; }
trap cleanup EXIT
for kind in slirp passt; do
  ip netns add "$NS"
  "$RELAY" "$kind" "$TAP" 18600 5001 > /tmp/vmrun-relay.$$ & RELAY_PID=$!
  while ! grep -q ready /tmp/vmrun-relay.$$; do sleep 0.05; done
  ip link set "$TAP" netns "$NS"
  ip netns exec "$NS" sh -c "ip link set lo up; ip addr add 10.0.2.15/24 dev $TAP; ip link set $TAP up; ip route add default via 10.0.2.2"
  sleep 1
  echo "== $kind"
  $PY sink 127.0.0.1 18601 > /tmp/vmrun-sink.$$ & SINK=$!
  sleep 0.3
  ip netns exec "$NS" $PY send 10.0.2.2 18601 "$BYTES"; wait $SINK
  echo "guest->host loopback: $(tail -1 /tmp/vmrun-sink.$$)"
  ip netns exec "$NS" $PY sink 0.0.0.0 5001 > /tmp/vmrun-sink.$$ & SINK=$!
  sleep 0.5
  $PY send 127.0.0.1 18600 "$BYTES"; wait $SINK
  echo "host->guest published port: $(tail -1 /tmp/vmrun-sink.$$)"
  ip netns exec "$NS" $PY echo 5001 > /dev/null & ECHO=$!
  sleep 0.5
  echo "published port, $($PY latency 127.0.0.1 18600 200)"
  kill $ECHO; kill "$RELAY_PID"; wait "$RELAY_PID" 2>/dev/null || true; RELAY_PID=
  ip netns del "$NS"
done
rm -f /tmp/vmrun-relay.$$ /tmp/vmrun-sink.$$
