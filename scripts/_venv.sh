# Sourced by the other scripts: make .venv exist and match pyproject.toml.
# The venv is rebuilt when pyproject.toml changes (a stamp holds its hash).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.odted-stamp"
want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)-$(python3 -c 'import sys;print(sys.version_info[:2])' | tr -d ' ')"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    echo "odted: preparing $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip >&2 2>/dev/null || true
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -e "$ROOT[test]" >&2
    echo "$want" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
