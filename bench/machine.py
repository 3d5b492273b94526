"""What a bench table was measured on: the CPU model, its cores, its vector flags and any CPU
time quota its control group sets.

Ratios against torch change with the machine (an AVX2-only EPYC gave ours 0.49x torch's
inference speed where an AVX-512 one gave 1.76x: issue 19), so every table says which; and
a run capped by `bench/cpu_quota.sh` (an emulated slow day) says so too.
"""

import os
import platform


def cpu_quota(cgroup_root="/sys/fs/cgroup", self_cgroup="/proc/self/cgroup"):
    """The CPUs' worth of time this process's control group may use (`1.5` for 150 ms per
    100 ms), from cgroup v2's `cpu.max` or v1's `cpu.cfs_quota_us` / `cpu.cfs_period_us`;
    `None` where there is no quota or no cgroup to read.

    Args:
        cgroup_root: where the cgroup file systems are mounted.
        self_cgroup: the process's `/proc/self/cgroup` (`hierarchy:controllers:path` lines).
    """
    try:
        with open(self_cgroup) as file:
            entries = [line.strip().split(":", 2) for line in file if line.strip()]
    except OSError:
        return None
    for _, controllers, path in entries:
        if controllers == "":  # v2: one unified hierarchy
            values = _read(os.path.join(cgroup_root, path.lstrip("/"), "cpu.max"))
            quota, period = values.split() if values else ("max", "1")
        elif "cpu" in controllers.split(","):  # v1: the cpu (or cpu,cpuacct) hierarchy
            folder = os.path.join(cgroup_root, controllers, path.lstrip("/"))
            quota = _read(os.path.join(folder, "cpu.cfs_quota_us"))
            period = _read(os.path.join(folder, "cpu.cfs_period_us"))
        else:
            continue
        if quota and period and quota not in ("max", "-1"):
            return int(quota) / int(period)
    return None


def _read(path):
    try:
        with open(path) as file:
            return file.read().strip()
    except OSError:
        return None


def cpu_description():
    """`"AMD EPYC (2 cores; avx avx2 avx512f ... fma)"`: `/proc/cpuinfo`'s model name, the
    usable cores and the AVX / FMA flags (the platform's name where there is no cpuinfo), and
    `", quota 0.9 CPU"` after the cores where the process's cgroup caps its CPU time."""
    try:
        with open("/proc/cpuinfo") as file:
            lines = file.read().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((line.split(":", 1)[1].strip() for line in lines
                 if line.startswith("model name")), platform.machine())  # fmt: skip
    flags = next((line.split(":", 1)[1].split() for line in lines
                  if line.startswith("flags")), [])  # fmt: skip
    vector = sorted(flag for flag in flags if flag.startswith(("avx", "fma")))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    quota = cpu_quota()
    capped = f", quota {quota:g} CPU" if quota is not None else ""
    return f"{name} ({cores} cores{capped}; {' '.join(vector) or 'no AVX'})"
