"""What a bench table was measured on: the CPU model, its cores and its vector flags.

Ratios against torch change with the machine (an AVX2-only EPYC gave ours 0.49x torch's
inference speed where an AVX-512 one gave 1.76x: issue 19), so every table says which.
"""

import os
import platform


def cpu_description():
    """`"AMD EPYC (2 cores; avx avx2 avx512f ... fma)"`: `/proc/cpuinfo`'s model name, the
    usable cores and the AVX / FMA flags (the platform's name where there is no cpuinfo)."""
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
    return f"{name} ({cores} cores; {' '.join(vector) or 'no AVX'})"
