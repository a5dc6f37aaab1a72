/* /app/office: the office's worklist (due soonest first, overdue marked), a dossier's
   history and the office's actions, and the clock's ledger: why it is due when it is. */
"use strict";

(function () {
  const { api, el, $, say, time, STATUS } = window.motcua;
  const OPEN = ["received", "processing", "supplement_requested", "payment_requested", "withdrawal_requested", "stopped"];
  const LEDGER = {
    started: "Bắt đầu tính hạn", paused: "Tạm dừng tính hạn", resumed: "Tính hạn tiếp",
    restarted: "Tính lại từ đầu", extended: "Gia hạn", finished: "Kết thúc", stopped: "Dừng",
    step_started: "Bắt đầu bước", step_finished: "Xong bước", calendar_changed: "Lịch làm việc thay đổi",
  };

  /* What the due cell says after the time: overdue (the API's word), or due today by
     the services' clock, not the device's. */
  function dueMark(dossier, today) {
    if (dossier.overdue) return el("span", { class: "badge-late" }, " — Quá hạn");
    const due = dossier.extended_due_at || dossier.due_at;
    if (due && window.motcua.dayInVietnam(due) === today) {
      return el("span", { class: "badge-today", dataset: { dueToday: "true" } }, " — Đến hạn hôm nay");
    }
    return null;
  }

  async function loadWork(session) {
    const query = new URLSearchParams({ office: session.unit, sort: "due", limit: "200" });
    for (const status of OPEN) query.append("status", status);
    try {
      const [page, clock] = await Promise.all([api("/api/v1/dossiers?" + query), window.motcua.serverTime()]);
      const open = page.items;
      $("work-today").textContent = "Hôm nay: " + clock.today.split("-").reverse().join("/");
      $("work-today").dataset.day = clock.today;
      $("work").tBodies[0].replaceChildren(...open.map((d) =>
        el("tr", { class: d.overdue ? "overdue" : null, dataset: { code: d.code } },
          el("td", {}, el("button", { type: "button", class: "linklike", onclick: () => openDossier(session, d.code) }, d.code)),
          el("td", {}, d.procedure_name || d.procedure_code),
          el("td", {}, STATUS[d.status] || d.status),
          el("td", {}, time(d.extended_due_at || d.due_at), dueMark(d, clock.today)))));
      say("work-message", open.length ? open.length + " hồ sơ" : "Không có hồ sơ nào đang chờ giải quyết");
    } catch (error) {
      say("work-message", error.message, "error");
    }
  }

  async function loadLedger(code) {
    const body = $("ledger").tBodies[0];
    try {
      const clock = await api("/api/v1/sla/" + encodeURIComponent(code));
      body.replaceChildren(...clock.ledger.map((line) =>
        el("tr", {}, el("td", {}, time(line.at)), el("td", {}, LEDGER[line.kind] || line.kind),
          el("td", {}, [line.note, line.reason].filter(Boolean).join(" — ")),
          el("td", {}, time(line.extended_due_at || line.due_at)))));
    } catch (error) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: "4" },
        error.status === 404 ? "Đồng hồ của hồ sơ chưa sẵn sàng" : error.message)));
    }
  }

  async function openDossier(session, code) {
    const box = $("dossier");
    try {
      const dossier = await api("/api/v1/dossiers/" + encodeURIComponent(code));
      window.motcua.showDossier(box, dossier, "office", async () => {
        await openDossier(session, code);
        await loadWork(session);
      });
      await loadLedger(code);
    } catch (error) {
      box.replaceChildren(el("p", { class: "message error" }, error.message));
    }
  }

  window.motcua.start(async (session) => {
    $("work-refresh").addEventListener("click", () => loadWork(session));
    await loadWork(session);
  });
})();
