/* /tra-cuu: the citizen's look-up, no key. The phone travels in the body of a POST
   (POST /api/v1/public/lookup), never in a URL; the answer gives the status in words and
   the due time, and what to bring when a supplement is asked (with the officer's note of
   what is missing, when the answer has one) or the result is ready. */
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  function say(text) {
    $("lookup-message").textContent = text;
    $("lookup-message").className = text ? "message error" : "message";
  }

  async function lookUp(event) {
    event.preventDefault();
    say("");
    $("result").hidden = true;
    let response;
    try {
      response = await fetch("/api/v1/public/lookup", {
        method: "POST", headers: { "Content-Type": "application/json" }, cache: "no-store", credentials: "omit",
        body: JSON.stringify({ code: $("lookup-code").value.trim(), phone: $("lookup-phone").value.trim() }),
      });
    } catch (_e) {
      say("Không kết nối được máy chủ, xin thử lại.");
      return;
    }
    if (response.status === 404) { say("Không tìm thấy hồ sơ với mã và số điện thoại này."); return; }
    if (response.status === 422) { say("Mã hồ sơ hoặc số điện thoại chưa đúng dạng."); return; }
    if (response.status === 429) { say("Bạn đã tra cứu quá nhiều lần, xin thử lại sau ít phút."); return; }
    if (!response.ok) { say("Hệ thống đang bận, xin thử lại sau."); return; }
    const dossier = await response.json();
    $("result-code").textContent = dossier.code;
    $("result-status").textContent = dossier.status_text;
    $("result-due").textContent = dossier.due_text || "—";
    $("result-bring").hidden = dossier.status !== "supplement_requested";
    $("result-supplement").textContent = dossier.supplement || "";
    $("result-supplement-line").hidden = !dossier.supplement;
    $("result-ready").hidden = dossier.status !== "resolved";
    document.body.dataset.status = dossier.status;
    $("result").hidden = false;
  }

  $("lookup-form").addEventListener("submit", lookUp);
  const prefilled = new URLSearchParams(location.search).get("ma");
  if (prefilled) $("lookup-code").value = prefilled;
})();
