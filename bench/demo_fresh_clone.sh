#!/bin/bash
# Time the README's first command as a new user meets it: from `git clone` to the end.
#
#     bench/demo_fresh_clone.sh DIR [REPOSITORY]
#     bench/cpu_quota.sh 0.9 bench/demo_fresh_clone.sh /tmp/demo_1   # an emulated slow day
#
# Clones REPOSITORY (default: this checkout) into DIR (removed first), runs
# `python3 tasks.py demo` there with its output in DIR.log (each line stamped with the
# seconds since the clone began), and prints the wall time, the second at which each stage
# began, the training time and the held-out test fold's WAR. Issue 19's target: <= 10
# minutes on a slow day with >= 80% WAR; say what `bench/demo_profile.py` measured for the
# reference step the same day (or under the same quota) beside the timing.
set -u
if [ $# -lt 1 ]; then
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
dir=$(realpath -m "$1")
repository=${2:-$(git -C "$(dirname "$0")" rev-parse --show-toplevel)}
rm -rf "$dir"
start=$(date +%s.%N)
echo "start $(date -u '+%F %H:%M:%S') UTC: git clone $repository $dir"
# Each line of DIR.log starts with the seconds since the clone began (unbuffered output).
stamp='import sys, time
start = float(sys.argv[1])
for line in sys.stdin:
    print(f"{time.time() - start:7.1f} {line}", end="", flush=True)'
git clone -q "$repository" "$dir" &&
    (cd "$dir" && PYTHONUNBUFFERED=1 python3 tasks.py demo 2>&1) |
    python3 -c "$stamp" "$start" > "$dir.log"
code=${PIPESTATUS[0]}
end=$(date +%s.%N)
seconds=$(python3 -c "print(round($end - $start, 1))")
echo "exit $code, $seconds s ($(date -u -d@"${seconds%.*}" +%-Mm%Ss)) from clone to end, at $(date -u +%H:%M:%S) UTC"
# Where the time went: the seconds at which each stage began.
grep -E "^ *[0-9.]+ (creating |\+ |Epoch 1/|trained in|test fold|done:)" "$dir.log" |
    sed -E 's/ -m pip install --quiet/ pip install/; s/--data-dir .*//' | cut -c1-110
exit $code
