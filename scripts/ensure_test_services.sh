#!/usr/bin/env bash
# Make sure what `make test` needs is running: Redis on 127.0.0.1:6379, PostgreSQL on
# 127.0.0.1:5432 (role postgres, no password) and Debian's Chromium at /usr/bin/chromium.
#
# Starts what is installed but stopped; installs what is missing with apt-get when
# running as root (or with password-less sudo). Silent when everything is already up.
# When something cannot be made available: with CI=true it exits 1 (those tests must
# fail, not skip, in CI); otherwise it warns and exits 0.
#
# Never runs `playwright install`: tests drive /usr/bin/chromium.

set -uo pipefail

REDIS_HOST=127.0.0.1
REDIS_PORT=6379
PG_HOST=127.0.0.1
PG_PORT=5432
CHROMIUM=/usr/bin/chromium

say() { echo "[q16] $*" >&2; }

problems=()
problem() { problems+=("$*"); }

is_ci() { [[ "${CI:-}" =~ ^(1|true|TRUE|True|yes)$ ]]; }

# --- Privileges and apt ------------------------------------------------------------------

SUDO=()
can_admin() {
    if [[ $EUID -eq 0 ]]; then SUDO=(); return 0; fi
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO=(sudo -n); return 0; fi
    return 1
}

