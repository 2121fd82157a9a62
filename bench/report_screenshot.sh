#!/usr/bin/env bash
# Render `rzero-pl report` for a run folder and take a headless-Chromium screenshot of the page,
# to see what a person sees (the page is self-contained: its plots are embedded PNGs).
#   bench/report_screenshot.sh RUN_DIR [OUT_PNG]     (default OUT_PNG: bench/report.png)
# Needs chromium (Debian: apt-get install -y chromium). The page goes to a temporary folder; the
# screenshot is a 1200x3000 window, cropped by Chromium to that size.
set -euo pipefail
run_dir=${1:?usage: bench/report_screenshot.sh RUN_DIR [OUT_PNG]}
out_png=${2:-bench/report.png}
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$here/.venv/bin/python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" -m rzero_pl.analysis.report "$run_dir" --out "$tmp/report.html"
# --no-sandbox: Chromium refuses to run as root with its sandbox (containers, CI).
chromium --headless --disable-gpu --no-sandbox --hide-scrollbars \
  --screenshot="$(realpath -m "$out_png")" --window-size=1200,3000 "file://$tmp/report.html" \
  2> "$tmp/chromium.log" || { cat "$tmp/chromium.log" >&2; exit 1; }
echo "screenshot: $out_png ($(stat -c %s "$out_png") bytes)"
