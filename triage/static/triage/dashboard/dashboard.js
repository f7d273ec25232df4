// Clinician live dashboard: one WebSocket (ws/dashboard/), rows keyed by session id.
// Everything from the server is rendered with textContent (transcripts are untrusted text).
(function () {
  "use strict";

  const root = document.getElementById("dashboard");
  if (!root) return;
  const tbody = document.getElementById("session-rows");
  const alertsBox = document.getElementById("alerts");
  const connection = document.getElementById("connection");
  const soundToggle = document.getElementById("sound-toggle");
  const toast = document.getElementById("toast");
  const overrideTemplate = document.getElementById("override-template");
  const canAct = root.dataset.canAct === "1";
  const me = root.dataset.username;
  const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;

  const rows = new Map(); // session id -> row data
  const liveAlerts = new Map(); // session id -> alert pushed before it was stored
  let soundOn = false;
  let audioContext = null;

  // --- sound --------------------------------------------------------------------------------
  // Browsers only allow audio after a user gesture, hence the explicit toggle.
  soundToggle.addEventListener("click", () => {
    soundOn = !soundOn;
    soundToggle.setAttribute("aria-pressed", String(soundOn));
    soundToggle.textContent = soundOn ? "Alert sound on" : "Enable alert sound";
    if (soundOn) {
      audioContext = audioContext || new (window.AudioContext || window.webkitAudioContext)();
      audioContext.resume();
      beep(1);
    }
  });

  function beep(times) {
    if (!soundOn || !audioContext) return;
    const now = audioContext.currentTime;
    for (let i = 0; i < times; i++) {
      const osc = audioContext.createOscillator();
      const gain = audioContext.createGain();
      osc.type = "square";
      osc.frequency.value = i % 2 ? 660 : 880;
      gain.gain.setValueAtTime(0.0001, now + i * 0.3);
      gain.gain.exponentialRampToValueAtTime(0.25, now + i * 0.3 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.3 + 0.25);
      osc.connect(gain).connect(audioContext.destination);
      osc.start(now + i * 0.3);
      osc.stop(now + i * 0.3 + 0.26);
    }
  }

  // --- helpers ------------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function duration(row) {
    const start = Date.parse(row.created_at);
    const seconds = Math.max(0, Math.floor((Date.now() - start) / 1000));
    const m = Math.floor(seconds / 60);
    const s = String(seconds % 60).padStart(2, "0");
    return `${m}:${s}`;
  }

  function human(code) {
    return (code || "").replaceAll("_", " ");
  }

  function showToast(text, isError) {
    toast.textContent = text;
    toast.classList.toggle("toast-error", Boolean(isError));
    toast.hidden = false;
    clearTimeout(showToast.timer);
    showToast.timer = setTimeout(() => (toast.hidden = true), 5000);
  }

  function reasonsList(reasons) {
    return el(
      "ul",
      { class: "reasons" },
      (reasons || []).map((r) =>
        el(
          "li",
          {},
          r.rule ? el("code", {}, r.rule) : null,
          " ",
          r.label || "",
          r.words && r.words.length
            ? [" — fired by ", r.words.map((w, i) => [i ? ", " : "", el("mark", {}, `“${w}”`)])]
            : null,
          r.assertion && r.assertion !== "present" ? el("span", { class: "badge" }, r.assertion) : null,
        ),
      ),
    );
  }

  // --- actions ------------------------------------------------------------------------------
  async function post(url, data) {
    const body = new URLSearchParams(data || {});
    const response = await fetch(url, {
      method: "POST",
      headers: { "X-CSRFToken": csrf, Accept: "application/json" },
      body,
      credentials: "same-origin",
    });
    let payload = {};
    try {
      payload = await response.json();
    } catch (e) {
      payload = { message: `HTTP ${response.status}` };
    }
    showToast(payload.message || (response.ok ? "Done." : "Failed."), !response.ok);
    if (payload.session) upsert(payload.session);
    return response.ok;
  }

  function acknowledge(alertId) {
    return post(`/dashboard/alerts/${alertId}/acknowledge`);
  }

  async function takeOver(row) {
    if (!window.confirm("Take over this call? The agent will stop and tell the patient a clinician is joining.")) return;
    // Taking over opens this page's microphone to the patient (listen.js, talk mode).
    if ((await post(`/dashboard/sessions/${row.id}/take-over`)) && window.TriageListen) window.TriageListen.talk(row.id, row.short_id);
  }

  function overrideForm(row) {
    const form = overrideTemplate.content.firstElementChild.cloneNode(true);
    if (row.urgency_level) form.elements.level.value = String(row.urgency_level);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const ok = await post(`/dashboard/sessions/${row.id}/urgency`, {
        level: form.elements.level.value,
        reason: form.elements.reason.value,
      });
      if (ok) form.closest("details").open = false;
    });
    return el("details", { class: "override" }, el("summary", {}, "Override urgency"), form);
  }

  // --- rendering ----------------------------------------------------------------------------
  function callbackLink(row) {
    if (!row || !row.callback_tel) return null;
    return el("a", { class: "callback", href: row.callback_tel, title: "Call the patient back" }, `☎ ${row.callback_number}`);
  }

  function sortKey(row) {
    const alerts = row.open_alerts.length || liveAlerts.has(row.id) ? 0 : 1;
    return [alerts, row.call_back ? 0 : 1, row.escalated ? 0 : 1, row.urgency_level || 9, -Date.parse(row.created_at)];
  }

  function compare(a, b) {
    const ka = sortKey(a);
    const kb = sortKey(b);
    for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i] - kb[i];
    return 0;
  }

  // Affect tags that ask a clinician to listen (breathless, slurred/slow, high distress): never a level.
  function attentionBadge(row) {
    const tags = row.attention || [];
    if (!tags.length) return null;
    const fired = tags.map((t) => `${t.tag}: ${(t.evidence || []).map((e) => `${e.feature} ${e.value} (${e.rule})`).join("; ")}`).join("\n");
    return el("div", { class: "badge attention", role: "status", title: fired }, `Attention: ${tags.map((t) => t.label + (t.grade === "high" ? " (high)" : "")).join("; ")}`);
  }

  function renderRow(row) {
    const pending = liveAlerts.get(row.id);
    const alerting = row.open_alerts.length > 0 || Boolean(pending);
    const actions = el("td", { class: "actions" });
    if (row.open && window.TriageListen) {
      actions.append(el("button", { type: "button", class: "listen secondary", onclick: () => window.TriageListen.start(row.id, row.short_id) }, "Listen in"));
    }
    // An open alert can be acknowledged after its call has ended (the row stays until it is).
    for (const alert of canAct ? row.open_alerts : []) {
      actions.append(el("button", { type: "button", class: "ack", onclick: () => acknowledge(alert.id) }, "Acknowledge alert"));
    }
    if (canAct && row.open) {
      if (!row.taken_over_by) {
        actions.append(el("button", { type: "button", class: "take-over", onclick: () => takeOver(row) }, "Take over call"));
      } else if (row.taken_over_by === me && window.TriageListen) {
        actions.append(el("button", { type: "button", class: "talk", onclick: () => window.TriageListen.talk(row.id, row.short_id) }, "Talk to the patient"));
      }
      actions.append(overrideForm(row));
    }
    const alertInfo = row.open_alerts[0] || pending;
    return el(
      "tr",
      {
        "data-session": row.id,
        class: ["session-row", alerting ? "alerting" : "", row.escalated ? "escalated" : "", row.call_back ? "needs-call-back" : "", row.open ? "" : "closed"].join(" "),
      },
      el(
        "td",
        {},
        el("a", { href: row.review_url }, el("code", {}, row.short_id)),
        el("div", { class: "muted" }, row.status_label),
        row.taken_over_by ? el("div", { class: "badge" }, `with ${row.taken_over_by}`) : null,
        row.call_back ? el("div", { class: "call-back", role: "status" }, "Call dropped during an escalation: call back") : null,
        callbackLink(row),
      ),
      el(
        "td",
        {},
        row.urgency_level ? el("span", { class: `urgency urgency-${row.urgency_level}` }, row.urgency_label) : "Not yet assessed",
        row.urgency_overridden ? el("div", { class: "badge" }, "set by clinician") : null,
        attentionBadge(row),
        alertInfo ? el("div", { class: "alert-reasons" }, el("strong", {}, human(alertInfo.disposition)), reasonsList(alertInfo.reasons)) : null,
      ),
      el("td", {}, row.state),
      el("td", { class: "duration", "data-start": row.created_at }, duration(row)),
      el("td", { class: "partial" }, row.latest_partial || ""),
      actions,
    );
  }

  function render() {
    const list = Array.from(rows.values()).filter((r) => r.open || r._closing || r.call_back || r.open_alerts.length);
    list.sort(compare);
    const focused = document.activeElement && tbody.contains(document.activeElement);
    const openDetails = new Set(Array.from(tbody.querySelectorAll("details[open]")).map((d) => d.closest("tr").dataset.session));
    if (focused && document.activeElement.closest("form")) return; // don't yank a form from under the user
    tbody.replaceChildren(...(list.length ? list.map(renderRow) : [el("tr", { class: "empty-row" }, el("td", { colspan: 6 }, "No active calls."))]));
    for (const id of openDetails) {
      const d = tbody.querySelector(`tr[data-session="${CSS.escape(id)}"] details`);
      if (d) d.open = true;
    }
  }

  function upsert(row) {
    if (row.open_alerts.length) liveAlerts.delete(row.id);
    const before = rows.get(row.id);
    rows.set(row.id, row);
    if (!row.open && !row.call_back && !row.open_alerts.length && (!before || !before._closing)) {
      row._closing = true; // keep an ended call visible briefly, then drop it
      setTimeout(() => {
        if (rows.get(row.id) === row) {
          rows.delete(row.id);
          render();
        }
      }, 10000);
    }
    render();
  }

  function showAlert(message) {
    const card = el(
      "div",
      { class: "alert-card", role: "alert", "data-session": message.session_id },
      el("strong", {}, message.kind === "safety_net" ? "POSSIBLE RED FLAG — rules did not fire" : `ESCALATION — ${message.level_label}`),
      " ",
      human(message.disposition),
      message.on_partial ? el("span", { class: "badge" }, "while the patient is speaking") : null,
      reasonsList(message.reasons),
      el("span", { class: "callback-slot" }, callbackLink(rows.get(message.session_id))),
      el("span", { class: "muted" }, `call ${message.session_id.slice(0, 8)}` + (message.delivery_ms != null ? ` · delivered in ${Math.round(message.delivery_ms)} ms` : "")),
      el("button", { type: "button", class: "secondary", onclick: () => card.remove() }, "Dismiss banner"),
    );
    alertsBox.prepend(card);
    liveAlerts.set(message.session_id, message);
    document.title = "⚠ ESCALATION — Live calls";
    setTimeout(() => (document.title = "Live calls — clinician dashboard"), 15000);
    beep(4);
    if (!rows.has(message.session_id)) {
      fetch(`/dashboard/api/sessions/${message.session_id}`, { headers: { Accept: "application/json" } })
        .then((r) => (r.ok ? r.json() : null))
        .then((data) => {
          if (!data) return;
          upsert(data.session);
          const slot = card.querySelector(".callback-slot");
          if (slot && !slot.firstChild && data.session.callback_tel) slot.append(callbackLink(data.session));
        });
    }
    render();
  }

  // --- waiting line -------------------------------------------------------------------------
  // Callers over the nodes' caps (docs/protocol.md, "Waiting for a line"); waited time ticks here.
  const waitingList = document.getElementById("waiting-list");
  const waitingCount = document.getElementById("waiting-count");
  let waiting = [];
  let waitingAt = 0;

  function renderQueue(list) {
    waiting = list || [];
    waitingAt = Date.now() / 1000;
    waitingCount.textContent = String(waiting.length);
    drawQueue();
  }

  function drawQueue() {
    const elapsed = Date.now() / 1000 - waitingAt;
    waitingList.replaceChildren(
      ...waiting.map((w) =>
        el(
          "li",
          { "data-session": w.session_id },
          `Call ${w.short_id} · number ${w.position} on ${w.node} · waiting ${Math.round(w.waited_s + elapsed)} s`,
        ),
      ),
    );
  }
  setInterval(() => waiting.length && drawQueue(), 1000);

  // --- socket -------------------------------------------------------------------------------
  let socket = null;
  let retry = 0;

  function setConnection(state, text) {
    connection.className = `connection connection-${state}`;
    connection.textContent = text;
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}${root.dataset.socketPath}`);
    setConnection("connecting", "Connecting…");
    socket.addEventListener("open", () => {
      retry = 0;
      setConnection("live", "Live");
    });
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      switch (message.type) {
        case "snapshot":
          rows.clear();
          for (const row of message.sessions) rows.set(row.id, row);
          render();
          break;
        case "session":
          upsert(message.session);
          break;
        case "alert":
          showAlert(message);
          break;
        case "queue":
          renderQueue(message.waiting);
          break;
        case "error":
          setConnection("error", message.message || "Refused");
          break;
      }
    });
    socket.addEventListener("close", (event) => {
      if (event.code === 4403) {
        setConnection("error", "Not authorised: sign in again.");
        return;
      }
      if (event.code === 4401) {
        // Signed out, deactivated or no longer a clinician while the page was open.
        setConnection("error", "Your dashboard access has ended: sign in again.");
        return;
      }
      setConnection("down", "Reconnecting…");
      retry = Math.min(retry + 1, 6);
      setTimeout(connect, 500 * 2 ** retry);
    });
  }

  // A render skipped while a form had focus happens once the form is left.
  tbody.addEventListener("focusout", () => setTimeout(render, 0));

  // First paint from the server-rendered rows, then live.
  for (const row of JSON.parse(document.getElementById("initial-rows").textContent)) rows.set(row.id, row);
  render();
  connect();
  setInterval(() => {
    for (const cell of tbody.querySelectorAll("td.duration")) {
      const row = rows.get(cell.closest("tr").dataset.session);
      if (row && row.open) cell.textContent = duration(row);
    }
  }, 1000);
})();
