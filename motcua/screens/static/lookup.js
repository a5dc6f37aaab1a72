/* /tra-cuu: the citizen's look-up, no key. The phone travels in the body of a POST
   (POST /api/v1/public/lookup), never in a URL; the answer gives the status in words and
   the due time, and what to bring when a supplement is asked (with the officer's note of
   what is missing, when the answer has one) or the result is ready.

   When the dossier has its result (resolved or returned), the citizen may rate it once:
   POST /api/v1/public/ratings with the code and phone of the look-up just shown (in the
   body, as the look-up's), one of three levels and an optional comment. */
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const { ratingAnswer } = window.motcua;
  const WITH_RESULT = ["resolved", "returned"];
  let shown = null; // the code and phone of the dossier on the page

  function say(text) {
    $("lookup-message").textContent = text;
    $("lookup-message").className = text ? "message error" : "message";
  }

  async function lookUp(event) {
    event.preventDefault();
    say("");
    $("result").hidden = true;
    $("rate").hidden = true;
    shown = null;
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
    shown = { code: dossier.code, phone: $("lookup-phone").value.trim() };
    $("result-code").textContent = dossier.code;
    $("result-status").textContent = dossier.status_text;
    $("result-due").textContent = dossier.due_text || "—";
    $("result-bring").hidden = dossier.status !== "supplement_requested";
    $("result-supplement").textContent = dossier.supplement || "";
    $("result-supplement-line").hidden = !dossier.supplement;
    $("result-ready").hidden = dossier.status !== "resolved";
    document.body.dataset.status = dossier.status;
    $("result").hidden = false;
    offerRating(WITH_RESULT.includes(dossier.status));
  }

  function offerRating(withResult) {
    $("rate-form").reset();
    $("rate-form").hidden = false;
    $("rate-message").textContent = "";
    $("rate-message").className = "message";
    $("rate").hidden = !withResult;
  }

  async function rate(event) {
    event.preventDefault();
    if (!shown) return;
    const chosen = document.querySelector("input[name=rate-level]:checked");
    if (!chosen) {
      $("rate-message").textContent = "Xin chọn một mức độ hài lòng.";
      $("rate-message").className = "message error";
      return;
    }
    const body = { code: shown.code, phone: shown.phone, level: chosen.value };
    const comment = $("rate-comment").value.trim();
    if (comment) body.comment = comment;
    let status = 0;
    let answer = null;
    try {
      const response = await fetch("/api/v1/public/ratings", {
        method: "POST", headers: { "Content-Type": "application/json" }, cache: "no-store", credentials: "omit",
        body: JSON.stringify(body),
      });
      status = response.status;
      answer = await response.json().catch(() => null);
    } catch (_e) {
      status = 0;
    }
    const [words, kind] = ratingAnswer(status, answer, shown.code, "Không tìm thấy hồ sơ với mã và số điện thoại này.");
    $("rate-message").textContent = words;
    $("rate-message").className = "message " + kind;
    if (status === 201 || status === 409) $("rate-form").hidden = true; // rated now, or not to be rated
  }

  $("lookup-form").addEventListener("submit", lookUp);
  $("rate-form").addEventListener("submit", rate);
  const prefilled = new URLSearchParams(location.search).get("ma");
  if (prefilled) $("lookup-code").value = prefilled;
})();
