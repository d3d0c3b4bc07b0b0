"""Lines of a timestamped pod log follow, as a real kubelet returns them (see the runner's split_log_line)."""

from __future__ import annotations

import pytest

from podrun.runners.kubernetes.logs import split_log_line

T1, T2, T3 = b"2026-01-02T03:04:05.000000001Z", b"2026-01-02T03:04:05.5Z", b"2026-01-02T03:04:06.123456789Z"


@pytest.mark.parametrize(
    ("line", "stamp", "frame"),
    [
        pytest.param(T1 + b" O aGk=\n", T1, b"O aGk=\n", id="whole"),
        # containerd wrote the frame in pieces: every piece after the first comes with its own timestamp.
        pytest.param(T1 + b" O QUJD" + T2 + b" REVG" + T3 + b" R0g=\n", T3, b"O QUJDREVGR0g=\n", id="pieces"),
        pytest.param(T1 + b" E" + T2 + b"  QQ==\n", T2, b"E QQ==\n", id="split-after-the-tag"),
        # JSON frames are left alone, even where they hold something that looks like a timestamp.
        pytest.param(T1 + b' X {"error": "' + T2 + b' x"}\n', T1, b'X {"error": "' + T2 + b' x"}\n', id="json"),
    ],
)
def test_a_frame_split_by_the_runtime_comes_back_whole(line: bytes, stamp: bytes, frame: bytes) -> None:
    assert split_log_line(line) == (stamp, frame)
