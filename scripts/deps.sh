#!/usr/bin/env bash
# Installs what clustertx's tests and demo run for real: ffmpeg/ffprobe,
# OpenSSH (sshd, ssh-keygen, sftp-server), tmux, and perl and bash on the
# test hosts (the SSH executor runs on perl; the slow-dotfiles hosts read a
# ~/.bashrc). Installs only what is missing,
# and only as root (or with sudo); otherwise says what to install.
set -euo pipefail
need=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
[ -x /usr/sbin/sshd ] && [ -x /usr/lib/openssh/sftp-server ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v perl >/dev/null 2>&1 || need+=(perl-base)
command -v bash >/dev/null 2>&1 || need+=(bash)   # the terminal-display test drives a real tmux pane
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"
else
  echo "clustertx: please install: ${need[*]} (e.g. apt-get install -y ${need[*]})" >&2
  exit 1
fi
echo "clustertx: installing ${need[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
