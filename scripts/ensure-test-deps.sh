#!/usr/bin/env bash
# Installs the system components some tests need (Chromium for browser tests, dovecot for IMAP tests,
# docker-compose for the deployment file)
# when they are missing and we are root. Otherwise those tests skip with a reason (never in CI).
set -u
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd)
# reads docker-compose.yml as a deployment would (no container engine is needed for `config`)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
# CJK glyphs, so screenshots of Chinese pages show text rather than empty boxes
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: ${need[*]} missing and not root: the tests needing them will skip" >&2
  exit 0
fi
echo "installing ${need[*]} for the tests..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# dovecot's package starts a system service we do not use: the tests run their own instance.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now dovecot >/dev/null 2>&1 || true; fi
exit 0
