/* What every screen shares: the signed-in session, calls to the API, Vietnamese labels
   and times, and DOM helpers that never parse data as HTML.

   The key lives in this tab's sessionStorage only and travels in the X-API-Key header
   only: never in a URL, never written to the console. A page without a session shows
   nothing but its sign-in form. */
"use strict";

window.motcua = (function () {
  const STORE = "motcua.session";
  const ZONE = "Asia/Ho_Chi_Minh";
  const UNIT_PATTERN = /^[0-9A-Za-z.]{1,40}$/;

  const STATUS = {
    submitted: "Mới đăng ký",
    received: "Đã tiếp nhận",
    refused: "Không tiếp nhận",
    processing: "Đang giải quyết",
    supplement_requested: "Yêu cầu bổ sung",
    payment_requested: "Chờ thực hiện nghĩa vụ tài chính",
    withdrawal_requested: "Công dân xin rút hồ sơ",
    stopped: "Dừng giải quyết",
    withdrawn: "Đã rút hồ sơ",
    resolved: "Đã có kết quả",
    returned: "Đã trả kết quả",
  };

  const OPEN = ["received", "processing"];
  const WAITING = ["supplement_requested", "payment_requested"];
  const IN_PROGRESS = OPEN.concat(WAITING);

  /* What each action is called, the states it is legal in and who gives it (admin and
     importer keys give any): the same table as services/intake/domain.py, which
     tests/browser/test_screens.py compares it with. */
  const ACTIONS = {
    accept: { label: "Tiếp nhận", from: ["submitted"], roles: ["counter"], reason: false },
    refuse: { label: "Từ chối tiếp nhận", from: ["submitted"], roles: ["counter"], reason: true },
    request_supplement: { label: "Yêu cầu bổ sung", from: OPEN, roles: ["counter", "office"], reason: false },
    submit_supplement: { label: "Đã nhận hồ sơ bổ sung", from: ["supplement_requested"], roles: ["counter", "office"], reason: false },
    request_payment: { label: "Yêu cầu nộp phí, lệ phí", from: OPEN, roles: ["counter", "office"], reason: false },
    payment_received: { label: "Đã nộp phí, lệ phí", from: ["payment_requested"], roles: ["counter", "office"], reason: false },
    stop: { label: "Dừng giải quyết", from: IN_PROGRESS, roles: ["office"], reason: true },
    resume: { label: "Tiếp tục giải quyết", from: ["stopped", "withdrawal_requested"], roles: ["office"], reason: false },
    resolve: { label: "Đã giải quyết xong", from: OPEN, roles: ["office"], reason: false },
    return_result: { label: "Trả kết quả", from: ["resolved"], roles: ["counter"], reason: false },
    withdraw_request: { label: "Công dân xin rút hồ sơ", from: IN_PROGRESS.concat(["stopped"]), roles: ["counter"], reason: false },
    withdraw: { label: "Xác nhận rút hồ sơ", from: ["withdrawal_requested"], roles: ["counter", "office"], reason: true },
    extend: { label: "Gia hạn (thư xin lỗi)", from: IN_PROGRESS, roles: ["office"], reason: true },
    transfer: { label: "Chuyển cơ quan khác", from: OPEN, roles: ["office"], reason: false },
  };

  class ApiError extends Error {
    constructor(status, detail, body) {
      super(describe(status, detail));
      this.status = status;
      this.body = body;
    }
  }

  function describe(status, detail) {
    const words = {
      400: "Yêu cầu không hợp lệ",
      401: "Khóa truy cập không đúng hoặc đã bị thu hồi",
      403: "Khóa này không được phép làm việc này",
      404: "Không tìm thấy",
      409: "Không thực hiện được ở trạng thái hiện tại",
      413: "Yêu cầu quá lớn",
      422: "Thông tin chưa hợp lệ",
      429: "Quá nhiều yêu cầu, xin thử lại sau ít phút",
    };
    const head = words[status] || (status >= 500 ? "Hệ thống đang bận, xin thử lại" : "Lỗi " + status);
    return detail ? head + ": " + detail : head;
  }

  function detailOf(body) {
    if (!body || body.detail === undefined) return "";
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) {
      return body.detail
        .map((e) => (Array.isArray(e.loc) ? e.loc.filter((p) => p !== "body").join(".") + " — " : "") + (e.msg || ""))
        .join("; ");
    }
    return "";
  }

  function session() {
    try {
      const raw = sessionStorage.getItem(STORE);
      return raw ? JSON.parse(raw) : null;
    } catch (_e) {
      return null;
    }
  }

  function saveSession(value) {
    sessionStorage.setItem(STORE, JSON.stringify(value));
  }

  function signOut() {
    sessionStorage.removeItem(STORE);
    location.reload();
  }

  /* One call to the API on this origin; the session's key (or options.key) in the header.
     Answers the parsed JSON (or the Response, a Blob, text: options.as). */
  async function api(path, options) {
    const opts = options || {};
    const headers = Object.assign({}, opts.headers || {});
    const key = opts.key || (session() || {}).key;
    if (key) headers["X-API-Key"] = key;
    let body;
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.body);
    }
    const response = await fetch(path, {
      method: opts.method || "GET", headers, body, cache: "no-store", credentials: "omit",
    });
    if (!response.ok) {
      let parsed = null;
      try {
        parsed = await response.json();
      } catch (_e) {
        parsed = null;
      }
      if (response.status === 401 && !opts.key && session()) signOut();
      throw new ApiError(response.status, detailOf(parsed), parsed);
    }
    if (opts.as === "response") return response;
    if (opts.as === "blob") return response.blob();
    if (opts.as === "text") return response.text();
    return response.json();
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function $(id) {
    return document.getElementById(id);
  }

  function say(id, text, kind) {
    const node = $(id);
    node.textContent = text || "";
    node.className = "message" + (kind ? " " + kind : "");
  }

  const TIME = new Intl.DateTimeFormat("vi-VN", {
    timeZone: ZONE, hour: "2-digit", minute: "2-digit", day: "2-digit", month: "2-digit", year: "numeric",
  });

  function time(iso) {
    return iso ? TIME.format(new Date(iso)) : "—";
  }

  /* Today's date in Vietnam, YYYY-MM-DD (the browser's clock). */
  function todayInVietnam() {
    return new Intl.DateTimeFormat("en-CA", { timeZone: ZONE, year: "numeric", month: "2-digit", day: "2-digit" })
      .format(new Date());
  }

  /* The services' clock (GET /api/v1/public/time): {now, today}, today as YYYY-MM-DD in
     Vietnam. A device's clock may be wrong; only when the services cannot be reached is
     it used instead. */
  async function serverTime() {
    try {
      return await api("/api/v1/public/time");
    } catch (_e) {
      return { now: new Date().toISOString(), today: todayInVietnam() };
    }
  }

  /* The Vietnam date (YYYY-MM-DD) of an ISO time. */
  function dayInVietnam(iso) {
    return new Intl.DateTimeFormat("en-CA", { timeZone: ZONE, year: "numeric", month: "2-digit", day: "2-digit" })
      .format(new Date(iso));
  }

  function newIdempotencyKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /* The actions a role may give in a status, in the table's order. */
  function actionsFor(status, role) {
    return Object.entries(ACTIONS)
      .filter(([, a]) => a.from.includes(status) && a.roles.includes(role))
      .map(([name, a]) => Object.assign({ name }, a));
  }

  function showSignedIn(current) {
    $("signin").hidden = true;
    $("app").hidden = false;
    $("who").textContent = "Đơn vị " + current.unit;
    $("signout").hidden = false;
  }

  /* The sign-in of a screen: a key and a unit, checked against the API (the unit's
     counters, readable by any key of the unit); then ``onReady(session, counters)``. */
  function start(onReady) {
    $("signout").addEventListener("click", signOut);
    $("signin-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const key = $("signin-key").value.trim();
      const unit = $("signin-unit").value.trim();
      if (!UNIT_PATTERN.test(unit)) {
        say("signin-message", "Mã đơn vị không hợp lệ", "error");
        return;
      }
      try {
        const counters = await api("/api/v1/queue/counters?unit=" + encodeURIComponent(unit), { key });
        $("signin-key").value = "";
        const current = { key, unit };
        saveSession(current);
        localStorage.setItem("motcua.unit", unit);
        showSignedIn(current);
        await onReady(current, counters);
      } catch (error) {
        say("signin-message", error.status === 403 ? "Khóa này không thuộc đơn vị " + unit : error.message, "error");
      }
    });
    $("signin-unit").value = localStorage.getItem("motcua.unit") || "";
    const current = session();
    if (!current) {
      $("signin-key").focus();
      return;
    }
    api("/api/v1/queue/counters?unit=" + encodeURIComponent(current.unit))
      .then(async (counters) => {
        showSignedIn(current);
        await onReady(current, counters);
      })
      .catch((error) => say("signin-message", error.message, "error"));
  }


  /* A dossier's status, history and the buttons of the actions ``role`` may give in its
     status, into ``box``; ``changed(dossier)`` after an action is recorded. */
  function showDossier(box, dossier, role, changed) {
    const actions = actionsFor(dossier.status, role);
    const history = el("table", { class: "history" },
      el("caption", { class: "muted" }, "Quá trình xử lý"),
      el("thead", {}, el("tr", {}, ["Lúc", "Việc", "Trạng thái", "Lý do"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, (dossier.history || []).map((h) =>
        el("tr", {}, el("td", {}, time(h.at)), el("td", {}, (ACTIONS[h.action] || {}).label || h.action),
          el("td", {}, STATUS[h.status] || h.status), el("td", {}, h.reason || "")))));
    const form = el("form", { class: "actions", onsubmit: (e) => e.preventDefault() },
      el("label", { for: "action-reason" }, "Lý do, nội dung (bắt buộc với một số việc)"),
      el("input", { id: "action-reason", maxlength: "1000", autocomplete: "off" }));
    if (actions.some((a) => a.name === "extend")) {
      form.append(el("label", { for: "action-due" }, "Hạn mới (khi gia hạn)"),
        el("input", { id: "action-due", type: "datetime-local" }));
    }
    if (actions.some((a) => a.name === "transfer")) {
      form.append(el("label", { for: "action-office" }, "Cơ quan chuyển đến (khi chuyển)"),
        el("input", { id: "action-office", autocomplete: "off" }));
    }
    const message = el("p", { class: "message", role: "status", id: "action-message" });
    for (const action of actions) {
      form.append(el("button", { type: "button", dataset: { action: action.name },
        onclick: () => act(dossier.code, action, message, changed) }, action.label));
    }
    box.replaceChildren(
      el("p", {}, "Mã hồ sơ: ", el("strong", {}, dossier.code)),
      el("p", {}, "Trạng thái: ", el("strong", { id: "dossier-status" }, STATUS[dossier.status] || dossier.status)),
      el("p", {}, "Hẹn trả: ", el("strong", {}, time(dossier.extended_due_at || dossier.due_at))),
      actions.length ? form : el("p", { class: "muted" }, "Không có việc nào khóa này làm được ở trạng thái này."),
      message, history);
  }

  async function act(code, action, message, changed) {
    const body = { action: action.name };
    const reason = $("action-reason").value.trim();
    if (reason) body.reason = reason;
    if (action.reason && !reason) {
      message.textContent = "Xin ghi lý do.";
      message.className = "message error";
      return;
    }
    if (action.name === "extend") {
      const due = $("action-due").value;
      if (!due) { message.textContent = "Xin chọn hạn mới."; message.className = "message error"; return; }
      body.new_due_at = due + ":00+07:00";
    }
    if (action.name === "transfer") body.office = $("action-office").value.trim();
    try {
      const answer = await api("/api/v1/dossiers/" + encodeURIComponent(code) + "/actions", {
        method: "POST", body, headers: { "Idempotency-Key": newIdempotencyKey() },
      });
      message.textContent = "Đã ghi: " + action.label;
      message.className = "message ok";
      await changed(answer.dossier);
    } catch (error) {
      message.textContent = error.message;
      message.className = "message error";
    }
  }

  /* The three levels of satisfaction (mức độ hài lòng), as intake's ratings name them. */
  const LEVELS = { rat_hai_long: "Rất hài lòng", hai_long: "Hài lòng", khong_hai_long: "Không hài lòng" };

  /* What the answer to a rating of dossier ``code`` means for the citizen: [words, kind].
     ``status`` is the HTTP status (0: no answer), ``body`` the parsed answer; a 409 with
     the dossier's ``status`` means no result yet, without it a rating given already;
     ``notFound`` is the page's words for a 404. */
  function ratingAnswer(status, body, code, notFound) {
    const said = body || {};
    if (status === 201) {
      return ["Cảm ơn bạn! Đánh giá “" + (LEVELS[said.level] || said.level) + "” cho hồ sơ " + code
        + " đã được ghi nhận.", "ok"];
    }
    if (status === 409 && said.status) {
      return ["Hồ sơ " + code + " chưa có kết quả (hiện: " + (STATUS[said.status] || said.status)
        + "). Bạn có thể đánh giá sau khi hồ sơ có kết quả.", "error"];
    }
    if (status === 409) return ["Hồ sơ " + code + " đã được đánh giá rồi. Mỗi hồ sơ chỉ đánh giá một lần.", "error"];
    if (status === 404) return [notFound, "error"];
    if (status === 422) return ["Mã hồ sơ hoặc góp ý chưa hợp lệ, xin kiểm tra lại.", "error"];
    if (status === 429) return ["Quá nhiều yêu cầu, xin thử lại sau ít phút.", "error"];
    if (status === 0) return ["Không kết nối được máy chủ, xin thử lại.", "error"];
    return ["Hệ thống đang bận, xin thử lại sau.", "error"];
  }

  return {
    LEVELS, ratingAnswer,
    showDossier,
    ACTIONS, STATUS, ApiError, api, el, $, say, time, todayInVietnam, serverTime, dayInVietnam,
    newIdempotencyKey,
    actionsFor, session, saveSession, signOut, start,
  };
})();
