#!/usr/bin/env bash
# Regenerates the HTTP output's TLS test certificates (valid 100 years):
# a CA, and a server certificate for 127.0.0.1 signed by it. Test-only keys.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 36500 \
  -subj /CN=spillway-test-ca -keyout "$tmp/ca.key" -out ca.pem \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj /CN=127.0.0.1 -keyout "$tmp/server.key" -out "$tmp/server.csr"
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$tmp/ext"
openssl x509 -req -in "$tmp/server.csr" -CA ca.pem -CAkey "$tmp/ca.key" -CAserial "$tmp/ca.srl" -CAcreateserial \
  -days 36500 -extfile "$tmp/ext" -out server.pem
openssl pkcs8 -topk8 -nocrypt -in "$tmp/server.key" -out server.key
