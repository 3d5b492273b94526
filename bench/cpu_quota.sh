#!/bin/bash
# Run a command with its CPU time capped, as on a slow day of this workplace's 2-core VMs.
#
#     bench/cpu_quota.sh CPUS COMMAND [ARGS...]
#     bench/cpu_quota.sh 0.9 python3 tasks.py demo
#
# A slow day gives the VM about half the CPU time of a quick one: issue 19's reference step
# (`bench/demo_profile.py`, "the step alone") took 176.5 ms on 2026-12-03's slow morning and
# 83-93 ms on quick days. A quota of 0.9 CPU (90 ms per 100 ms over both cores) made it
# 179-207 ms on a quick day (2026-12-07), as slow as that slow morning or slower. The
# command runs in a control group `mtcae_cpu_quota` with that quota (cgroup v1's
# cpu.cfs_quota_us or v2's cpu.max; needs root), and `bench/machine.py` prints the quota
# with every table.
set -euo pipefail
if [ $# -lt 2 ]; then
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
cpus=$1
shift
period=100000
quota=$(python3 -c "import sys; q = float(sys.argv[1]); assert q > 0; print(round(q * $period))" "$cpus" 2>/dev/null) || {
    echo "cpu_quota.sh: CPUS must be a positive number of CPUs, got '$cpus'" >&2
    exit 2
}
if [ -d /sys/fs/cgroup/cpu ]; then  # cgroup v1
    group=/sys/fs/cgroup/cpu/mtcae_cpu_quota
    mkdir -p "$group"
    echo "$period" > "$group/cpu.cfs_period_us"
    echo "$quota" > "$group/cpu.cfs_quota_us"
elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then  # cgroup v2
    group=/sys/fs/cgroup/mtcae_cpu_quota
    mkdir -p "$group"
    echo "+cpu" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
    echo "$quota $period" > "$group/cpu.max"
else
    echo "cpu_quota.sh: no cgroup cpu controller under /sys/fs/cgroup" >&2
    exit 1
fi
echo $$ > "$group/cgroup.procs"
exec "$@"
