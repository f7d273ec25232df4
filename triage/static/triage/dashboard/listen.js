// Listen in to a live call from the dashboard: ws/clinician/calls/<id>/listen/ (triage/listen.py).
// Binary frames: <BxH header (source 0 patient / 1 agent, sample rate) + s16le PCM. Each source
// plays through its own pcm-playback worklet (its own rate); both go to the speakers, so the
// browser mixes them. Captions come as {"type": "call_event", "event": <patient page message>}.
// Nothing is ever sent on this socket: the patient hears nothing from the listener.
(function () {
  "use strict";

  const root = document.getElementById("listen-panel");
  if (!root) return;
  const title = document.getElementById("listen-title");
  const status = document.getElementById("listen-status");
  const captions = document.getElementById("listen-captions");
  const stopButton = document.getElementById("listen-stop");
  const playbackUrl = root.dataset.playbackWorklet;

  let socket = null;
  let context = null;
  let nodes = new Map(); // "source:rate" -> AudioWorkletNode
  let partial = null; // the caption line of the patient's words in progress
  let sessionId = null;
  const received = { patient: 0, agent: 0 }; // samples, for the page (and tests) to read

  function setStatus(text) {
    status.textContent = text;
  }

  function line(speaker, text) {
    const p = document.createElement("p");
    p.className = `caption caption-${speaker}`;
    const who = document.createElement("strong");
    who.textContent = speaker === "patient" ? "Patient: " : speaker === "agent" ? "Agent: " : "";
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
    received[source === 0 ? "patient" : "agent"] += pcm.byteLength / 2;
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
    } else if (event.type === "escalation") {
      line("system", `Escalation: ${event.disposition.replaceAll("_", " ")}`);
    }
  }

  async function start(id, label) {
    await stop();
    sessionId = id;
    root.hidden = false;
    title.textContent = `Listening to call ${label}`;
    captions.replaceChildren();
    received.patient = received.agent = 0;
    setStatus("Connecting…");
    // Created inside the click, so the browser lets it play.
    context = new AudioContext({ latencyHint: "interactive" });
    await context.resume();
    await context.audioWorklet.addModule(playbackUrl);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws/clinician/calls/${id}/listen/`);
    socket.binaryType = "arraybuffer";
    const mine = socket;
    socket.addEventListener("message", (message) => {
      if (typeof message.data !== "string") return onAudio(message.data);
      const m = JSON.parse(message.data);
      if (m.type === "listen_ready") setStatus("Listening — the patient cannot hear you");
      else if (m.type === "call_event") onEvent(m.event);
      else if (m.type === "call_ended") setStatus("The call has ended.");
      else if (m.type === "error") setStatus(m.message || "Refused.");
    });
    socket.addEventListener("close", () => {
      if (socket === mine && status.textContent.startsWith("Listening")) setStatus("Stopped listening.");
    });
    stopButton.focus();
  }

  async function stop() {
    if (socket) socket.close(1000);
    socket = null;
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

  window.TriageListen = {
    start,
    stop,
    get sessionId() {
      return sessionId;
    },
    received,
  };
})();
