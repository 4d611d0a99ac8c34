#!/usr/bin/env bash
# Install the Debian packages that tokentap's build, tests and demo need,
# when any is missing.  Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
	build-essential pkg-config clang llvm libclang-rt-14-dev
	libssl-dev libcurl4-openssl-dev libcjson-dev libcmocka-dev
	libnghttp2-dev zlib1g-dev libbrotli-dev libzstd-dev
	libsqlite3-dev libmicrohttpd-dev libbpf-dev bpftool
	curl nghttp2-client python3 python3-h2 python3-brotli python3-zstandard openssl
	prometheus nodejs npm valgrind procps iproute2
	libcapstone-dev golang-go
)

# `deps.sh bench` adds what only the benchmarks use: a metering proxy
# to compare the agent with.
if [ "${1:-}" = bench ]; then
	packages+=(mitmproxy)
fi

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*"install ok installed"*) ;;
	*)
		# A tool may come from elsewhere (Node.js is often not Debian's).
		case "$p" in
		nodejs) command -v node >/dev/null && continue ;;
		npm) command -v npm >/dev/null && continue ;;
		esac
		missing+=("$p")
		;;
	esac
done

[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
sudo=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || {
		echo "deps: missing packages and not root: ${missing[*]}" >&2
		exit 1
	}
	sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
