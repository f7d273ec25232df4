"""Shared compute pool: fair between sessions, partials skippable, finals never dropped.

Workers are held with threading.Events (no sleeps), so queue order is deterministic."""

import asyncio
import threading

import pytest

from voice.compute import ComputePool, PoolClosed, Skipped


@pytest.fixture
def pool():
    p = ComputePool(1, session_queue_limit=3, max_running_per_session=1)
    yield p
    p.close()


def _blocker(pool):
    """Occupy the single worker until the returned event is set."""
    release, started = threading.Event(), threading.Event()
    hog = pool.session("hog")

    def block():
        started.set()
        release.wait(10)

    fut = hog.submit(block)
    assert started.wait(10)
    return release, fut


async def test_round_robin_between_sessions(pool):
    release, _ = _blocker(pool)
    order: list[str] = []
    a, b = pool.session("a"), pool.session("b")
    futs = [a.submit(order.append, f"a{i}") for i in range(3)] + [
        b.submit(order.append, f"b{i}") for i in range(2)
    ]
    release.set()
    await asyncio.gather(*(asyncio.wrap_future(f) for f in futs))
    # a queued three before b queued any, yet b is served after each of a's jobs.
    assert order == ["a0", "b0", "a1", "b1", "a2"]


async def test_newer_partial_replaces_queued_one_and_finals_go_first(pool):
    release, _ = _blocker(pool)
    s = pool.session("s")
    done: list[str] = []
    p1 = asyncio.ensure_future(s.run(done.append, "partial-1", skippable=True, key="partial"))
    await asyncio.sleep(0)
    p2 = asyncio.ensure_future(s.run(done.append, "partial-2", skippable=True, key="partial"))
    await asyncio.sleep(0)
    final = asyncio.ensure_future(s.run(done.append, "final"))
    await asyncio.sleep(0)
    release.set()
    with pytest.raises(Skipped):
        await p1
    await p2
    await final
    assert done == ["final", "partial-2"]
    assert pool.stats.skipped == 1


async def test_full_queue_drops_partials_never_finals(pool):
    release, _ = _blocker(pool)
    s = pool.session("s")
    partial = s.submit_skippable("p", lambda: "p")
    finals = [s.submit(lambda i=i: i) for i in range(4)]  # over the limit of 3: still queued
    release.set()
    with pytest.raises(Skipped):
        partial.result(10)
    assert [f.result(10) for f in finals] == [0, 1, 2, 3]


async def test_cancelled_job_never_runs_and_executor_view_cancels_skips(pool):
    release, _ = _blocker(pool)
    s = pool.session("s")
    ran: list[str] = []
    task = asyncio.ensure_future(s.run(ran.append, "cancelled"))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    ex = s.executor(lambda fn: "partial" if fn is partial_fn else None)

    def partial_fn():
        ran.append("partial")

    loop = asyncio.get_running_loop()
    first = loop.run_in_executor(ex, partial_fn)
    second = loop.run_in_executor(ex, partial_fn)
    release.set()
    await second
    assert first.cancelled()  # replaced: the transcriber sees a cancelled future, not an error
    assert ran == ["partial"]


async def test_closed_session_refuses_work(pool):
    s = pool.session("s")
    s.close()
    with pytest.raises(PoolClosed):
        s.submit(lambda: None)


async def test_many_sessions_all_progress_with_two_workers():
    pool = ComputePool(2, session_queue_limit=4, max_running_per_session=1)
    try:
        sessions = [pool.session(f"s{i}") for i in range(6)]
        results = await asyncio.gather(
            *(s.run(sum, [i, i]) for i, s in enumerate(sessions) for _ in range(3))
        )
        assert sorted(results) == sorted(2 * i for i in range(6) for _ in range(3))
    finally:
        pool.close()


async def test_partials_only_use_spare_capacity():
    pool = ComputePool(1, session_queue_limit=4, max_running_per_session=1, skippable_max_wait_s=60)
    try:
        release, _ = _blocker(pool)
        a, b = pool.session("a"), pool.session("b")
        final = a.submit(lambda: "final")
        partial = b.submit_skippable("partial", lambda: "partial")  # a final is waiting: dropped
        release.set()
        assert final.result(10) == "final"
        with pytest.raises(Skipped):
            partial.result(10)
    finally:
        pool.close()


async def test_partials_never_take_the_last_free_worker():
    """Two workers, four callers' partials queued: only one partial runs at a time, so a final
    that arrives meanwhile starts at once on the worker kept free, not behind two partials."""
    pool = ComputePool(2, session_queue_limit=4, max_running_per_session=1, skippable_max_wait_s=60)
    try:
        release = threading.Event()
        running: list[str] = []
        started = threading.Semaphore(0)

        def partial(name):
            running.append(name)
            started.release()
            release.wait(10)
            return name

        sessions = [pool.session(f"s{i}") for i in range(4)]
        partials = [s.submit_skippable("partial", partial, s.name) for s in sessions[:3]]
        assert started.acquire(timeout=10)
        assert not started.acquire(timeout=0.2), "a second partial took the reserved worker"
        final = sessions[3].submit(lambda: "final")
        assert final.result(10) == "final", "the final waited behind partials"
        assert len(running) == 1
        release.set()
        assert [f.result(10) for f in partials] == ["s0", "s1", "s2"]
    finally:
        release.set()
        pool.close()


async def test_stale_partial_is_dropped_at_pick_time():
    pool = ComputePool(1, max_running_per_session=1, skippable_max_wait_s=0.0)
    try:
        release, _ = _blocker(pool)
        s = pool.session("s")
        stale = s.submit_skippable("partial", lambda: "late")
        release.set()
        with pytest.raises(Skipped):
            stale.result(10)
        assert s.submit(lambda: "ok").result(10) == "ok"
    finally:
        pool.close()


async def test_stale_queued_work_can_be_cancelled_by_kind(pool):
    release, _ = _blocker(pool)
    s = pool.session("s")

    def final_decode():
        return "final"

    def synthesis():
        return "audio"

    stale = s.submit(final_decode)
    keep = s.submit(synthesis)
    assert s.cancel_queued(lambda fn: fn is final_decode) == 1
    release.set()
    assert stale.cancelled() and keep.result(10) == "audio"
