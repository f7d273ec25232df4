// Listen in to a live call from the dashboard: ws/clinician/calls/<id>/listen/ (triage/listen.py).
// Binary frames: <BxH header (source 0 patient / 1 agent / 2 a clinician talking; the talking
// clinician never gets their own, 2, back), sample rate) + s16le PCM. Each source
// plays through its own pcm-playback worklet (its own rate); both go to the speakers, so the
// browser mixes them. Captions come as {"type": "call_event", "event": <patient page message>}.
// Nothing is ever sent on the listen socket: the patient hears nothing from a listener.
// Talk mode (ws/clinician/calls/<id>/talk/, only for the clinician who took the call over):
// the same, plus this page's microphone (capture worklet: 16 kHz s16le, 20 ms, echo
// cancellation on) sent as binary frames, and the hand-back / close controls. A talk socket that
// drops (not closed by this page, not refused) is reopened at once and every 500 ms for the
// server's reconnect grace (talk_ready.reconnect_grace_s): back in time, the clinician carries on
// where they were and the patient hears nothing odd.
(function () {
  "use strict";

  const root = document.getElementById("listen-panel");
  if (!root) return;
  const title = document.getElementById("listen-title");
  const status = document.getElementById("listen-status");
  const captions = document.getElementById("listen-captions");
  const stopButton = document.getElementById("listen-stop");
  const playbackUrl = root.dataset.playbackWorklet;
  const captureUrl = root.dataset.captureWorklet;
  const talkControls = document.getElementById("talk-controls");
  const csrfInput = document.querySelector("#dashboard input[name=csrfmiddlewaretoken]");
  const MIC = { audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 }, video: false };
  let stream = null;
  let capture = null;
  let mode = "listen";
  const sent = { frames: 0 };
  const LIVE_MAX_MS = 100; // as the patient's page for the clinician's voice (intake.js)

  let socket = null;
  let context = null;
  let nodes = new Map(); // "source:rate" -> AudioWorkletNode
  let partial = null; // the caption line of the patient's words in progress
  let sessionId = null;
  const received = { patient: 0, agent: 0, clinician: 0 }; // samples, for the page (and tests) to read
  const reconnects = { count: 0, resumed: 0 }; // talk sockets reopened after a drop (tests read it)
  let graceMs = 0;

  function setStatus(text) {
    status.textContent = text;
  }

  function line(speaker, text) {
    const p = document.createElement("p");
    p.className = `caption caption-${speaker}`;
    const who = document.createElement("strong");
    who.textContent = { patient: "Patient: ", agent: "Agent: ", clinician: "You: " }[speaker] || "";
    p.append(who, document.createTextNode(text));
    captions.append(p);
    captions.scrollTop = captions.scrollHeight;
    return p;
  }

  function node(source, rate) {
    const key = `${source}:${rate}`;
    let n = nodes.get(key);
    if (!n) {
      n = new AudioWorkletNode(context, "pcm-playback", {
        numberOfInputs: 0,
        numberOfOutputs: 1,
        outputChannelCount: [1],
        processorOptions: { sourceRate: rate, bufferSeconds: 30 },
      });
      n.connect(context.destination);
      // A live microphone (the patient's, a colleague's): never more than LIVE_MAX_MS behind, or
      // a burst of late frames would keep the clinician hearing the patient late for good.
      // Agent speech comes ahead of real time on purpose and is played whole.
      if (source !== 1) n.port.postMessage({ type: "live", id: source + 1, maxMs: LIVE_MAX_MS });
      nodes.set(key, n);
    }
    return n;
  }

  function onAudio(buffer) {
    if (buffer.byteLength <= 4 || !context) return;
    const view = new DataView(buffer);
    const source = view.getUint8(0);
    const rate = view.getUint16(2, true);
    const pcm = buffer.slice(4);
    received[["patient", "agent", "clinician"][source] || "agent"] += pcm.byteLength / 2;
    // One continuous "reply" per source: the worklet plays chunks in order as they arrive.
    node(source, rate).port.postMessage({ type: "audio", id: source + 1, pcm }, [pcm]);
  }

  function onEvent(event) {
    if (event.type === "transcript") {
      if (!partial) partial = line("patient", "");
      partial.lastChild.textContent = event.text;
      if (event.final) partial = null;
    } else if (event.type === "agent_text") {
      line("agent", event.text);
    } else if (event.type === "state") {
      setStatus(`Listening — ${event.state.replaceAll("_", " ")}`);
    } else if (event.type === "clinician_transcript") {
      line("clinician", event.text);
    } else if (event.type === "escalation") {
      line("system", `Escalation: ${event.disposition.replaceAll("_", " ")}`);
    }
  }

  async function startMicrophone() {
    stream = await navigator.mediaDevices.getUserMedia(MIC);
    await context.audioWorklet.addModule(captureUrl);
    capture = new AudioWorkletNode(context, "pcm-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      channelCount: 1,
      channelCountMode: "explicit",
      processorOptions: { targetRate: 16000, frameMs: 20 },
    });
    capture.port.onmessage = (event) => {
      const m = event.data;
      if (m.type === "frame" && socket && socket.readyState === WebSocket.OPEN && mode === "talk") {
        socket.send(m.pcm);
        sent.frames += 1;
      }
    };
    context.createMediaStreamSource(stream).connect(capture).connect(context.destination);
  }

  async function talk(id, label) {
    return start(id, label, "talk");
  }

  async function start(id, label, how) {
    await stop();
    mode = how === "talk" ? "talk" : "listen";
    sessionId = id;
    root.hidden = false;
    talkControls.hidden = mode !== "talk";
    title.textContent = mode === "talk" ? `On the call ${label} — the patient hears you` : `Listening to call ${label}`;
    captions.replaceChildren();
    received.patient = received.agent = received.clinician = 0;
    setStatus("Connecting…");
    // Created inside the click, so the browser lets it play.
    context = new AudioContext({ latencyHint: "interactive" });
    await context.resume();
    await context.audioWorklet.addModule(playbackUrl);
    if (mode === "talk") {
      try {
        await startMicrophone();
      } catch (err) {
        setStatus("The microphone could not be opened: allow it for this site, then press Talk again.");
        return;
      }
    }
    connect(id, null);
    stopButton.focus();
  }

  function connect(id, droppedAt) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws/clinician/calls/${id}/${mode}/`);
    socket.binaryType = "arraybuffer";
    const mine = socket;
    let over = false; // refused (error) or the call ended: nothing to reconnect to
    socket.addEventListener("message", (message) => {
      if (typeof message.data !== "string") return onAudio(message.data);
      const m = JSON.parse(message.data);
      if (m.type === "listen_ready") setStatus("Listening — the patient cannot hear you");
      else if (m.type === "talk_ready") {
        graceMs = (m.reconnect_grace_s || 0) * 1000;
        if (m.resumed) reconnects.resumed += 1;
        setStatus("Talking — the patient hears you; the agent is silent");
      } else if (m.type === "call_event") onEvent(m.event);
      else if (m.type === "call_ended") {
        over = true;
        setStatus("The call has ended.");
      } else if (m.type === "error") {
        over = true;
        setStatus(m.message || "Refused.");
      }
    });
    socket.addEventListener("close", (event) => {
      if (socket !== mine) return; // stopped by this page, or replaced
      const since = droppedAt === null ? performance.now() : droppedAt;
      // Closed by this page (stop, hand back, close) replaces `socket` first: any other close of
      // a talk socket that was not refused is a drop.
      const dropped = mode === "talk" && !over && !(event.code >= 4400 && event.code < 4500);
      if (dropped && performance.now() - since < graceMs) {
        setStatus("Connection lost — reconnecting…");
        reconnects.count += 1;
        // At once the first time, then every 500 ms, while the server still holds the grace.
        setTimeout(() => socket === mine && sessionId === id && connect(id, since), droppedAt === null ? 0 : 500);
        return;
      }
      if (/^(Listening|Talking|Connection lost)/.test(status.textContent)) setStatus("Disconnected.");
    });
  }

  async function stop() {
    if (socket) socket.close(1000);
    socket = null;
    if (capture) capture.port.postMessage({ type: "stop" });
    capture = null;
    if (stream) for (const track of stream.getTracks()) track.stop();
    stream = null;
    talkControls.hidden = true;
    for (const n of nodes.values()) n.disconnect();
    nodes = new Map();
    if (context && context.state !== "closed") await context.close().catch(() => {});
    context = null;
    partial = null;
    if (sessionId) setStatus("Stopped listening.");
    sessionId = null;
  }

  // From the review page (/dashboard/?listen=<id>): one click starts it (audio needs a gesture).
  const asked = new URLSearchParams(location.search).get("listen");
  if (asked && /^[0-9a-f-]{36}$/.test(asked)) {
    const startButton = document.getElementById("listen-start");
    root.hidden = false;
    title.textContent = `Call ${asked.slice(0, 8)}`;
    startButton.hidden = false;
    startButton.addEventListener("click", () => {
      startButton.hidden = true;
      start(asked, asked.slice(0, 8));
    });
  }

  stopButton.addEventListener("click", () => {
    stop();
    root.hidden = true;
  });

  async function act(path, data) {
    const response = await fetch(`/dashboard/sessions/${sessionId}/${path}`, {
      method: "POST",
      headers: { "X-CSRFToken": csrfInput.value, Accept: "application/json" },
      body: new URLSearchParams(data || {}),
      credentials: "same-origin",
    });
    const payload = await response.json().catch(() => ({}));
    setStatus(payload.message || (response.ok ? "Done." : `Failed (HTTP ${response.status}).`));
    return response.ok;
  }

  document.getElementById("hand-back").addEventListener("click", async () => {
    // The hand-back is stored first; only then does this socket close (so it is no drop).
    if (await act("hand-back")) {
      const text = status.textContent;
      await stop();
      setStatus(text);
    }
  });

  document.getElementById("close-call-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    if (await act("close", { disposition: form.elements.disposition.value, note: form.elements.note.value })) {
      const text = status.textContent;
      await stop();
      setStatus(text);
    }
  });

  window.TriageListen = {
    start,
    talk,
    stop,
    sent,
    get sessionId() {
      return sessionId;
    },
    received,
    reconnects,
    // Tests: drop the talk socket as a network failure would (no close frame from the page).
    dropForTest() {
      if (socket) socket.close(3999);
    },
  };
})();
