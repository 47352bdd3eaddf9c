#!/usr/bin/env bash
# Fetches the Apache Kafka broker jars (version in pom.xml) with Maven into a cache directory that
# survives between runs: $BACKSTOP_CACHE_DIR or ~/.cache/backstop. Prints the libs directory.
# Reuses the cached copy when it is complete.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
cache="${BACKSTOP_CACHE_DIR:-$HOME/.cache/backstop}/kafka-$version"
libs="$cache/libs"
if [ -f "$cache/.complete" ] && ls "$libs"/kafka_2.13-"$version".jar >/dev/null 2>&1; then
  echo "$libs"
  exit 0
fi
command -v mvn >/dev/null || { echo "fetch.sh: Maven (mvn) is needed to fetch the Kafka broker jars" >&2; exit 1; }
command -v java >/dev/null || { echo "fetch.sh: Java 17+ is needed to run the Kafka broker" >&2; exit 1; }
echo "fetch.sh: fetching Apache Kafka $version broker jars from Maven Central into $libs" >&2
rm -rf "$libs" && mkdir -p "$libs"
mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs" >&2
touch "$cache/.complete"
echo "$libs"
