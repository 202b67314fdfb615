#!/usr/bin/env bash
# HTTP load test: the example web app's /counter handler (reads and writes
# the session on every request) with the session layer, against the same
# handler served without it (--bare). As a reference point, the same
# handler also runs on the peer, tower-sessions with its in-memory store
# (examples/peer): server-side sessions, no encryption. All run on
# 127.0.0.1; wrk drives each for a bounded time, in turn, and everything
# stops by itself.
#
#   benches/load.sh                 # 3 rounds of 10 s per variant, at 16
#                                   # and at 256 connections
#   DURATION=5s ROUNDS=1 CONNECTIONS="16 64 1024" benches/load.sh
#   STRICT=1 benches/load.sh        # exit 1 if the target is missed at any level
#
# Two concurrency levels by default, because the ratio depends on it: with
# few connections each request waits for a round trip through wrk and the
# kernel, so the session's extra time per request shows in full; with
# many, both variants are saturated (their capacity), and the kernel and
# the runtime batch more work per wakeup.
#
# Needs wrk (Debian: apt-get install wrk), curl and pgrep. Prints
# requests per second, latency percentiles, non-2xx responses, socket
# errors, and the CPU time per request of the app and of wrk (from
# /proc and `times`) for each round, then the medians and the ratio
# session/bare. Target: the ratio is at least 0.85 with zero errors.
#
# The build follows RUSTFLAGS and CARGO_TARGET_DIR, e.g. the Poly1305
# backend the README recommends:
#   RUSTFLAGS='--cfg poly1305_backend="soft"' CARGO_TARGET_DIR=target/soft benches/load.sh
#
# LAUNCHER, if set, is a command the three servers are started through;
# it must run them in its own process (as a dynamic loader, `env` or
# `taskset` do), since their CPU time is read from the process that
# `timeout` starts. For example the dynamic loader of a newer glibc, whose
# getrandom uses the kernel's vDSO generator instead of a system call
# (BENCHMARKS.md shows how to get one):
#   LAUNCHER="$GLIBC/ld-linux-x86-64.so.2 --library-path $GLIBC" benches/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# `times` and awk below read and print numbers with a decimal point.
export LC_ALL=C

DURATION="${DURATION:-10s}"
if ! [[ "$DURATION" =~ ^[1-9][0-9]*s$ ]]; then
  echo "error: DURATION must be whole seconds, like 10s (got '$DURATION')" >&2
  exit 2
fi
read -r -a LAUNCH <<< "${LAUNCHER:-}"
ROUNDS="${ROUNDS:-3}"
THREADS="${THREADS:-1}"
CONNECTIONS="${CONNECTIONS:-16 256}"
PORT_SESSION="${PORT_SESSION:-38281}"
PORT_BARE="${PORT_BARE:-38282}"
PORT_PEER="${PORT_PEER:-38283}"
TARGET="0.85"
# Safety net: no server outlives this many seconds.
LEVELS=$(wc -w <<< "$CONNECTIONS")
SERVER_LIFETIME=$(( 60 + LEVELS * ROUNDS * 3 * (${DURATION%s} + 5) ))

for tool in wrk curl pgrep getconf; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: $tool is missing (Debian: apt-get install $tool); nothing was run" >&2
    exit 2
  fi
done

echo "==> building the example app and the peer (release)"
cargo build --release --example webapp --example peer --features axum --quiet
BIN="${CARGO_TARGET_DIR:-target}/release/examples/webapp"
PEER_BIN="${CARGO_TARGET_DIR:-target}/release/examples/peer"

