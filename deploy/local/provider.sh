#!/usr/bin/env bash
# Build the twostep Keycloak provider (plugin/keycloak): one JAR with the sign-in condition, the
# record credential types and the twostep login theme.
#   provider.sh build    builds it (JUnit tests included) and prints the JAR's absolute path on stdout
#   provider.sh path     prints where the JAR is (or would be) without building
# Logs go to stderr, so `jar="$(bash deploy/local/provider.sh build)"` works.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
POM="$REPO/plugin/keycloak/pom.xml"
JAR="$REPO/plugin/keycloak/target/keycloak-twostep-0.2.0.jar"

die() { echo "provider.sh: $*" >&2; exit 1; }

build() {
  command -v java >/dev/null || die "Java (a JDK, 17 or later) is required to build the provider"
  command -v javac >/dev/null || die "javac is missing: install a JDK (e.g. openjdk-17-jdk-headless), not only a JRE"
  command -v mvn >/dev/null || die "Maven (mvn) is required to build the provider"
  echo "building the twostep provider ($POM)" >&2
  # clean: Maven does not recompile when only the compiler options changed.
  # -q keeps Maven to its errors; they go to stderr with everything else (colour codes stripped:
  # Maven 3.8 writes them even with -B).
  mvn -q -B -Dstyle.color=never -f "$POM" clean package 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2 \
    || die "the provider build failed (see Maven's output above)"
  [ -s "$JAR" ] || die "Maven finished but $JAR is missing"
  echo "$JAR"
}

case "${1:-}" in
  build) build ;;
  path) echo "$JAR" ;;
  *) die "usage: provider.sh build|path" ;;
esac
