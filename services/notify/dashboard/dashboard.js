"use strict";
// Fetches /api/v1/reports/dashboard and redraws every REFRESH_SECONDS; no external code.
const REFRESH_SECONDS = 30;
const DASH = "—";

function rate(value) {
  return value === null ? DASH : value.toFixed(2);
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
}

function fillRates(tableId, report) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren();
  const lines = report.rows.map((r) => [r.key, r]);
  lines.push(["Tổng cộng", report.total]);
  for (const [name, r] of lines) {
    const tr = document.createElement("tr");
    if (r === report.total) tr.className = "total";
    tr.dataset.key = r === report.total ? "total" : name;
    cell(tr, name);
    cell(tr, String(r.received.total), "received");
    cell(tr, String(r.finished.total), "finished");
    cell(tr, String(r.open.total), "open");
    cell(tr, String(r.open.overdue), "overdue");
    cell(tr, rate(r.on_time_rate), "on-time-rate");
    cell(tr, rate(r.rate_766), "rate-766");
    body.appendChild(tr);
  }
}

// The month's ratings per unit and index 5.4 of 766 (100 − late share − không hài lòng share).
function fillSatisfaction(tableId, block) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren();
  const lines = block.rows.map((r) => [r.key, r]);
  lines.push(["Tổng cộng", block.total]);
  for (const [name, r] of lines) {
    const tr = document.createElement("tr");
    if (r === block.total) tr.className = "total";
    tr.dataset.key = r === block.total ? "total" : name;
    cell(tr, name);
    cell(tr, String(r.rated), "rated");
    cell(tr, String(r.rat_hai_long), "very-satisfied");
    cell(tr, String(r.hai_long), "satisfied");
    cell(tr, String(r.khong_hai_long), "not-satisfied");
    cell(tr, rate(r.index_5_4), "index-5-4");
    body.appendChild(tr);
  }
}

function fillList(tableId, items, place) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren();
  if (items.length === 0) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 3;
    td.className = "empty";
    td.textContent = "Không có hồ sơ";
    tr.appendChild(td);
    body.appendChild(tr);
    return;
  }
  for (const item of items) {
    const tr = document.createElement("tr");
    tr.dataset.key = item.code;
    cell(tr, item.code);
    cell(tr, place(item) || DASH);
    cell(tr, item.due_at ? new Date(item.due_at).toLocaleString("vi-VN", { timeZone: "Asia/Ho_Chi_Minh" }) : DASH);
    body.appendChild(tr);
  }
}

// The portal's public summary (/api/v1/portal/summary, the portal service's, same origin
// through the entry point): synced, pending, failed and oldest pending age per unit.
function fillPortal(summary) {
  const body = document.querySelector("#portal-sync tbody");
  body.replaceChildren();
  const lines = summary.units.map((u) => [u.unit || DASH, u]);
  lines.push(["Tổng cộng", summary.total]);
  for (const [name, u] of lines) {
    const tr = document.createElement("tr");
    if (u === summary.total) tr.className = "total";
    tr.dataset.key = u === summary.total ? "total" : name;
    cell(tr, name);
    cell(tr, String(u.synced), "synced");
    cell(tr, String(u.pending), "pending");
    cell(tr, String(u.failed), "failed");
    cell(tr, u.oldest_pending_minutes === null ? DASH : String(u.oldest_pending_minutes), "lag");
    body.appendChild(tr);
  }
}

function portalNote(text) {
  const note = document.getElementById("portal-note");
  note.textContent = text;
  note.hidden = text === "";
}

// Never throws: without a summary (the portal down, or the page served by notify alone)
// the section says so and the rest of the page is unaffected.
async function refreshPortal() {
  let summary = null;
  try {
    const answer = await fetch("/api/v1/portal/summary", { headers: { accept: "application/json" } });
    if (answer.ok) summary = await answer.json();
  } catch (exc) {
    summary = null;
  }
  if (summary === null || !Array.isArray(summary.units) || !summary.total) {
    document.querySelector("#portal-sync tbody").replaceChildren();
    document.getElementById("portal-sync").hidden = true;
    portalNote("Chưa có dữ liệu đồng bộ Cổng DVCQG.");
  } else {
    fillPortal(summary);
    document.getElementById("portal-sync").hidden = false;
    portalNote(summary.configured ? "" : "Chưa cấu hình Cổng DVCQG: hồ sơ được ghi lại, chưa gửi đi.");
  }
  document.body.dataset.portal = summary === null ? "unavailable" : "loaded";
}

async function refresh() {
  const error = document.getElementById("error");
  try {
    const answer = await fetch("/api/v1/reports/dashboard", { headers: { accept: "application/json" } });
    if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
    const data = await answer.json();
    fillRates("today", data.today);
    fillRates("month", data.month);
    document.getElementById("month-range").textContent = `${data.month.from} – ${data.month.to}`;
    fillSatisfaction("satisfaction", data.satisfaction);
    fillList("overdue", data.overdue, (d) => d.unit);
    fillList("needs-apology", data.needs_apology, (d) => d.office);
    fillList("due-soon", data.due_soon, (d) => d.office);
    document.getElementById("generated-at").textContent = data.generated_at;
    document.body.dataset.loaded = "true";
    error.hidden = true;
  } catch (exc) {
    error.textContent = `Không tải được số liệu (${exc.message}); thử lại sau ${REFRESH_SECONDS} giây.`;
    error.hidden = false;
  }
}

document.getElementById("refresh-seconds").textContent = String(REFRESH_SECONDS);
refresh();
refreshPortal();
setInterval(() => { refresh(); refreshPortal(); }, REFRESH_SECONDS * 1000);
