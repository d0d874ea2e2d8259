# Shared set-up for scripts/serve and scripts/test: sourced, not run.
# Creates/updates .venv and installs what the project needs, Debian packages included.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
cd "$ROOT"

log() { printf '\033[1m[xiaowu]\033[0m %s\n' "$*" >&2; }

# Debian packages, installed only when missing (one apt-get update per run at most).
ensure_debian_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

find_python() {
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    log "Python 3.11 or newer is required"
    return 1
}

# ensure_venv [EXTRAS]: install the project (editable), with optional extras, into .venv;
# again only when pyproject.toml or the extras changed since the last install.
ensure_venv() {
    local extras="${1:-}"
    local target="."
    [ -n "$extras" ] && target=".[$extras]"
    local python
    python="$(find_python)"
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating virtual environment in .venv"
        "$python" -m venv "$VENV" 2>/dev/null || {
            ensure_debian_packages python3-venv
            "$python" -m venv "$VENV"
        }
    fi
    local stamp="$VENV/.xiaowu-installed"
    local want
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)-$extras"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        log "installing Python packages ($target)"
        "$VENV/bin/python" -m pip install -q --upgrade pip
        "$VENV/bin/python" -m pip install -q -e "$target"
        echo "$want" > "$stamp"
    fi
}

# ensure_web_packages: the pages' browser dependencies (socket.io-client) from the npm
# registry into client_web/node_modules, exactly as package-lock.json pins them; again
# only when the lock file changed. The server serves them from there (no CDN, no bundler).
ensure_web_packages() {
    command -v npm >/dev/null 2>&1 || ensure_debian_packages nodejs npm
    local stamp="$ROOT/client_web/node_modules/.xiaowu-installed"
    local want
    want="$(sha256sum client_web/package-lock.json | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        log "installing browser packages (npm ci in client_web/)"
        npm ci --prefix "$ROOT/client_web" --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null
        echo "$want" > "$stamp"
    fi
}