apt_updated=0
apt_install() {
    can_admin || { say "not root (and no password-less sudo): cannot apt-get install $*"; return 1; }
    command -v apt-get >/dev/null 2>&1 || { say "no apt-get here: cannot install $*"; return 1; }
    if [[ $apt_updated -eq 0 ]]; then
        say "apt-get update"
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || return 1
        apt_updated=1
    fi
    say "apt-get install $*"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

have_systemd() { [[ -d /run/systemd/system ]]; }

wait_for() {  # wait_for SECONDS COMMAND...
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do
        [[ $SECONDS -ge $deadline ]] && return 1
        sleep 0.3
    done
}

# --- Redis -------------------------------------------------------------------------------

redis_ping() {
    if command -v redis-cli >/dev/null 2>&1; then
        [[ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
        return
    fi
    # No client: speak the protocol over bash's /dev/tcp.
    (
        exec 3<>"/dev/tcp/$REDIS_HOST/$REDIS_PORT" || exit 1
        printf 'PING\r\n' >&3
        IFS= read -r -t 2 reply <&3 || exit 1
        [[ "$reply" == +PONG* ]]
    ) 2>/dev/null
}

ensure_redis() {
    redis_ping && return 0
    if ! command -v redis-server >/dev/null 2>&1; then
        apt_install redis-server || { problem "Redis is not installed and could not be installed (apt-get install redis-server)"; return; }
        # The package may have started its own service already.
        wait_for 5 redis_ping && return 0
    fi
    say "starting redis-server on $REDIS_HOST:$REDIS_PORT"
    redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" \
        --save "" --appendonly no --dir /tmp >/dev/null 2>&1 \
        || { problem "redis-server failed to start on $REDIS_HOST:$REDIS_PORT"; return; }
    wait_for 10 redis_ping || problem "Redis on $REDIS_HOST:$REDIS_PORT does not answer PING"
}

# --- PostgreSQL --------------------------------------------------------------------------

pg_ready() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT"
        return
    fi
    # No client tools: accept anything that listens on the port (e.g. a container).
    (exec 3<>"/dev/tcp/$PG_HOST/$PG_PORT") 2>/dev/null
}

pg_versions() {  # installed server versions (not just client tools), oldest first
    local bin
    for bin in /usr/lib/postgresql/*/bin/postgres; do
        [[ -x "$bin" ]] && basename "$(dirname "$(dirname "$bin")")"
    done | sort -uV
}

pg_start() {
    local version
    version=$(pg_versions | tail -1)
    [[ -n "$version" ]] || return 1
    if [[ ! -d "/etc/postgresql/$version/main" ]]; then
        "${SUDO[@]}" pg_createcluster "$version" main >/dev/null || return 1
    fi
    if have_systemd && can_admin; then
        "${SUDO[@]}" systemctl start "postgresql@$version-main" 2>/dev/null && return 0
    fi
    if [[ $EUID -eq 0 ]] || can_admin; then
        "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null
    else
        pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null
    fi
}

pg_trust_local() {  # only for a PostgreSQL this script installed
    local version hba
    version=$(pg_versions | tail -1)
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    [[ -f "$hba" ]] || return 1
    if ! grep -q 'q16: local test access' "$hba"; then
        say "allowing the postgres role on 127.0.0.1 and ::1 without a password ($hba)"
        local tmp
        tmp=$(mktemp)
        {
            echo "# q16: local test access (added by scripts/ensure_test_services.sh)"
            echo "host    all    postgres    127.0.0.1/32    trust"
            echo "host    all    postgres    ::1/128         trust"
            "${SUDO[@]}" cat "$hba"
        } >"$tmp" || return 1
        "${SUDO[@]}" cp "$tmp" "$hba" && rm -f "$tmp"
    fi
    "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$version" main reload >/dev/null 2>&1 || true
}

ensure_postgres() {
    pg_ready && { check_pg_login; return 0; }
    local installed=0
    if [[ -z "$(pg_versions)" ]]; then
        apt_install postgresql || { problem "PostgreSQL is not installed and could not be installed (apt-get install postgresql)"; return; }
        installed=1
    fi
    if ! pg_ready; then
        say "starting PostgreSQL $(pg_versions | tail -1)"
        pg_start || { problem "PostgreSQL $(pg_versions | tail -1) failed to start (pg_ctlcluster)"; return; }
    fi
    wait_for 30 pg_ready || { problem "PostgreSQL on $PG_HOST:$PG_PORT is not ready"; return; }
    if [[ $installed -eq 1 ]]; then
        pg_trust_local || problem "could not configure password-less access for postgres in pg_hba.conf"
    fi
    check_pg_login
}

check_pg_login() {
    command -v psql >/dev/null 2>&1 || return 0
    # The tests' own URL (make test exports it), pointed at the maintenance database.
    local url="postgres://postgres@$PG_HOST:$PG_PORT/postgres"
    if [[ "${DATABASE_URL:-}" == postgres*://* && "${DATABASE_URL}" != *\?* ]]; then
        url="${DATABASE_URL%/*}/postgres"
    fi
    if ! PGCONNECT_TIMEOUT=5 psql -w "$url" -tAc 'select 1' >/dev/null 2>&1; then
        problem "PostgreSQL is up on $PG_HOST:$PG_PORT but the tests cannot log in as the postgres role without a password (add 'host all postgres 127.0.0.1/32 trust' to pg_hba.conf, or set TEST_DATABASE_URL=postgres://USER:PASSWORD@127.0.0.1:5432/q16)"
    fi
}

# --- Chromium ----------------------------------------------------------------------------

ensure_chromium() {
    [[ -x "$CHROMIUM" ]] && return 0
    apt_install chromium fonts-liberation || true
    [[ -x "$CHROMIUM" ]] || problem "Chromium is missing at $CHROMIUM (apt-get install chromium); the browser tests need it"
}

# --- Report tools --------------------------------------------------------------------------

ensure_report_tools() {
    # WeasyPrint (the report's PDF) needs Pango; the PDF test turns pages into PNG with pdftoppm.
    if ! ldconfig -p 2>/dev/null | grep -q libpangoft2-1.0; then
        apt_install libpango-1.0-0 libpangoft2-1.0-0 || true
    fi
    command -v pdftoppm >/dev/null 2>&1 || apt_install poppler-utils || true
    command -v pdftoppm >/dev/null 2>&1 || problem "pdftoppm is missing (apt-get install poppler-utils); the report's PDF test needs it"
}

# --- Main ----------------------------------------------------------------------------------

ensure_redis
ensure_postgres
ensure_chromium
ensure_report_tools

if [[ ${#problems[@]} -gt 0 ]]; then
    for p in "${problems[@]}"; do say "problem: $p"; done
    if is_ci; then
        say "CI=true: the test services must all be available; failing."
        exit 1
    fi
    say "warning: continuing; the tests that need the missing services will fail."
fi
exit 0
