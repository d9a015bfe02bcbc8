#!/usr/bin/env bash
# Vendor uPlot (https://github.com/leeoniya/uPlot, MIT) from its npm package at a pinned version.
#
#     runchain/vendor/update_uplot.sh            # the version pinned below
#     runchain/vendor/update_uplot.sh 1.6.33     # another version: check the report's browser
#                                                 # tests pass, then commit the three files
#
# The report inlines uPlot.iife.min.js and uPlot.min.css into every HTML file it writes, with
# the LICENSE text in a comment beside them, so the page loads nothing from the network.
set -euo pipefail
VERSION="${1:-1.6.32}"
HERE="$(cd "$(dirname "$0")" && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && npm pack --silent "uplot@$VERSION" >/dev/null && tar xzf "uplot-$VERSION.tgz")
mkdir -p "$HERE/uplot"
cp "$TMP/package/dist/uPlot.iife.min.js" "$TMP/package/dist/uPlot.min.css" "$TMP/package/LICENSE" "$HERE/uplot/"
echo "$VERSION" > "$HERE/uplot/VERSION"
echo "uPlot $VERSION vendored into $HERE/uplot"
