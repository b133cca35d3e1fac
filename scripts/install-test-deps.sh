#!/usr/bin/env bash
# Installs the system packages the tests use, when missing: Debian's chromium (browser tests),
# R with lme4 and psych (statistics cross-checks). When everything is there it does nothing
# (no apt, no root needed); otherwise it installs with apt-get, as root or through sudo.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v Rscript >/dev/null 2>&1 || need+=(r-base-core)
if ! Rscript -e 'library(lme4)' >/dev/null 2>&1; then need+=(r-cran-lme4); fi
if ! Rscript -e 'library(psych)' >/dev/null 2>&1; then need+=(r-cran-psych); fi
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "The tests need these Debian packages: ${need[*]}" >&2
    echo "Install them as root (apt-get install ${need[*]}), then run make test again." >&2
    exit 1
  fi
  sudo="sudo"
fi
echo "Installing system packages: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
