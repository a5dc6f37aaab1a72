/* /app/board: the numbers being served at each counter, live from the board's event
   stream (GET /api/v1/queue/board, server-sent events). EventSource cannot send the
   key in a header, so the stream is read with fetch; when it ends or fails the board
   says so and connects again by itself, waiting a little longer each time (at most
   MAX_WAIT seconds). */
"use strict";

(function () {
  const { api, el, $ } = window.motcua;
  const MAX_WAIT = 15;
  const rows = new Map();

  function state(text, live) {
    $("link-state").textContent = text;
    document.body.dataset.live = live ? "true" : "false";
  }

  function row(counter) {
    if (!rows.has(counter)) {
      const number = el("td", { class: "number" }, "—");
      const tr = el("tr", { dataset: { counter } }, el("td", {}, counter), number);
      $("board").tBodies[0].append(tr);
      rows.set(counter, { tr, number });
    }
    return rows.get(counter);
  }

  function called(event) {
    const line = row(event.counter);
    line.number.textContent = event.number;
    for (const other of rows.values()) other.tr.classList.toggle("latest", other === line);
    $("board-announce").textContent = "Mời số " + event.number + " đến quầy " + event.counter;
  }

  /* Feed the SSE text of ``chunk`` to ``buffer``; call ``onEvent(name, data)`` and
     ``onComment()`` per complete block; answers what is left over. */
  function parse(buffer, onEvent, onComment) {
    const blocks = buffer.split(/\r?\n\r?\n/);
    const rest = blocks.pop();
    for (const block of blocks) {
      let name = "message";
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith(":")) onComment();
        else if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(name, data.join("\n"));
    }
    return rest;
  }

  async function listen(session) {
    const response = await api("/api/v1/queue/board?unit=" + encodeURIComponent(session.unit), {
      as: "response", headers: { Accept: "text/event-stream" },
    });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer = parse(buffer + decoder.decode(value, { stream: true }),
        (name, data) => { if (name === "called") called(JSON.parse(data)); },
        () => state("Đang hiển thị trực tiếp", true));
    }
  }

  async function keepListening(session) {
    let wait = 1;
    for (;;) {
      const began = Date.now();
      try {
        await listen(session);
      } catch (error) {
        if (error.status === 401 || error.status === 403) {
          state("Khóa không xem được bảng của đơn vị này: " + error.message, false);
          return;
        }
      }
      if (Date.now() - began > 30000) wait = 1;
      state("Mất kết nối, đang kết nối lại sau " + wait + " giây…", false);
      await new Promise((resolve) => setTimeout(resolve, wait * 1000));
      wait = Math.min(wait * 2, MAX_WAIT);
    }
  }

  window.motcua.start(async (session, counters) => {
    for (const counter of counters) row(counter.id);
    keepListening(session);
  });
})();
