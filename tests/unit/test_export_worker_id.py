"""Which export workers are certainly dead: only ones on this host, by pid and by the nonce of a restart."""

from __future__ import annotations

import os

from server.exports.jobs import WorkerId


def test_a_worker_on_this_host_is_dead_when_its_process_is_or_when_this_pid_restarted():
    me = WorkerId("gate-host", os.getpid(), "aaaa0000")
    assert not me.presumes_dead(f"gate-host:{os.getppid()}:12345678")  # the parent process is running
    assert me.presumes_dead(f"gate-host:{os.getpid()}:bbbb1111")  # this pid, an earlier life (containers: pid 1)
    assert not me.presumes_dead(str(me))


def test_workers_elsewhere_are_never_presumed_dead_and_garbage_always_is():
    me = WorkerId("gate-host", os.getpid(), "aaaa0000")
    assert not me.presumes_dead(f"other-host:{os.getpid()}:bbbb1111")
    colons = WorkerId("fe80::1", os.getpid(), "aaaa0000")  # a host name may hold colons
    assert colons.presumes_dead(f"fe80::1:{os.getpid()}:bbbb1111") and not colons.presumes_dead(str(colons))
    for garbage in (None, "", "nonsense", "host:notapid:nonce"):
        assert me.presumes_dead(garbage)
    assert str(WorkerId("h:1", 7, "n")) == "h:1:7:n"
