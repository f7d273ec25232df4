/* Patient intake page: consent -> details -> live call (captions, state, escalation, end).
 *
 * Also keeps `window.triage` (stats and timings) for the browser tests and for support:
 *   stats.playedFrames   agent audio samples actually played (at the output rate)
 *   stats.sentFrames     20 ms microphone frames sent
 *   metrics.responses    [{reply_id, kind, ms}] end of the patient's speech -> first agent audio
 *   metrics.interrupts   [{reply_id, stop_ms, onset_to_stop_ms}] barge-in timings seen here
 */
(function () {
  "use strict";

  const root = document.getElementById("intake");
  if (!root) return;
  const $ = (id) => document.getElementById(id);

  const STATE_LABELS = {
    connecting: "Connecting…",
    idle: "Getting ready…",
    listening: "Listening",
    user_speaking: "Listening",
    thinking: "Thinking",
    agent_speaking: "Speaking",
    interrupted: "Listening",
    escalated: "Emergency",
    ended: "Call ended",
    reconnecting: "Reconnecting…",
    waiting: "Waiting for a line",
  };
  const END_REASONS = {
    patient_ended: "Thank you. If your symptoms get worse, call back or contact your doctor.",
    session_ended: "This call has already ended. Start a new call if you need to.",
    session_not_found: "This call link has expired. Please start a new call.",
    models_unavailable: "The voice service is not available right now. Please try again in a few minutes, or call your doctor's office.",
    connection_lost: "We lost the connection and could not reconnect. Please check your internet connection and start a new call.",
  };
  const VOICE_RMS = 0.015; // mic frame level that counts as voice for the page's own timings
  const VOICE_END_MS = 300; // this long below it ends a stretch of speech
  // A clinician's voice is live: at most this much buffered ahead of it (earlier audio, jitter);
  // later audio is dropped rather than heard ever later (issue 13: <= 150 ms mouth to ear).
  const LIVE_VOICE_MAX_MS = 100;

  const triage = {
    state: "consent",
    callState: null,
    sessionId: null,
    outputRate: null, // the agent's (and a clinician's) audio sample rate, from `ready`
    resumedCount: 0,
    escalation: null,
    micSettings: null,
    stats: {
      playedFrames: 0,
      bufferedFrames: 0,
      liveDroppedFrames: 0, // clinician voice samples dropped to keep it live (LIVE_VOICE_MAX_MS)
      sentFrames: 0,
      droppedFrames: 0,
      agentFramesReceived: 0,
      partialCaptions: 0,
      finalCaptions: 0,
      agentCaptions: 0,
      clinicianCaptions: 0,
    },
    metrics: { responses: [], interrupts: [] },
    events: [],
  };
  window.triage = triage;

  let engine = null;
  let connection = null;
  const flushed = new Set(); // reply ids flushed after `interrupt`: their late frames are dropped
  const replies = new Map(); // reply id -> {kind, el, started}
  const voice = { on: false, onsetT: null, lastT: null, answeredT: null };

  function log(type, detail) {
    triage.events.push(Object.assign({ type, at: Math.round(performance.now()) }, detail || {}));
    if (triage.events.length > 500) triage.events.shift();
  }

  // --- steps -----------------------------------------------------------------------------
  function show(step) {
    for (const section of root.querySelectorAll(".step")) section.hidden = section.dataset.step !== step;
    triage.state = step;
    root.dataset.currentStep = step;
    const heading = root.querySelector(`[data-step="${step}"] h1`);
    if (heading) heading.focus();
  }

  $("consent-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const ok = $("consent").checked;
    $("consent-error").hidden = ok;
    $("consent").setAttribute("aria-invalid", ok ? "false" : "true");
    if (!ok) {
      $("consent").focus();
      return;
    }
    show("details");
  });
  $("back-to-consent").addEventListener("click", () => show("consent"));

  // Pregnancy does not apply to young children: hide it and clear the answer.
  const CHILD_BANDS = new Set(["under_3_months", "3_months_to_2_years", "2_to_11"]);
  $("age_band").addEventListener("change", () => {
    const young = CHILD_BANDS.has($("age_band").value);
    $("pregnancy-field").hidden = young;
    if (young) root.querySelector('input[name="pregnant"][value=""]').checked = true;
  });

  function details() {
    const form = $("details-form");
    const pregnant = form.querySelector('input[name="pregnant"]:checked').value;
    return {
      consent: $("consent").checked === true,
      subject: form.querySelector('input[name="subject"]:checked').value,
      age_band: $("age_band").value,
      pregnant: pregnant === "" ? null : pregnant === "true",
      callback_number: $("callback_number").value.trim(),
    };
  }

  // Same rules as the server (triage/callback.py); the server's answer is shown if it differs.
  function callbackProblem(value) {
    if (!value) return "";
    if (value.length > 32 || !/^\+?[0-9 ().-]+$/.test(value))
      return "Use only digits, spaces and a leading +, for example +44 20 7946 0958.";
    const digits = value.replace(/\D/g, "").length;
    if (digits < 7 || digits > 15) return `A phone number has 7 to 15 digits; this one has ${digits}.`;
    return "";
  }

  function callbackError(text) {
    const input = $("callback_number");
    const el = $("callback-error");
    el.textContent = text;
    el.hidden = !text;
    if (text) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    } else input.removeAttribute("aria-invalid");
  }

  function startError(text) {
    const el = $("start-error");
    el.textContent = text;
    el.hidden = !text;
  }

  $("details-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = $("start-call");
    if (button.disabled) return;
    startError("");
    if (!$("consent").checked) {
      show("consent");
      return;
    }
    callbackError(callbackProblem($("callback_number").value.trim()));
    if (!$("callback-error").hidden) return;
    if (!window.TriageAudio.AudioEngine.supported()) {
      startError(
        window.isSecureContext
          ? "This browser cannot stream audio. Please use an up-to-date Chrome, Edge, Firefox or Safari."
          : "The microphone only works over a secure (https) connection."
      );
      return;
    }
    button.disabled = true;
    button.textContent = "Starting…";
    try {
      await startCall();
    } catch (err) {
      log("start_failed", { name: err && err.name });
      startError(startFailureText(err));
      if (engine) await engine.close().catch(() => {});
      engine = null;
      button.disabled = false;
      button.textContent = "Start the call";
    }
  });

  function startFailureText(err) {
    const name = err && err.name;
    if (name === "NotAllowedError" || name === "SecurityError")
      return "The microphone is blocked. Allow microphone access for this site in your browser settings, then press Start again.";
    if (name === "NotFoundError" || name === "OverconstrainedError")
      return "No microphone was found. Connect one (or a headset) and press Start again.";
    if (name === "NotReadableError") return "The microphone is in use by another app. Close it and press Start again.";
    if (err && err.userMessage) return err.userMessage;
    return "The call could not start. Please try again.";
  }

  function csrfToken() {
    const input = root.querySelector('input[name="csrfmiddlewaretoken"]');
    return input ? input.value : "";
  }

  async function createSession() {
    const response = await fetch(root.dataset.sessionsUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(details()),
    });
    const data = await response.json().catch(() => ({}));
    if (response.status !== 201) {
      const err = new Error(data.error || `HTTP ${response.status}`);
      err.userMessage = data.message || "The call could not start. Please try again.";
      if (data.field === "callback_number") callbackError(data.message);
      throw err;
    }
    return data;
  }

  // --- the call ------------------------------------------------------------------------------
  async function startCall() {
    engine = new window.TriageAudio.AudioEngine({
      captureUrl: root.dataset.captureWorklet,
      playbackUrl: root.dataset.playbackWorklet,
      onFrame,
      onPlaybackEvent,
    });
    const resumed = engine.createContext(); // inside the click: allowed to make sound
    triage.micSettings = await engine.startMicrophone();
    await resumed;
    // Consent was given on the previous step; only now is a session created and audio sent.
    const session = await createSession();
    triage.sessionId = session.session_id;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    connection = new window.TriageConnection.CallConnection({
      url: `${scheme}//${location.host}${session.websocket}`,
      protocol: session.protocol,
      onMessage,
      onAudio,
      onStatus,
    });
    triage.connection = connection;
    triage.dropConnection = () => connection.drop();
    for (const track of engine.stream.getAudioTracks()) {
      track.addEventListener("ended", () => callError("The microphone stopped. Check that it is connected."));
    }
    show("call");
    setState("connecting");
    connection.open();
    keepScreenOn();
  }

  // A phone that locks its screen mid-call stops the microphone; ask it not to (best effort).
  let wakeLock = null;
  async function keepScreenOn() {
    try {
      if (navigator.wakeLock) wakeLock = await navigator.wakeLock.request("screen");
    } catch (err) {
      wakeLock = null;
    }
  }

  function onFrame(pcm, rms, t) {
    trackVoice(rms, t);
    meter(rms);
    if (connection && connection.sendAudio(pcm)) triage.stats.sentFrames += 1;
    else triage.stats.droppedFrames += 1;
  }

  // The page's own view of when the patient stops talking (for response timing).
  function trackVoice(rms, t) {
    if (rms >= VOICE_RMS) {
      if (!voice.on) {
        voice.on = true;
        voice.onsetT = t;
      }
      voice.lastT = t;
    } else if (voice.on && t - voice.lastT >= VOICE_END_MS / 1000) {
      voice.on = false;
    }
  }

  let meterValue = 0;
  function meter(rms) {
    meterValue = Math.max(rms, meterValue * 0.8);
    const pct = Math.min(100, Math.round((Math.log10(meterValue + 1e-4) + 4) * 25));
    $("mic-level").style.width = `${pct}%`;
  }

  function onAudio(buffer) {
    triage.stats.agentFramesReceived += 1;
    const replyId = new DataView(buffer).getUint32(0, true);
    if (flushed.has(replyId)) return;
    engine.play(replyId, buffer.slice(4));
  }

  function onPlaybackEvent(m) {
    switch (m.type) {
      case "progress":
        triage.stats.playedFrames = m.played;
        triage.stats.bufferedFrames = m.buffered;
        triage.stats.liveDroppedFrames = m.dropped;
        break;
      case "started": {
        const reply = replies.get(m.id);
        const entry = { reply_id: m.id, kind: reply ? reply.kind : "", ms: null };
        // Only a reply that follows the patient's speech (and starts in a pause) has a response time.
        const end = voice.lastT;
        if (end !== null && end !== voice.answeredT && m.t - end >= 0.1) {
          entry.ms = Math.round((m.t - end) * 1000);
          voice.answeredT = end;
        }
        triage.metrics.responses.push(entry);
        log("playback_started", entry);
        break;
      }
      case "done":
        connection.send({ type: "playback", reply_id: m.id, played_ms: round1(m.ms) });
        log("playback_done", { reply_id: m.id, played_ms: round1(m.ms) });
        break;
    }
  }

  const round1 = (x) => Math.round(x * 10) / 10;

  async function interrupt(replyId) {
    const t0 = engine.now();
    const w0 = performance.now();
    flushed.add(replyId);
    const result = await engine.flush();
    const stopMs = Math.max(0, (result.t - t0) * 1000);
    triage.stats.playedFrames = result.playedTotal;
    triage.stats.bufferedFrames = 0;
    const played = result.replies.find((r) => r.id === replyId);
    const playedMs = round1(played ? played.ms : 0);
    connection.send({ type: "playback", reply_id: replyId, played_ms: playedMs });
    for (const r of result.replies) {
      if (r.id !== replyId) {
        flushed.add(r.id);
        connection.send({ type: "playback", reply_id: r.id, played_ms: round1(r.ms) });
      }
    }
    const entry = {
      reply_id: replyId,
      played_ms: playedMs,
      stop_ms: round1(stopMs),
      roundtrip_ms: round1(performance.now() - w0),
      onset_to_stop_ms: voice.onsetT !== null ? Math.round((result.t - voice.onsetT) * 1000) : null,
    };
    triage.metrics.interrupts.push(entry);
    log("interrupted", entry);
    const el = replies.get(replyId);
    if (el && el.el) el.el.classList.add("caption-interrupted");
  }

  function onStatus(status, info) {
    log(`connection_${status}`, info);
    const el = $("connection-status");
    switch (status) {
      case "connecting":
        el.textContent = "";
        break;
      case "ready":
        el.textContent = info.resumed ? "Reconnected." : "";
        if (info.resumed) triage.resumedCount += 1;
        break;
      case "dropped":
      case "reconnecting":
        el.textContent = "Connection lost. Reconnecting…";
        setState("reconnecting");
        break;
      case "closed":
        finish(info.reason, info.error);
        break;
    }
  }

  function onMessage(msg) {
    switch (msg.type) {
      case "queued":
        // All lines busy: fixed text with the caller's place; connected automatically later.
        log("queued", { position: msg.position });
        triage.queuePosition = msg.position;
        if (msg.output) engine.ensurePlayback(msg.output.sample_rate);
        $("queue-text").textContent = msg.text;
        $("queue-emergency").firstElementChild.textContent = msg.emergency;
        $("queue-notice").hidden = false;
        setState("waiting");
        break;
      case "admitted":
        log("admitted", { waited_ms: msg.waited_ms });
        $("queue-notice").hidden = true;
        break;
      case "ready":
        $("queue-notice").hidden = true;
        triage.sessionId = msg.session_id;
        triage.outputRate = msg.output.sample_rate;
        engine.ensurePlayback(msg.output.sample_rate);
        setState(msg.state);
        break;
      case "state":
        log("state", { state: msg.state, cause: msg.cause });
        if (msg.state === "user_speaking") placeholderLine();
        else if (msg.state === "listening") dropEmptyPatientLine();
        setState(msg.state);
        break;
      case "transcript":
        transcript(msg);
        break;
      case "agent_reply_start":
        log("agent_reply_start", { reply_id: msg.reply_id, kind: msg.kind });
        flushed.delete(msg.reply_id);
        replies.set(msg.reply_id, { kind: msg.kind, el: null, text: "" });
        // A clinician's live voice: a small playback buffer, never queued seconds behind.
        if (msg.kind === "clinician") engine.live(msg.reply_id, LIVE_VOICE_MAX_MS);
        break;
      case "agent_text":
        agentText(msg);
        break;
      case "agent_reply_end":
        if (!flushed.has(msg.reply_id)) engine.complete(msg.reply_id);
        break;
      case "pause":
        // speech over the agent: hold playback while the server judges it (backchannel or not)
        log("pause", { reply_id: msg.reply_id });
        engine.hold();
        break;
      case "resume":
        log("resume", { reply_id: msg.reply_id });
        engine.release();
        break;
      case "interrupt":
        log("interrupt", { reply_id: msg.reply_id });
        interrupt(msg.reply_id);
        break;
      case "escalation":
        escalate(msg);
        break;
      case "clinician_transcript":
        // The clinician who took the call: their words, one utterance at a time (after it ends).
        triage.stats.clinicianCaptions += 1;
        caption("Clinician", msg.text, "caption-clinician");
        break;
      case "clinician_joining":
        log("clinician_joining");
        $("clinician-notice").textContent = msg.text;
        $("clinician-notice").hidden = false;
        break;
      case "error":
        log("server_error", { code: msg.code, fatal: msg.fatal });
        if (msg.code === "models_unavailable") callError(END_REASONS.models_unavailable);
        break;
      case "ended":
        setState("ended");
        break;
    }
  }

  function setState(state) {
    triage.callState = state;
    const pill = $("state-indicator");
    pill.dataset.state = state;
    $("state-label").textContent = STATE_LABELS[state] || state;
  }

  // --- captions ---------------------------------------------------------------------------
  function caption(who, text, cls) {
    const p = document.createElement("p");
    p.className = `caption ${cls}`;
    const label = document.createElement("span");
    label.className = "who";
    label.textContent = `${who}:`;
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    p.append(label, " ", body);
    const box = $("captions");
    box.append(p);
    box.scrollTop = box.scrollHeight;
    return p;
  }

  // The patient's line is placed in the log when they start speaking, so an answer that
  // starts before the final transcript arrives (the agent may begin at the first pause)
  // still comes after it. Partials fill it in; the final replaces them. Lines are keyed by
  // turn, because a final can arrive after the patient has started speaking again.
  const patientLines = new Map(); // turn_id -> caption element
  let placeholder = null; // line for speech that has started but has no transcript yet

  function placeholderLine() {
    if (!placeholder) placeholder = caption("You", "…", "caption-partial");
    return placeholder;
  }

  function lineFor(turnId) {
    let line = patientLines.get(turnId);
    if (!line) {
      line = placeholderLine();
      placeholder = null;
      patientLines.set(turnId, line);
    }
    return line;
  }

  function transcript(msg) {
    if (!msg.final && !msg.text) return;
    const line = lineFor(msg.turn_id);
    if (!msg.final) {
      triage.stats.partialCaptions += 1;
      line.querySelector(".text").textContent = msg.text;
      return;
    }
    triage.stats.finalCaptions += 1;
    dropSupersededLines(msg.turn_id);
    if (!msg.text) {
      line.remove();
      return;
    }
    line.querySelector(".text").textContent = msg.text;
    line.classList.replace("caption-partial", "caption-patient");
  }

  // Finals come in turn order. An earlier turn still showing only partials when a later turn's
  // final arrives will never get its own: its words were joined into this turn (the caller went
  // on after the agent had started) or dropped, so its half-line goes.
  function dropSupersededLines(turnId) {
    for (const [id, el] of patientLines) {
      if (id < turnId && el.classList.contains("caption-partial")) {
        el.remove();
        patientLines.delete(id);
      }
    }
  }

  // Speech that ended without words (a cough, noise) leaves no line behind.
  function dropEmptyPatientLine() {
    if (placeholder) {
      placeholder.remove();
      placeholder = null;
    }
  }

  function agentText(msg) {
    let reply = replies.get(msg.reply_id);
    if (!reply) {
      reply = { kind: "", el: null, text: "" };
      replies.set(msg.reply_id, reply);
    }
    triage.stats.agentCaptions += 1;
    reply.text = reply.text ? `${reply.text} ${msg.text}` : msg.text;
    if (!reply.el) reply.el = caption("Nurse assistant", reply.text, "caption-agent");
    else reply.el.querySelector(".text").textContent = reply.text;
    $("captions").scrollTop = $("captions").scrollHeight;
  }

  function escalate(msg) {
    triage.escalation = { level: msg.level, disposition: msg.disposition, script: msg.script };
    $("escalation-script").textContent = msg.script;
    const banner = $("escalation");
    banner.hidden = false;
    banner.dataset.level = msg.level;
    root.classList.add("is-escalated");
    $("escalation-title").focus();
    setState("escalated");
  }

  // --- ending -----------------------------------------------------------------------------
  $("end-call").addEventListener("click", () => {
    $("end-call").disabled = true;
    log("end_clicked");
    if (connection) connection.end();
    else finish("patient_ended");
  });

  function callError(text) {
    const el = $("call-error");
    el.textContent = text;
    el.hidden = !text;
  }

  async function finish(reason, error) {
    if (triage.state === "ended") return;
    log("finished", { reason });
    if (engine) await engine.close().catch(() => {});
    if (wakeLock) wakeLock.release().catch(() => {});
    $("ended-reason").textContent = END_REASONS[reason] || (error && error.message) || END_REASONS.patient_ended;
    if (triage.escalation) {
      // Keep the emergency instructions in view after the call.
      const keep = document.createElement("p");
      keep.className = "notice notice-error";
      keep.textContent = triage.escalation.script;
      $("ended-reason").after(keep);
    }
    show("ended");
  }
})();
