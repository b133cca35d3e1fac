#!/usr/bin/env bash
# Installs the system packages the tests use, when missing: Debian's chromium (browser tests),
# R with lme4 and psych (statistics cross-checks). Needs root (or sudo) on Debian/Ubuntu.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v Rscript >/dev/null 2>&1 || need+=(r-base-core)
if ! Rscript -e 'library(lme4)' >/dev/null 2>&1; then need+=(r-cran-lme4); fi
if ! Rscript -e 'library(psych)' >/dev/null 2>&1; then need+=(r-cran-psych); fi
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing system packages: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
