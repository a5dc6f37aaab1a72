/* /app/counter: call the next ticket, receive a dossier and open its slip, the day's
   receptions of the unit, a dossier's history and the counter's actions. */
"use strict";

(function () {
  const { api, el, $, say, time, STATUS } = window.motcua;
  let procedures = [];
  let last = null; /* the dossier received last: {code, due_at} */

  function counterId() {
    return $("counter-id").value;
  }

  function fillCounters(session, counters) {
    const select = $("counter-id");
    select.replaceChildren(...counters.map((c) =>
      el("option", { value: c.id }, c.id + " — " + c.fields.join(", "))));
    if (session.counter) select.value = session.counter;
    select.addEventListener("change", () => {
      window.motcua.saveSession(Object.assign(window.motcua.session(), { counter: counterId() }));
    });
  }

  async function ticketStep(path, done) {
    if (!counterId()) {
      say("queue-message", "Chưa có quầy nào của đơn vị", "error");
      return;
    }
    try {
      const ticket = await api("/api/v1/queue/counters/" + encodeURIComponent(counterId()) + "/" + path, { method: "POST" });
      say("queue-message", done(ticket), "ok");
    } catch (error) {
      say("queue-message", error.status === 404 && path === "call-next" ? "Không còn ai chờ ở quầy này" : error.message, "error");
    }
  }

  async function loadCatalogue() {
    procedures = await api("/api/v1/catalogue?limit=500");
    $("procedures").replaceChildren(...procedures.map((p) => el("option", { value: p.code + " — " + p.name })));
  }

  function procedureCode(text) {
    const typed = text.trim();
    const byCode = procedures.find((p) => typed === p.code || typed.startsWith(p.code + " — "));
    if (byCode) return byCode.code;
    const lower = typed.toLowerCase();
    const byName = procedures.filter((p) => p.name.toLowerCase().includes(lower));
    return byName.length === 1 ? byName[0].code : null;
  }

  function applicant() {
    const out = { name: $("applicant-name").value.trim() };
    const phone = $("applicant-phone").value.trim();
    const email = $("applicant-email").value.trim();
    const id = $("applicant-id").value.trim();
    if (phone) out.phone = phone;
    if (email) out.email = email;
    if (id) out.id_number = id;
    return out;
  }

  async function receive(session) {
    const code = procedureCode($("procedure").value);
    if (!code) {
      say("receive-message", "Xin chọn một thủ tục trong danh mục", "error");
      return;
    }
    const documents = $("documents").value.split("\n").map((d) => d.trim()).filter(Boolean);
    try {
      const dossier = await api("/api/v1/dossiers", {
        method: "POST",
        headers: { "Idempotency-Key": window.motcua.newIdempotencyKey() },
        body: { procedure_code: code, channel: "counter", receiving_unit: session.unit, applicant: applicant(), documents },
      });
      last = dossier;
      $("receive-form").reset();
      say("receive-message", "Đã tiếp nhận hồ sơ", "ok");
      $("received-code").textContent = dossier.code;
      $("received-due").textContent = time(dossier.due_at);
      $("received").hidden = false;
      $("slip").hidden = true;
      await loadToday(session);
    } catch (error) {
      say("receive-message", error.message, "error");
    }
  }

  async function openSlip(format) {
    if (!last) return;
    try {
      const blob = await api("/api/v1/dossiers/" + encodeURIComponent(last.code) + "/slip?format=" + format, { as: "blob" });
      const url = URL.createObjectURL(blob);
      if (format === "pdf") {
        const link = el("a", { href: url, download: last.code + ".pdf" });
        document.body.append(link);
        link.click();
        link.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60000);
        return;
      }
      const frame = $("slip");
      frame.src = url;
      frame.hidden = false;
    } catch (error) {
      say("receive-message", error.message, "error");
    }
  }

  async function loadToday(session) {
    const day = $("today-date").value || (await window.motcua.serverTime()).today;
    const start = new Date(day + "T00:00:00+07:00");
    const query = new URLSearchParams({
      receiving_unit: session.unit, received_from: start.toISOString(),
      received_to: new Date(start.getTime() + 86400000).toISOString(), sort: "received", limit: "200",
    });
    try {
      const page = await api("/api/v1/dossiers?" + query);
      $("today").tBodies[0].replaceChildren(...page.items.map((d) =>
        el("tr", { dataset: { code: d.code } },
          el("td", {}, el("button", { type: "button", class: "linklike", onclick: () => openDossier(d.code) }, d.code)),
          el("td", {}, d.procedure_name || d.procedure_code),
          el("td", {}, STATUS[d.status] || d.status),
          el("td", {}, time(d.received_at)),
          el("td", {}, time(d.due_at)))));
      say("today-message", page.items.length + " hồ sơ" + (page.next_cursor ? " (còn nữa)" : ""));
    } catch (error) {
      say("today-message", error.message, "error");
    }
  }

  async function openDossier(code) {
    $("open-code").value = code;
    const box = $("dossier");
    try {
      const dossier = await api("/api/v1/dossiers/" + encodeURIComponent(code));
      window.motcua.showDossier(box, dossier, "counter", () => openDossier(code));
    } catch (error) {
      box.replaceChildren(el("p", { class: "message error" }, error.message));
    }
  }

  window.motcua.start(async (session, counters) => {
    fillCounters(session, counters);
    $("today-date").value = (await window.motcua.serverTime()).today;
    $("call-next").addEventListener("click", () => ticketStep("call-next", (t) => "Mời số " + t.number + " đến quầy " + t.counter));
    $("serve").addEventListener("click", () => ticketStep("serve", (t) => "Đang phục vụ số " + t.number));
    $("done").addEventListener("click", () => ticketStep("done", (t) => "Đã phục vụ xong số " + t.number));
    $("no-show").addEventListener("click", () => ticketStep("no-show", (t) => "Số " + t.number + " vắng mặt"));
    $("receive-form").addEventListener("submit", (e) => { e.preventDefault(); receive(session); });
    $("slip-html").addEventListener("click", () => openSlip("html"));
    $("slip-pdf").addEventListener("click", () => openSlip("pdf"));
    $("open-form").addEventListener("submit", (e) => { e.preventDefault(); openDossier($("open-code").value.trim()); });
    $("today-date").addEventListener("change", () => loadToday(session));
    $("today-refresh").addEventListener("click", () => loadToday(session));
    try {
      await loadCatalogue();
    } catch (error) {
      say("receive-message", "Không tải được danh mục thủ tục: " + error.message, "error");
    }
    await loadToday(session);
  });
})();
