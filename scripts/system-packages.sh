#!/usr/bin/env bash
# Debian packages the project's commands need, installed when missing.
#
#   scripts/system-packages.sh test    - what `make test` needs
#   scripts/system-packages.sh train   - what `make train` needs
#
# As root with apt-get: one `apt-get update` and one install of whatever is missing.
# Elsewhere: nothing is installed; the missing packages are named and the script fails,
# so a newcomer sees what to install instead of tests that error or skip.
set -euo pipefail

# Out-of-class glyphs for outlier exposure and calibration (training/synthesis/ood.py FONTS).
fonts=(
    "fonts-lohit-deva:/usr/share/fonts/truetype/lohit-devanagari/Lohit-Devanagari.ttf"
    "fonts-lohit-deva-nepali:/usr/share/fonts/truetype/lohit-nepali/Lohit-Nepali.ttf"
    "fonts-gargi:/usr/share/fonts/truetype/Gargi/Gargi.ttf"
    "fonts-dejavu-core:/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
)
case "${1:-test}" in
    test)
        wanted=("${fonts[@]}"
            # the try-it page's browser test (tests/test_page.py drives /usr/bin/chromium)
            "chromium:/usr/bin/chromium"
            # the HTTP load generator of bench/http_bench.py (tests/test_http_bench.py runs it briefly)
            "wrk:wrk")
        ;;
    train) wanted=("${fonts[@]}") ;;
    bench) wanted=("wrk:wrk") ;;
    *) echo "usage: $0 test|train|bench" >&2; exit 2 ;;
esac

missing=()
for entry in "${wanted[@]}"; do
    package=${entry%%:*} probe=${entry#*:}
    if [[ $probe == /* ]]; then [[ -e $probe ]] || missing+=("$package")
    else command -v "$probe" >/dev/null 2>&1 || missing+=("$package"); fi
done
((${#missing[@]})) || exit 0

if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages: ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "missing Debian packages: ${missing[*]}" >&2
    echo "install them (sudo apt-get install ${missing[*]}) and run the command again" >&2
    exit 1
fi
