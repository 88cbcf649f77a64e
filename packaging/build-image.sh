#!/usr/bin/env bash
# Builds the container image from this checkout without a Docker daemon or a registry, runs it,
# and checks it the way an operator would: a Debian bookworm root filesystem made by
# debootstrap from Debian's archive, with Debian's nodejs and npm, imported as the local base
# image; the repository's Dockerfile built on it with podman; the image run with its SMTP port
# mapped; then: the service runs as the non-root user, the health check passes, SMTP answers
# 220 on the mapped port, and the data directory is 0700 with 0600 files.
#
#   npm run test:image            # the same, as a test (test/packaging/container-image.check.ts)
#   packaging/build-image.sh      # prints one "check:" line per check and a RESULT {...} line
#
# Needs root (debootstrap, podman) and: podman, debootstrap (apt-get install podman buildah
# debootstrap runc). Settings (environment):
#   MAILROUTE_IMAGE_WORK     work directory for the root filesystem (default /var/tmp/mailroute-image)
#   MAILROUTE_IMAGE_STORAGE  podman storage driver (default vfs: overlay is often refused when
#                            nested in a VM or container)
#   MAILROUTE_OCI_RUNTIME    OCI runtime for `podman run` (default runc when installed: crun
#                            refuses a cgroup v2 hierarchy that holds controllers in hybrid mode)
#   MAILROUTE_IMAGE_REBUILD_BASE=1  make the base root filesystem again
#   MAILROUTE_BASE_IMAGE     the base image's name (default localhost/mailroute-base:bookworm)
# With --base-only it stops once the base image exists.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK="${MAILROUTE_IMAGE_WORK:-/var/tmp/mailroute-image}"
STORAGE="${MAILROUTE_IMAGE_STORAGE:-vfs}"
BASE="${MAILROUTE_BASE_IMAGE:-localhost/mailroute-base:bookworm}"
IMAGE="localhost/mailroute:dev"
NAME="mailroute-image-check-$$"
MIRROR="${MAILROUTE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if [ -n "${MAILROUTE_OCI_RUNTIME:-}" ]; then RUNTIME="$MAILROUTE_OCI_RUNTIME"; elif command -v runc >/dev/null; then RUNTIME=runc; else RUNTIME=crun; fi
mkdir -p "$WORK"
podman() { command podman --storage-driver "$STORAGE" "$@"; }
say() { printf '%s\n' "$*"; }

for tool in podman debootstrap; do
  type -P "$tool" >/dev/null || { say "not applicable: $tool is not installed (apt-get install podman buildah debootstrap runc)"; exit 3; }
done
[ "$(id -u)" = 0 ] || { say "not applicable: needs root (debootstrap and rootful podman)"; exit 3; }

# 1. the base image: Debian bookworm with Node.js and npm from Debian's archive
if [ "${MAILROUTE_IMAGE_REBUILD_BASE:-0}" = 1 ] || ! podman image exists "$BASE"; then
  rootfs="$WORK/rootfs"
  rm -rf "$rootfs" && mkdir -p "$WORK"
  say "step: debootstrap bookworm into $rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || { say "failed: debootstrap (see $WORK/debootstrap.log)"; exit 1; }
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  # a TLS-intercepting proxy on the way to the npm registry: trust what this machine trusts
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$rootfs/usr/local/share/ca-certificates" && cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
  fi
  say "step: apt-get install nodejs npm in the root filesystem"
  mount -t proc proc "$rootfs/proc"
  trap 'umount "$rootfs/proc" 2>/dev/null || true' EXIT
  chroot "$rootfs" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm ca-certificates && update-ca-certificates && apt-get clean && rm -rf /var/lib/apt/lists/*' >"$WORK/apt.log" 2>&1 || { say "failed: apt-get in the root filesystem (see $WORK/apt.log)"; exit 1; }
  umount "$rootfs/proc"
  trap - EXIT
  say "step: import $BASE"
  tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' - "$BASE" >/dev/null
fi
say "base: $BASE node $(podman run --rm --runtime "$RUNTIME" --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$BASE" node --version 2>/dev/null || echo '(cannot run containers)')"
[ "${1:-}" = --base-only ] && exit 0

# 2. the repository's Dockerfile, unchanged, on that base (docker format: the OCI format has no
#    HEALTHCHECK, and podman drops it with only a warning)
say "step: podman build (isolation chroot, storage $STORAGE)"
podman build --format docker --isolation chroot --build-arg BASE_IMAGE="$BASE" -t "$IMAGE" . >"$WORK/build.log" 2>&1 || { say "failed: podman build (see $WORK/build.log)"; tail -20 "$WORK/build.log"; exit 1; }
say "built: $IMAGE $(podman image inspect --format '{{.Size}}' "$IMAGE") bytes"

# 3. run it: SMTP published on a free loopback port
smtp_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { podman rm -f -t 2 "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT
say "step: podman run (runtime $RUNTIME), SMTP on 127.0.0.1:$smtp_port"
# rlimits the sandbox can grant (podman asks for more than the hard limit by default)
podman run -d --name "$NAME" --runtime "$RUNTIME" --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 \
  -p "127.0.0.1:$smtp_port:2525" -e MAILROUTE_HOSTNAME=mx.image-check.test "$IMAGE" >/dev/null 2>"$WORK/run.log" \
  || { say "failed: podman run: $(tail -1 "$WORK/run.log")"; exit 1; }

# 4. the checks
healthy=no
for _ in $(seq 1 60); do
  if podman healthcheck run "$NAME" >/dev/null 2>&1; then healthy=yes; break; fi
  [ "$(podman inspect --format '{{.State.Running}}' "$NAME")" = true ] || break
  sleep 2
done
say "check: health check (packaging/healthcheck.js → /readyz) passed: $healthy"
[ "$healthy" = yes ] || { say "container log:"; podman logs --tail 20 "$NAME" 2>&1; }

uid=$(podman exec "$NAME" awk '/^Uid:/ {print $2}' /proc/1/status)
user=$(podman exec "$NAME" id -un)
say "check: the service runs as uid $uid ($user)"

banner=$(exec 3<>"/dev/tcp/127.0.0.1/$smtp_port" && timeout 10 head -n1 <&3 | tr -d '\r'; exec 3>&- || true)
say "check: SMTP on the mapped port answers: $banner"

dir_mode=$(podman exec "$NAME" stat -c '%a %U' /var/lib/mailroute)
file_modes=$(podman exec "$NAME" find /var/lib/mailroute -type f -printf '%m\n' | sort -u | tr '\n' ' ')
say "check: data directory $dir_mode, file modes: $file_modes"

printf 'RESULT {"healthy":"%s","uid":"%s","user":"%s","banner":"%s","dataDir":"%s","fileModes":"%s"}\n' \
  "$healthy" "$uid" "$user" "${banner//\"/}" "$dir_mode" "${file_modes% }"
[ "$healthy" = yes ] && [ "$uid" != 0 ] && [[ "$banner" == 220* ]] && [ "$dir_mode" = "700 mailroute" ] && [ "${file_modes% }" = 600 ]
