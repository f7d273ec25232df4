// Telemetry charts (Chart.js, vendored): response onset p50/p95 over time, per-stage
// breakdown, interruption success and LLM fallback rates, drop-offs.
(function () {
  "use strict";

  const root = document.getElementById("telemetry");
  if (!root || !window.Chart) return;
  const status = document.getElementById("telemetry-status");
  const windowSelect = document.getElementById("window");
  const charts = {};

  const palette = { p50: "#0b5cad", p95: "#b00020", green: "#1b7f3b", orange: "#c25e00", grey: "#6b7280" };

  function timeLabel(iso, hours) {
    const d = new Date(iso);
    const opts = hours > 24 ? { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" } : { hour: "2-digit", minute: "2-digit" };
    return d.toLocaleString([], opts);
  }

  function draw(id, config) {
    if (charts[id]) charts[id].destroy();
    const points = (config.data.labels || []).length;
    config.options = Object.assign(
      { responsive: true, animation: false, maintainAspectRatio: false, spanGaps: true, elements: { point: { radius: points > 60 ? 0 : 3 } } },
      config.options || {},
    );
    charts[id] = new window.Chart(document.getElementById(id), config);
  }

  function render(data) {
    const s = data.series;
    const labels = s.labels.map((l) => timeLabel(l, data.window.hours));
    document.getElementById("bucket-size").textContent = `${Math.round(s.bucket_seconds / 60)} min`;

    draw("chart-onset", {
      type: "line",
      data: {
        labels,
        datasets: [
          { label: "p50", data: s.response_onset_p50, borderColor: palette.p50, backgroundColor: palette.p50 },
          { label: "p95", data: s.response_onset_p95, borderColor: palette.p95, backgroundColor: palette.p95 },
        ],
      },
      options: { scales: { y: { beginAtZero: true, title: { display: true, text: "ms" } } } },
    });

    draw("chart-stages", {
      type: "bar",
      data: {
        labels: data.stages.map((st) => st.stage),
        datasets: [
          { label: "p50", data: data.stages.map((st) => st.p50_ms), backgroundColor: palette.p50 },
          { label: "p95", data: data.stages.map((st) => st.p95_ms), backgroundColor: palette.p95 },
        ],
      },
      options: { indexAxis: "y", scales: { x: { beginAtZero: true, title: { display: true, text: "ms" } } } },
    });

    draw("chart-rates", {
      type: "line",
      data: {
        labels,
        datasets: [
          { label: "Interruption success %", data: s.interruption_success_pct, borderColor: palette.green, backgroundColor: palette.green },
          { label: "LLM fallback %", data: s.llm_fallback_pct, borderColor: palette.orange, backgroundColor: palette.orange },
        ],
      },
      options: { scales: { y: { min: 0, max: 100, title: { display: true, text: "%" } } } },
    });

    draw("chart-dropoffs", {
      type: "bar",
      data: {
        labels,
        datasets: [
          { label: "Drop-offs", data: s.dropoffs, backgroundColor: palette.p95 },
          { label: "Sessions ended", data: s.sessions_ended, backgroundColor: palette.grey },
        ],
      },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });

    const tbody = document.getElementById("stage-rows");
    tbody.replaceChildren(
      ...data.stages.map((st) => {
        const tr = document.createElement("tr");
        for (const value of [st.stage, st.n, st.p50_ms, st.p95_ms, st.budget_ms ?? "—", st.budget_misses]) {
          const td = document.createElement("td");
          td.textContent = value === null ? "—" : String(value);
          tr.append(td);
        }
        return tr;
      }),
    );
    status.textContent = `Updated ${new Date(data.generated_at).toLocaleTimeString()}`;
  }

  async function load() {
    status.textContent = "Loading…";
    try {
      const response = await fetch(`${root.dataset.url}?hours=${encodeURIComponent(windowSelect.value)}`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      render(await response.json());
    } catch (error) {
      status.textContent = `Could not load telemetry (${error.message}).`;
    }
  }

  windowSelect.addEventListener("change", load);
  load();
  setInterval(load, 60000);
})();
