#!/usr/bin/env bash
# Static analysis of the Terraform modules with checkov (run by
# scripts/test.sh). Exits non-zero on any failed check.
#
# checkov lives in its own venv, .venv-checkov, from
# tests/requirements-checkov.txt: it pins boto3 exactly, which conflicts with
# the boto3 of tests/requirements.txt.
#
# Offline: nothing is fetched from the Prisma Cloud platform (--skip-download,
# BC_SKIP_MAPPING), no external module is downloaded, and PyPI is not asked
# for a newer checkov (CKV_SKIP_PACKAGE_UPDATE_CHECK). No API key is given,
# so nothing is uploaded.
#
# Findings that do not apply are suppressed in the resource itself with
# `#checkov:skip=CKV_…:<reason>`; terraform/README.md lists them.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-checkov
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements-checkov.txt

export BC_SKIP_MAPPING=TRUE
export CKV_SKIP_PACKAGE_UPDATE_CHECK=true
export ANSI_COLORS_DISABLED=1

exec "$venv/bin/checkov" \
  --directory terraform \
  --framework terraform \
  --skip-download \
  --download-external-modules false \
  --compact \
  --quiet
