#!/usr/bin/env bash
# make demo: the main job on a throwaway cluster. Generates a few clips,
# starts two real OpenSSH servers on loopback as "hosts" — nas (mounted: sees
# the media through another path, like an NFS mount) and gamer (streaming:
# shares nothing, files are copied over SFTP) — plus the manager itself as
# the local host, then runs `clustertx -c demo` on them and prints the
# outcome. Everything lives in one temp dir, removed at the end.
set -euo pipefail
bin=$(realpath "${1:-bin/clustertx}")
demo=$(mktemp -d "${TMPDIR:-/tmp}/clustertx-demo.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$demo"
}
trap cleanup EXIT
sshd=/usr/sbin/sshd
[ "$(id -u)" -eq 0 ] && mkdir -p /run/sshd

echo "== demo folder: $demo"
mkdir -p "$demo/media/Season 1" "$demo/gamer-work" "$demo/keys"
ln -s "$demo/media" "$demo/nas-view"   # the mounted host's view of the share

echo "== generating clips (320x240, h264)"
gen() { # name seconds
  ffmpeg -nostdin -v error -y -f lavfi -i "testsrc2=size=320x240:rate=25:duration=$2" \
    -f lavfi -i "sine=frequency=440:duration=$2" -c:v libx264 -preset ultrafast -qp 10 -g 50 \
    -c:a aac -b:a 64k -shortest "file:$demo/media/$1"
}
gen "Season 1/episode 01.mkv" 6
gen "Season 1/episode 02.mkv" 5
gen "film (2024).mp4" 8
gen "it's a \$(hostile) name.mkv" 4
gen "short.mkv" 3
gen "a long film (1999).mkv" 40   # split over every host (the rule below)

echo "== starting two sshd hosts on loopback"
ssh-keygen -q -t ed25519 -N '' -f "$demo/keys/client"
cp "$demo/keys/client.pub" "$demo/keys/authorized_keys"
: > "$demo/keys/known_hosts"
start_host() { # name -> prints port
  local name=$1 dir="$demo/keys/$1" port
  mkdir -p "$dir"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/host_ed25519"
  for _ in $(seq 1 20); do
    port=$(( 20000 + RANDOM % 30000 ))
    cat > "$dir/sshd_config" <<CFG
ListenAddress 127.0.0.1
Port $port
HostKey $dir/host_ed25519
AuthorizedKeysFile $demo/keys/authorized_keys
PidFile $dir/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
Subsystem sftp /usr/lib/openssh/sftp-server
CFG
    "$sshd" -D -e -f "$dir/sshd_config" 2>"$dir/log" &
    local pid=$!
    for _ in $(seq 1 50); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        pids+=("$pid")
        echo "[127.0.0.1]:$port $(cut -d' ' -f1-2 "$dir/host_ed25519.pub")" >> "$demo/keys/known_hosts"
        eval "${name}_port=$port"
        return 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
  done
  echo "could not start sshd for $name; see $dir/log" >&2
  cat "$dir/log" >&2
  return 1
}
start_host nas
start_host gamer
echo "   nas   = 127.0.0.1:$nas_port (mounted, sees $demo/media as $demo/nas-view)"
echo "   gamer = 127.0.0.1:$gamer_port (streaming, working_dir $demo/gamer-work)"

cat > "$demo/transcode.yml" <<YML
config:
  ffmpeg: ffmpeg
  clusters:
    demo:
      manager:
        type: local
        ffmpeg: ffmpeg
        fallback: no     # encode too (a cluster's local host is a fallback by default)
      nas:
        type: mounted
        ip: 127.0.0.1
        port: $nas_port
        user: $(id -un)
        identity_file: $demo/keys/client
        ffmpeg: ffmpeg
        path-substitutions:
          - $demo/media/ $demo/nas-view/
      gamer:
        type: streaming
        ip: 127.0.0.1
        port: $gamer_port
        user: $(id -un)
        identity_file: $demo/keys/client
        ffmpeg: ffmpeg
        working_dir: $demo/gamer-work
profiles:
  hevc:
    output_options: -c:v libx265 -preset ultrafast -crf 30 -x265-params log-level=error -c:a copy
    extension: .mkv
rules:
  already hevc:
    profile: SKIP
    criteria:
      vcodec: hevc
  long films, on every host at once:
    profile: hevc
    split: {min_duration: 30s, segment: 10s}
    criteria:
      runtime: '>0.5'
  everything else:
    profile: hevc
YML

echo "== config ($demo/transcode.yml):"
sed 's/^/   /' "$demo/transcode.yml"
echo
echo "== clustertx -c demo $demo/media"
set +e
"$bin" -y "$demo/transcode.yml" --known-hosts "$demo/keys/known_hosts" --ssh-config none \
  --journal "$demo/journal.jsonl" -c demo "$demo/media"
rc=$?
set -e
echo
echo "== exit code $rc; the media folder now holds:"
find "$demo/media" -type f -print0 | sort -z | while IFS= read -r -d '' f; do
  codec=$(ffprobe -v error -select_streams v:0 -show_entries stream=codec_name -of csv=p=0 "file:$f")
  dur=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "file:$f")
  printf '   %-40s %s  %.1fs\n' "${f#$demo/media/}" "$codec" "$dur"
done
left=$(find "$demo/gamer-work" -type f | wc -l)
echo "== files left in the streaming host's working_dir: $left"
exit "$rc"
