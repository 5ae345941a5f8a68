#!/usr/bin/env bash
# Builds faasconf with the CUDA backend on a machine that cannot reach GitHub.
#
# burn-cuda 0.22 -> cubecl-cuda -> cubecl-llvm, whose build script (`tracel-llvm-bundler`) downloads
# an LLVM 23 bundle from GitHub releases into ~/.local/share/tracel/. Here Debian's LLVM 22
# (`llvm-22-dev`, static archives) stands in for that bundle: a wrapper `llvm-config` in the
# bundle's place reports Debian's paths, leaves out the archives Debian does not ship (Polly) and
# the system libraries only LLVM's tools need (z3, libxml2), and the bundler's sentinel file
# tells it the bundle is installed. cubecl-cuda compiles kernels with NVRTC at run time; LLVM is
# linked for its NVPTX path only.
#
# Usage: deploy/cuda/build-offline.sh [cargo build arguments]   (default: -p faasconf)
#        deploy/cuda/build-offline.sh --stand-in-only   (write the stand-in, print its folder, build nothing)
# CUDARC_CUDA_VERSION picks the CUDA API the bindings target (default 13000: CUDA 13, driver >= 580).
# FAASCONF_LLVM_PREFIX names another LLVM installation to stand in (default /usr/lib/llvm-22,
# installed with apt when missing).
set -euo pipefail

cd "$(dirname "$0")/../.."
llvm="${FAASCONF_LLVM_PREFIX:-/usr/lib/llvm-22}"
if [ -z "${FAASCONF_LLVM_PREFIX:-}" ] && { [ ! -x "$llvm/bin/llvm-config" ] || [ ! -e /usr/include/zstd.h ]; }; then
    apt-get install -y -q --no-install-recommends llvm-22-dev libzstd-dev zlib1g-dev
fi
if [ ! -x "$llvm/bin/llvm-config" ]; then
    echo "FAASCONF_LLVM_PREFIX: no executable $llvm/bin/llvm-config" >&2
    exit 1
fi

bundler=$(grep -A1 '^name = "tracel-llvm-bundler"' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
if [ -z "$bundler" ]; then
    echo "Cargo.lock names no tracel-llvm-bundler version" >&2
    exit 1
fi
bundle="${XDG_DATA_HOME:-$HOME/.local/share}/tracel/tracel-llvm-$bundler"
mkdir -p "$bundle/bin"
cat > "$bundle/bin/llvm-config" <<WRAPPER
#!/bin/sh
# Stand-in for tracel's LLVM bundle, written by deploy/cuda/build-offline.sh: the LLVM in $llvm.
REAL="$llvm/bin/llvm-config"
case " \$* " in
  *" --system-libs "*) echo "-lrt -ldl -lm -lz -lzstd" ;;
  *" --libs "*)
    out=""
    for l in \$("\$REAL" "\$@"); do
      [ -f "$llvm/lib/lib\${l#-l}.a" ] && out="\$out \$l"
    done
    echo \$out ;;
  *) exec "\$REAL" "\$@" ;;
esac
WRAPPER
chmod +x "$bundle/bin/llvm-config"
touch "$bundle/.tracel-llvm-installed"

if [ "${1:-}" = "--stand-in-only" ]; then
    echo "$bundle"
    exit 0
fi
if [ $# -eq 0 ]; then
    set -- -p faasconf
fi
CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}" cargo build --release --features cuda "$@"
