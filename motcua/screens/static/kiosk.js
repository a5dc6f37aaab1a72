/* /app/kiosk: a touch screen where a citizen picks a field (or a procedure) and a
   priority, and gets a ticket: its number, the counters that serve it and, when the API
   tells it, how many people are ahead. The ticket goes away by itself after a while.

   A citizen whose dossier has its result rates it here (POST /api/v1/ratings with the
   kiosk's key): the code typed or scanned, one of three levels, an optional comment.
   The form is emptied after each answer and goes back to the start by itself. */
"use strict";

(function () {
  const { api, el, $, say, ratingAnswer } = window.motcua;
  const SHOWN_SECONDS = 30;
  let hide = null;

  function priority() {
    const checked = document.querySelector("input[name=priority]:checked");
    return checked ? checked.value : "normal";
  }

  function reset() {
    clearTimeout(hide);
    $("ticket").hidden = true;
    $("rate").hidden = true;
    $("pick").hidden = false;
    $("rate-invite").hidden = false;
    for (const box of document.querySelectorAll("input[name=priority]")) box.checked = box.value === "normal";
  }

  async function take(choice) {
    say("kiosk-message", "");
    try {
      const ticket = await api("/api/v1/queue/tickets", { method: "POST", body: Object.assign({ priority: priority() }, choice) });
      $("ticket-number").textContent = ticket.number;
      $("ticket-field").textContent = "Lĩnh vực: " + ticket.field;
      $("ticket-ahead").textContent = typeof ticket.ahead === "number"
        ? "Số người đang chờ trước bạn: " + ticket.ahead : "Xin chờ đến khi số của bạn hiện trên bảng.";
      $("ticket-counters").textContent = ticket.counters.length ? "Quầy phục vụ: " + ticket.counters.join(", ") : "";
      $("pick").hidden = true;
      $("rate-invite").hidden = true;
      $("ticket").hidden = false;
      $("ticket-again").focus();
      hide = setTimeout(reset, SHOWN_SECONDS * 1000);
    } catch (error) {
      say("kiosk-message", error.status === 404 || error.status === 422
        ? "Chưa có quầy phục vụ lựa chọn này, xin hỏi cán bộ hướng dẫn" : error.message, "error");
    }
  }

  function openRating() {
    clearTimeout(hide);
    $("pick").hidden = true;
    $("rate-invite").hidden = true;
    $("ticket").hidden = true;
    $("rate-form").reset();
    say("rate-message", "");
    $("rate").hidden = false;
    $("rate-code").focus();
  }

  async function rate(event) {
    event.preventDefault();
    clearTimeout(hide);
    const code = $("rate-code").value.trim();
    const chosen = document.querySelector("input[name=rate-level]:checked");
    if (!code) { say("rate-message", "Xin nhập mã hồ sơ ghi trên phiếu hẹn.", "error"); $("rate-code").focus(); return; }
    if (!chosen) { say("rate-message", "Xin chọn một mức độ hài lòng.", "error"); return; }
    const body = { code, level: chosen.value };
    const comment = $("rate-comment").value.trim();
    if (comment) body.comment = comment;
    const notFound = "Không tìm thấy hồ sơ " + code + " tại đơn vị này. Xin kiểm tra lại mã trên phiếu hẹn.";
    let answer;
    try {
      answer = ratingAnswer(201, await api("/api/v1/ratings", { method: "POST", body }), code, notFound);
    } catch (error) {
      answer = ratingAnswer(error.status || 0, error.body, code, notFound);
    }
    say("rate-message", answer[0], answer[1]);
    if (answer[1] === "ok") $("rate-form").reset();
    hide = setTimeout(reset, SHOWN_SECONDS * 1000);
  }

  window.motcua.start(async (_session, counters) => {
    $("rate-open").addEventListener("click", openRating);
    $("rate-back").addEventListener("click", reset);
    $("rate-form").addEventListener("submit", rate);
    const fields = [...new Set(counters.flatMap((c) => c.fields))];
    $("fields").replaceChildren(...fields.map((field) =>
      el("button", { type: "button", dataset: { field }, onclick: () => take({ field }) }, field)));
    $("ticket-again").addEventListener("click", reset);
    $("kiosk-procedure-go").addEventListener("click", () => {
      const code = $("kiosk-procedure").value;
      if (code) take({ procedure_code: code });
    });
    try {
      const procedures = await api("/api/v1/catalogue?limit=500");
      const served = procedures.filter((p) => fields.includes(p.field));
      $("kiosk-procedure").append(...served.map((p) => el("option", { value: p.code }, p.name)));
    } catch (error) {
      say("kiosk-message", "Không tải được danh mục thủ tục: " + error.message, "error");
    }
  });
})();
