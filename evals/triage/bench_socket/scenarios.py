"""What one benchmark caller does, and what is measured from the caller's side.

Per caller turn (``run_call``), from the end of the caller's speech (the capture time of the
last voiced sample of the utterance):

* **response onset**: the first agent audio of a reply to it arriving;
* **answer onset**: the first audio of the clause that carries the question, disposition or
  script arriving (``agent_text.answer`` marks that clause);
* **answer heard**: the modelled browser playback reaching that clause (after whatever plays
  before it, holds included);
* **talked over**: agent audio of a new reply arrived while the caller was still speaking.

Barge-in (``run_barge``), from the onset of the caller's speech over the greeting: ``pause``,
``interrupt`` and ``resume`` arrival. Alert (``run_alert``): end of the red-flag phrase's audio
→ the ``alert`` frame on a logged-in clinician dashboard socket.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from .client import CallClient, HttpSession, ws_url
from .server import Quiet
from .speech import Utterance, joined

SETTLED_STATES = ("listening", "escalated", "ended")


def _ms(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(float(a - b) * 1000.0, 1)


@dataclass
class TurnResult:
    mode: str
    call: int
    turn: int
    first_statement: bool
    words: int
    response_onset_ms: float | None
    answer_onset_ms: float | None
    answer_heard_ms: float | None
    talked_over: bool
    reply_kind: str
    answered: bool  # a reply came and carried an answer clause
    quiet: bool | None
    busy: float | None

    def to_dict(self) -> dict:
        return asdict(self)


async def _gate(gate: Callable[[], Quiet] | None) -> Quiet | None:
    return None if gate is None else await asyncio.to_thread(gate)


async def _greeting_played(client: CallClient, timeout: float = 90) -> int | None:
    """Wait until the greeting has played (a caller listens before speaking)."""
    await client.wait(lambda: any(r.first_audio_at for r in client.replies.values()), timeout)
    if not client.replies:
        return None
    gid = min(client.replies)
    await client.wait(lambda: client.player.reply(gid).reported or client.replies[gid].interrupted, timeout)
    return gid


async def run_call(
    base: str,
    lines: list[Utterance],
    *,
    mode: str,
    call: int,
    seed: int = 0,
    gate: Callable[[], Quiet] | None = None,
    turn_timeout: float = 60.0,
) -> list[TurnResult]:
    client = CallClient(base, seed=seed)
    results: list[TurnResult] = []
    await client.start()
    try:
        await _greeting_played(client)
        for k, utt in enumerate(lines):
            results.append(
                await measure_turn(
                    client, utt, k=k, mode=mode, call=call, gate=gate, turn_timeout=turn_timeout
                )
            )
            if client.state == "escalated":
                break
    finally:
        await client.end()
    return results


async def measure_turn(
    client: CallClient,
    utt: Utterance,
    *,
    k: int,
    mode: str,
    call: int,
    gate: Callable[[], Quiet] | None = None,
    turn_timeout: float = 60.0,
) -> TurnResult:
    """The caller speaks ``utt`` (turn ``k``, 0 first) and listens until the agent is done."""
    quiet = await _gate(gate)
    known = set(client.replies)
    spoken = client.speak(utt)
    await client.spoken(spoken)

    def new_replies():
        return [r for rid, r in sorted(client.replies.items()) if rid not in known]

    def settled():
        new = new_replies()
        return (
            bool(new)
            and all(r.ended_at is not None for r in new)
            and not client.playing()
            and client.state in SETTLED_STATES
        )

    await client.wait(settled, turn_timeout)
    await asyncio.sleep(0.3)  # a second reply (after a talk-over) would have started by now
    await client.wait(settled, turn_timeout)
    end, start = spoken.speech_end_at, spoken.speech_start_at
    new = [r for r in new_replies() if r.first_audio_at is not None]
    talked_over = any(start <= r.first_audio_at < end for r in new)
    after = [r for r in new if r.first_audio_at >= end]
    first = after[0] if after else None
    answer = next((r for r in after if r.answer_offset_ms is not None), None)
    heard = None if answer is None else client.heard_at(answer.reply_id, answer.answer_offset_ms)
    return TurnResult(
        mode=mode,
        call=call,
        turn=k + 1,
        first_statement=k == 0,
        words=len(utt.text.split()),
        response_onset_ms=_ms(first.first_audio_at if first else None, end),
        answer_onset_ms=_ms(answer.answer_audio_at if answer else None, end),
        answer_heard_ms=_ms(heard, end),
        talked_over=talked_over,
        reply_kind=(answer or first).kind if (answer or first) else "",
        answered=answer is not None,
        quiet=None if quiet is None else quiet.quiet,
        busy=None if quiet is None else quiet.busy,
    )


@dataclass
class BargeResult:
    kind: str  # backchannel / interruption
    text: str
    pause_ms: float | None  # caller's speech onset -> pause arriving
    interrupt_ms: float | None
    resume_ms: float | None
    held_ms: float | None  # pause -> resume (a backchannel holding the agent)
    false_interruption: bool  # a backchannel cut the agent off
    missed: bool  # an interruption that did not stop the agent
    quiet: bool | None
    busy: float | None

    def to_dict(self) -> dict:
        return asdict(self)


async def run_barge(
    base: str,
    utt: Utterance,
    *,
    kind: str,
    seed: int = 0,
    gate: Callable[[], Quiet] | None = None,
    after_ms: float = 1000.0,
) -> BargeResult:
    """Speak ``utt`` over the greeting, ``after_ms`` into its playback."""
    quiet = await _gate(gate)
    client = CallClient(base, seed=seed)
    await client.start()
    try:
        await client.wait(lambda: any(r.first_audio_at for r in client.replies.values()), 90)
        gid = min(client.replies)
        g = client.replies[gid]
        await client.wait(lambda: client.player.reply(gid).played_ms(client.clock()) >= after_ms, 30)
        spoken = client.speak(utt)
        await client.spoken(spoken)
        await client.wait(lambda: g.interrupt_at is not None or g.resume_at is not None or g.ended_at, 20)
        await asyncio.sleep(0.2)
        onset = spoken.speech_start_at
        return BargeResult(
            kind=kind,
            text=utt.text,
            pause_ms=_ms(g.pause_at, onset),
            interrupt_ms=_ms(g.interrupt_at, onset),
            resume_ms=_ms(g.resume_at, onset),
            held_ms=_ms(g.resume_at, g.pause_at),
            false_interruption=kind == "backchannel" and g.interrupt_at is not None,
            missed=kind == "interruption" and g.interrupt_at is None,
            quiet=None if quiet is None else quiet.quiet,
            busy=None if quiet is None else quiet.busy,
        )
    finally:
        await client.end()


@dataclass
class AlertResult:
    latency_ms: float | None  # end of the red-flag phrase's audio -> alert on the dashboard socket
    before_speech_ended: bool | None
    rule_ids: list[str]
    on_partial: bool | None
    quiet: bool | None
    busy: float | None

    def to_dict(self) -> dict:
        return asdict(self)


async def run_alert(
    base: str,
    lead: Utterance,
    flag: Utterance,
    tail: Utterance,
    *,
    username: str,
    password: str,
    seed: int = 0,
    gate: Callable[[], Quiet] | None = None,
) -> AlertResult:
    import websockets

    http = HttpSession(base)
    sid = await asyncio.to_thread(http.login, username, password)
    dashboard = await websockets.connect(
        ws_url(base, "/ws/dashboard/"), origin=base, additional_headers={"Cookie": f"sessionid={sid}"}
    )
    alerts: list[tuple[float, dict]] = []

    async def listen():
        async for data in dashboard:
            if isinstance(data, str):
                m = json.loads(data)
                if m.get("type") == "alert":
                    alerts.append((time.monotonic(), m))

    listener = asyncio.ensure_future(listen())
    client = CallClient(base, seed=seed)
    try:
        await client.start()
        await _greeting_played(client)
        quiet = await _gate(gate)
        utt, ends = joined(lead, flag, tail)
        spoken = client.speak(utt, marks_ms=(ends[1],))
        mine = lambda: [(t, m) for t, m in alerts if m.get("session_id") == client.session_id]  # noqa: E731
        await client.wait(lambda: bool(mine()), 30)
        await client.spoken(spoken)
        got = mine()
        flag_end = spoken.mark_at.get(ends[1])
        t_alert, alert = got[0] if got else (None, {})
        return AlertResult(
            latency_ms=_ms(t_alert, flag_end),
            before_speech_ended=None if t_alert is None else t_alert < (spoken.speech_end_at or t_alert),
            rule_ids=list(alert.get("rule_ids", [])),
            on_partial=alert.get("on_partial"),
            quiet=None if quiet is None else quiet.quiet,
            busy=None if quiet is None else quiet.busy,
        )
    finally:
        await client.end()
        listener.cancel()
        await dashboard.close()
