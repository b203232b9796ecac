#!/usr/bin/env bash
# Install xscale into a project-local virtual environment (.venv).
#   scripts/setup.sh          the package and its runtime dependencies
#   scripts/setup.sh --test   also the test tools, and Debian's chromium for the MLflow UI test
# torch goes in first: a plain `torch` requirement can pull a multi-GB CUDA build, so the CPU
# build (or the build named by XSCALE_TORCH, e.g. "torch==2.13.0" from a CUDA index) is installed
# before anything that depends on it.
# Every other package is pinned by requirements/constraints.txt (the versions the tests passed
# with), so a laptop, CI and every node of a cluster install the same set; set
# XSCALE_CONSTRAINTS to another file, or to an empty string for the newest releases.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_SPEC=${XSCALE_TORCH:-torch==2.13.0}
CONSTRAINTS=${XSCALE_CONSTRAINTS-requirements/constraints.txt}

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
  .venv/bin/pip install -q -U pip
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "setup: installing $TORCH_SPEC first"
  .venv/bin/pip install -q "$TORCH_SPEC"
fi
extras=""
if [ "${1:-}" = "--test" ]; then extras="[test]"; fi
pins=()
if [ -n "$CONSTRAINTS" ]; then pins=(-c "$CONSTRAINTS"); fi
echo "setup: installing xscale$extras and its dependencies${CONSTRAINTS:+ (pinned by $CONSTRAINTS)}"
.venv/bin/pip install -q "${pins[@]}" -e ".$extras"

if [ "${1:-}" = "--test" ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian's chromium (headless browser for the MLflow UI test)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
      >/tmp/xscale-chromium-install.log 2>&1 \
      || echo "setup: chromium install failed (see /tmp/xscale-chromium-install.log); the UI test will skip"
  else
    echo "setup: no chromium and not root; the MLflow UI test will skip"
  fi
fi
echo "setup: done (.venv)"