PIDS=()
cleanup() {
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT

start() { # variable for the server's pid, port, binary, extra args...
  local pid_var="$1" port="$2" bin="$3"; shift 3
  if curl -s -o /dev/null "http://127.0.0.1:$port/health"; then
    echo "error: port $port is already in use (set PORT_SESSION / PORT_BARE / PORT_PEER)" >&2
    exit 2
  fi
  ADDR="127.0.0.1:$port" LOG=warn timeout "$SERVER_LIFETIME" "${LAUNCH[@]}" "$bin" "$@" >/dev/null &
  local wrapper="$!"
  PIDS+=("$wrapper")
  for _ in $(seq 1 100); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/health"; then
      # The app is the child of `timeout`: its CPU time is read from /proc.
      printf -v "$pid_var" '%s' "$(pgrep -P "$wrapper" | head -n 1)"
      return 0
    fi
    sleep 0.1
  done
  echo "error: the app on port $port did not start" >&2
  exit 2
}

# A throwaway key for this run only.
SESSION_KEY="$(head -c 32 /dev/urandom | base64 | tr -d '\n')" start SESSION_PID "$PORT_SESSION" "$BIN"
start BARE_PID "$PORT_BARE" "$BIN" --bare
start PEER_PID "$PORT_PEER" "$PEER_BIN"
TICKS_PER_SECOND="$(getconf CLK_TCK)"

# CPU time (user + system) a process has used so far, in clock ticks.
cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# The name=value of the Set-Cookie that a first GET /counter returns.
first_cookie() { # port
  curl -s -D - -o /dev/null "http://127.0.0.1:$1/counter" \
    | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | head -n 1
}

# One session cookie, sent with every request to the app with and without
# the layer (so their requests are the same size); the layer opens it, the
# handler reads and writes it, the layer seals it again. The peer gets its
# own session id cookie.
COOKIE="$(first_cookie "$PORT_SESSION")"
PEER_COOKIE="$(first_cookie "$PORT_PEER")"
if [ -z "$COOKIE" ] || [ -z "$PEER_COOKIE" ]; then
  echo "error: no session cookie from the app or the peer" >&2
  exit 2
fi

# Parses wrk --latency output, followed by the lines of `times` and the
# app's CPU ticks during the run, into:
#   rps p50 p90 p99 non2xx errors app_us wrk_us
# (latencies in milliseconds; app_us and wrk_us: CPU microseconds per
# request of the app and of wrk).
parse() {
  awk -v tck="$TICKS_PER_SECOND" '
    function sec(v,  m) { # "1m2.500s" -> 62.5
      m = v; sub(/m.*/, "", m); sub(/^[0-9]+m/, "", v); sub(/s$/, "", v)
      return m * 60 + v
    }
    function ms(v) {
      if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
      if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
      if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
      return v
    }
    $1 == "50%" { p50 = ms($2) } $1 == "90%" { p90 = ms($2) } $1 == "99%" { p99 = ms($2) }
    /^Requests\/sec:/ { rps = $2 }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ {
      gsub(/,/, ""); errors = $4 + $6 + $8 + $10
    }
    / requests in / { requests = $1 }
    /^[0-9]+m[0-9.]+s [0-9]+m[0-9.]+s$/ { times_line++; if (times_line == 2) wrk_cpu = sec($1) + sec($2) }
    /^app_ticks / { app_cpu = $2 / tck }
    END {
      n = (requests > 0) ? requests : 1
      printf "%.0f %.3f %.3f %.3f %d %d %.2f %.2f\n", rps, p50, p90, p99, non2xx + 0, errors + 0,
        app_cpu * 1e6 / n, wrk_cpu * 1e6 / n
    }
  '
}

run() { # port, app pid, connections, cookie
  local before after
  before="$(cpu_ticks "$2")"
  {
    # In a subshell, so that `times` reports this wrk run alone: its second
    # line is the CPU time of the subshell's children.
    (
      wrk -t"$THREADS" -c"$3" -d"$DURATION" --latency \
        -H "Cookie: $4" "http://127.0.0.1:$1/counter"
      times
    )
    after="$(cpu_ticks "$2")"
    echo "app_ticks $(( after - before ))"
  } | parse
}

# Warm-up (not counted).
wrk -t1 -c4 -d2s -H "Cookie: $COOKIE" "http://127.0.0.1:$PORT_BARE/counter" >/dev/null
wrk -t1 -c4 -d2s -H "Cookie: $COOKIE" "http://127.0.0.1:$PORT_SESSION/counter" >/dev/null
wrk -t1 -c4 -d2s -H "Cookie: $PEER_COOKIE" "http://127.0.0.1:$PORT_PEER/counter" >/dev/null

# Medians per column (rps, p50, p90, p99, app_us, wrk_us); errors summed.
summary() {
  printf '%s\n' "$@" | awk '
    { for (i = 1; i <= 8; i++) col[i, NR] = $i; non2xx += $5; errors += $6 }
    END {
      n = NR
      for (i = 1; i <= 8; i++) {
        for (a = 1; a <= n; a++) v[a] = col[i, a]
        for (a = 1; a <= n; a++) for (b = a + 1; b <= n; b++) if (v[b] < v[a]) { t = v[a]; v[a] = v[b]; v[b] = t }
        m[i] = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
      }
      printf "%.0f %.3f %.3f %.3f %d %d %.2f %.2f\n", m[1], m[2], m[3], m[4], non2xx, errors, m[7], m[8]
    }'
}

# $1 / $2 to three places, rounded down, so a printed 0.850 is never a
# missed 0.8497.
ratio_of() {
  awk -v s="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0) ? int(1000 * s / b) / 1000 : 0 }'
}

# One concurrency level: the rounds, the medians, the ratio. Sets MET.
level() { # connections
  local connections="$1" round variant port pid cookie line rows
  local rps p50 p90 p99 non2xx errors app_us wrk_us
  echo
  echo "==> wrk -t$THREADS -c$connections -d$DURATION, $ROUNDS round(s) per variant, GET /counter"
  ROW='%-8s %-6s %10s %9s %9s %9s %7s %7s %8s %8s\n'
  printf "$ROW" variant round req/s p50_ms p90_ms p99_ms non2xx errors app_us wrk_us
  BARE=(); SESSION=(); PEER=()
  local orders=("bare session peer" "session peer bare" "peer bare session")
  for round in $(seq 1 "$ROUNDS"); do
    # The order turns each round, so no variant always runs first.
    for variant in ${orders[$(( (round - 1) % 3 ))]}; do
      case "$variant" in
        bare) port="$PORT_BARE"; pid="$BARE_PID"; cookie="$COOKIE"; rows=BARE ;;
        session) port="$PORT_SESSION"; pid="$SESSION_PID"; cookie="$COOKIE"; rows=SESSION ;;
        peer) port="$PORT_PEER"; pid="$PEER_PID"; cookie="$PEER_COOKIE"; rows=PEER ;;
        *) echo "error: unknown variant $variant" >&2; exit 2 ;;
      esac
      read -r rps p50 p90 p99 non2xx errors app_us wrk_us < <(run "$port" "$pid" "$connections" "$cookie")
      printf "$ROW" "$variant" "$round" "$rps" "$p50" "$p90" "$p99" "$non2xx" "$errors" "$app_us" "$wrk_us"
      line="$rps $p50 $p90 $p99 $non2xx $errors $app_us $wrk_us"
      eval "$rows+=(\"\$line\")" # BARE, SESSION or PEER, set above
    done
  done
  local b_rps b_p50 b_p90 b_p99 b_non2xx b_err b_app b_wrk s_rps s_p50 s_p90 s_p99 s_non2xx s_err s_app s_wrk ratio met
  local p_rps p_p50 p_p90 p_p99 p_non2xx p_err p_app p_wrk peer_ratio
  read -r b_rps b_p50 b_p90 b_p99 b_non2xx b_err b_app b_wrk < <(summary "${BARE[@]}")
  read -r s_rps s_p50 s_p90 s_p99 s_non2xx s_err s_app s_wrk < <(summary "${SESSION[@]}")
  read -r p_rps p_p50 p_p90 p_p99 p_non2xx p_err p_app p_wrk < <(summary "${PEER[@]}")

  echo
  echo "==> medians over $ROUNDS round(s), $connections connections"
  ROW='%-8s %10s %9s %9s %9s %7s %7s %8s %8s\n'
  printf "$ROW" variant req/s p50_ms p90_ms p99_ms non2xx errors app_us wrk_us
  printf "$ROW" bare "$b_rps" "$b_p50" "$b_p90" "$b_p99" "$b_non2xx" "$b_err" "$b_app" "$b_wrk"
  printf "$ROW" session "$s_rps" "$s_p50" "$s_p90" "$s_p99" "$s_non2xx" "$s_err" "$s_app" "$s_wrk"
  printf "$ROW" peer "$p_rps" "$p_p50" "$p_p90" "$p_p99" "$p_non2xx" "$p_err" "$p_app" "$p_wrk"
  ratio="$(ratio_of "$s_rps" "$b_rps")"
  peer_ratio="$(ratio_of "$p_rps" "$b_rps")"
  echo "ratio session/bare: $ratio (target >= $TARGET with zero errors)"
  echo "ratio peer/bare: $peer_ratio (tower-sessions, in-memory store; for reference)"
  if [ $(( p_non2xx + p_err )) -ne 0 ]; then
    echo "warning: the peer had non-2xx responses or socket errors; its ratio means nothing"
  fi
  # wrk and the app share the machine's cores, so requests per second follow
  # the CPU time both spend per request: the target leaves the session this
  # much app CPU per request on top of the bare handler's.
  awk -v ba="$b_app" -v bw="$b_wrk" -v sa="$s_app" -v t="$TARGET" 'BEGIN {
    printf "app CPU per request: bare %.2f us, session %.2f us (+%.2f us); wrk %.2f us\n", ba, sa, sa - ba, bw
    printf "with these costs a ratio of %s leaves the session about %.2f us of app CPU per request\n", t, (ba + bw) * (1 / t - 1)
  }'

  # From the request rates, not from the rounded ratio printed above.
  met="$(awk -v s="$s_rps" -v b="$b_rps" -v t="$TARGET" 'BEGIN { print (b > 0 && s >= t * b) ? "yes" : "no" }')"
  if [ $(( b_non2xx + b_err + s_non2xx + s_err )) -ne 0 ]; then met=no; fi
  echo "target met: $met"
  RESULTS+=("$connections $ratio $met $peer_ratio")
}

RESULTS=()
for connections in $CONNECTIONS; do
  level "$connections"
done

echo
echo "==> ratio session/bare by concurrency (target >= $TARGET with zero errors)"
all_met=yes
for result in "${RESULTS[@]}"; do
  read -r connections ratio met peer_ratio <<< "$result"
  printf '%6s connections: %s (met: %s); peer/bare %s\n' "$connections" "$ratio" "$met" "$peer_ratio"
  [ "$met" = yes ] || all_met=no
done
if [ "${STRICT:-0}" = 1 ] && [ "$all_met" != yes ]; then
  exit 1
fi
