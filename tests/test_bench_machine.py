"""`bench/machine.py`: the CPU quota a bench table was measured under (issue 19's slow day)."""

import pytest

from bench.machine import cpu_quota


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    "self_cgroup, files, expected",
    [
        # cgroup v1, the cpu controller mounted with cpuacct: 180 ms per 200 ms
        ("4:memory:/a\n3:cpu,cpuacct:/slow\n",
         {"cpu,cpuacct/slow/cpu.cfs_quota_us": "180000",
          "cpu,cpuacct/slow/cpu.cfs_period_us": "200000"}, 0.9),
        ("3:cpu,cpuacct:/\n", {"cpu,cpuacct/cpu.cfs_quota_us": "-1",
                               "cpu,cpuacct/cpu.cfs_period_us": "100000"}, None),
        # cgroup v2: 75 ms per 50 ms, and no quota
        ("0::/user/job\n", {"user/job/cpu.max": "75000 50000"}, 1.5),
        ("0::/user/job\n", {"user/job/cpu.max": "max 100000"}, None),
        ("0::/\n", {}, None),  # v2 without the cpu controller: no cpu.max
    ],
)  # fmt: skip
def test_cpu_quota_reads_the_processs_own_control_group(tmp_path, self_cgroup, files, expected):
    for name, text in files.items():
        write(tmp_path / "fs" / name, text)
    write(tmp_path / "self_cgroup", self_cgroup)
    quota = cpu_quota(str(tmp_path / "fs"), str(tmp_path / "self_cgroup"))
    assert quota == expected
    assert cpu_quota(str(tmp_path / "fs"), str(tmp_path / "missing")) is None
