// The supervisor dashboard: live queues per matter and level, clerk states, waiting
// tickets with the queue controls (pause/resume a matter, move a ticket to the head or
// tail, assign it to a clerk), and today's figures as charts.

import { Connection, api } from "../lib/connection.js";
import { $, h, showScreen, toast } from "../lib/dom.js";
import { addStrings, t, pick, serverText } from "../lib/i18n.js";
import { bootStaffPage, signOut } from "../lib/staff_login.js";
import { barChart } from "../lib/charts.js";

addStrings({
  sup_title: ["值班长看板", "Supervisor dashboard"],
  sup_queues: ["各事项排队", "Queues by service"],
  sup_clerks: ["工作人员", "Clerks"],
  sup_tickets: ["排队中的群众", "Waiting citizens"],
  col_matter: ["事项", "Service"],
  col_waiting: ["排队", "Waiting"],
  col_priority: ["优先", "Priority"],
  col_longest: ["最长等待", "Longest wait"],
  col_levels: ["所在层级", "At level"],
  col_clerk: ["姓名", "Name"],
  col_state: ["状态", "State"],
  col_sessions: ["今日服务", "Today"],
  col_waited: ["已等待", "Waited"],
  col_assigned: ["指定", "Assigned"],
  queue_empty: ["当前无人排队", "Nobody is waiting"],
  pause: ["暂停", "Pause"],
  resume: ["恢复", "Resume"],
  to_head: ["置顶", "To head"],
  to_tail: ["置尾", "To tail"],
  assign_to: ["指派给…", "Assign to…"],
  done: ["已执行", "Done"],
  level_village: ["村", "village"],
  level_township: ["镇", "township"],
  level_county: ["县区", "county"],
  level_city: ["市", "city"],
  level_partner: ["跨省", "partner"],
  priority_yes: ["优先", "priority"],
  priority_no: ["普通", "normal"],
  state_offline: ["离线", "Offline"],
  state_available: ["可接单", "Available"],
  state_offered: ["来电中", "Incoming"],
  state_busy: ["服务中", "In a call"],
  state_wrap_up: ["整理中", "Wrap-up"],
  state_break: ["小休", "Break"],
  state_away: ["暂离", "Away"],
  tile_waiting: ["排队人数", "Waiting"],
  tile_online: ["在线工作人员", "Clerks online"],
  tile_sessions: ["今日服务", "Sessions today"],
  tile_wait: ["今日平均等待", "Average wait today"],
  tile_rating: ["今日平均评分", "Average rating today"],
  chart_waits: ["等待时长分布（分钟）", "Waiting time (minutes)"],
  chart_hours: ["各时段服务量", "Sessions per hour"],
  chart_ratings: ["评价分布（1–5 分）", "Ratings (1–5)"],
  updated: ["更新于 {time}", "Updated {time}"],
});

const FIGURES_EVERY_MS = 15000;

class Board {
  async boot() {
    const signed = await bootStaffPage({
      roles: ["supervisor", "admin"],
      onLanguage: () => this._render(),
    });
    this.csrf = signed.csrf_token;
    $("#me").textContent = `${signed.clerk.display_name} · ${signed.clerk.department}`;
    $("#logout").hidden = false;
    $("#logout").onclick = () => signOut(this.csrf);
    showScreen("board");
    this.conn = new Connection("/supervisor");
    this.conn.on("status", ({ state }) => {
      $("#net").hidden = state === "online";
      if (state === "online") this._refresh();
    });
    this.conn.on("dashboard", (data) => this._dashboard(data));
    this._figures();
    setInterval(() => this._figures(), FIGURES_EVERY_MS);
  }

  async _refresh() {
    try {
      this._dashboard(await this.conn.call("dashboard", {}));
    } catch (err) {
      toast(serverText(err.message), { kind: "error" });
    }
  }

  async _figures() {
    try {
      this.figures = await api("/api/stats/today");
      this._render();
    } catch {
      /* keep the last figures */
    }
  }

  _dashboard(data) {
    this.data = data;
    this._render();
    if (this.sessionsSeen !== undefined && this._sessionsToday() !== this.sessionsSeen) this._figures();
    this.sessionsSeen = this._sessionsToday();
  }

  _sessionsToday() {
    return (this.data?.clerks || []).reduce((n, c) => n + c.sessions_today, 0);
  }

  async _control(event, payload) {
    try {
      await this.conn.call(event, payload);
      toast(t("done"));
      await this._refresh();
    } catch (err) {
      toast(serverText(err.message), { kind: "error" });
    }
  }

  _render() {
    if (!this.data) return;
    const d = this.data;
    const f = this.figures || {};
    $("#updated").textContent = t("updated", { time: new Date(d.at * 1000).toLocaleTimeString() });
    const waiting = d.queues.reduce((n, q) => n + q.waiting, 0);
    const online = d.clerks.filter((c) => c.state !== "offline").length;
    const tiles = [
      ["tile_waiting", waiting],
      ["tile_online", online],
      ["tile_sessions", f.sessions ?? this._sessionsToday()],
      ["tile_wait", f.average_wait_s != null ? `${(f.average_wait_s / 60).toFixed(1)} min` : "—"],
      ["tile_rating", f.average_rating != null ? f.average_rating.toFixed(1) : "—"],
    ];
    $("#tiles").replaceChildren(...tiles.map(([k, v]) => h("div", { class: "tile", dataset: { tile: k } },
      h("div", { class: "value" }, v), h("div", { class: "label" }, t(k)))));

    const queues = d.queues.filter((q) => q.waiting > 0 || q.paused);
    $("#queues tbody").replaceChildren(...queues.map((q) => h("tr", { class: q.paused ? "paused" : "", dataset: { code: q.code } },
      h("td", {}, pick(q)),
      h("td", { class: "num" }, q.waiting),
      h("td", { class: "num" }, q.priority_waiting),
      h("td", { class: "num" }, `${Math.round(q.longest_wait_s)} s`),
      h("td", { class: "levels" }, ...Object.entries(q.by_level).map(([level, n]) => h("span", {}, `${t(`level_${level}`)} ${n}`))),
      h("td", {}, h("div", { class: "row-actions" }, q.paused
        ? h("button", { type: "button", class: "good", dataset: { action: "resume" }, onclick: () => this._control("queue.resume", { matter: q.code }) }, t("resume"))
        : h("button", { type: "button", class: "secondary", dataset: { action: "pause" }, onclick: () => this._control("queue.pause", { matter: q.code }) }, t("pause")))))));
    $("#queues-empty").hidden = queues.length > 0;

    $("#clerks tbody").replaceChildren(...d.clerks.map((c) => h("tr", { dataset: { clerk: c.id } },
      h("td", {}, c.display_name), h("td", {}, h("span", { class: "state", dataset: { state: c.state } }, t(`state_${c.state}`))),
      h("td", { class: "num" }, c.sessions_today))));

    const names = Object.fromEntries(d.queues.map((q) => [q.code, q]));
    const available = d.clerks.filter((c) => c.state !== "offline");
    $("#tickets tbody").replaceChildren(...d.tickets.map((tk) => h("tr", { dataset: { ticket: tk.ticket_id } },
      h("td", {}, names[tk.matter] ? pick(names[tk.matter]) : tk.matter),
      h("td", {}, tk.priority === "priority" ? t("priority_yes") : t("priority_no")),
      h("td", { class: "num" }, `${Math.round(tk.waited_s)} s`),
      h("td", {}, tk.assigned_clerk || ""),
      h("td", {}, h("div", { class: "row-actions" },
        h("button", { type: "button", class: "secondary", dataset: { action: "head" }, onclick: () => this._control("ticket.move", { ticket_id: tk.ticket_id, to: "head" }) }, t("to_head")),
        h("button", { type: "button", class: "secondary", dataset: { action: "tail" }, onclick: () => this._control("ticket.move", { ticket_id: tk.ticket_id, to: "tail" }) }, t("to_tail")),
        h("select", { dataset: { action: "assign" }, onchange: (e) => e.target.value && this._control("ticket.assign", { ticket_id: tk.ticket_id, clerk: e.target.value }) },
          h("option", { value: "" }, t("assign_to")), ...available.map((c) => h("option", { value: c.id }, c.display_name))))))));
    $("#tickets-empty").hidden = d.tickets.length > 0;
    this._charts(d, f);
  }

  _charts(d, f) {
    // Waiting time: today's served citizens, with those still waiting now in amber.
    const buckets = (f.wait_histogram || []).map((b) => ({ ...b }));
    const live = d.tickets.map((tk) => tk.waited_s);
    const bounds = [60, 180, 300, 600, 1200, Infinity];
    const bars = buckets.length
      ? buckets.map((b, i) => ({ label: b.label, value: b.count + live.filter((w) => w < bounds[i] && (i === 0 || w >= bounds[i - 1])).length }))
      : [];
    $("#chart-waits").replaceChildren(barChart(bars, { title: t("chart_waits") }));
    const hours = (f.sessions_per_hour || []).filter((x) => x.hour >= 7 && x.hour <= 20);
    $("#chart-hours").replaceChildren(barChart(hours.map((x) => ({ label: `${x.hour}`, value: x.count })), { title: t("chart_hours"), labelEvery: 2 }));
    $("#chart-ratings").replaceChildren(barChart((f.ratings || []).map((r) => ({ label: `${r.score}`, value: r.count })), { title: t("chart_ratings") }));
  }
}

const board = new Board();
window.xiaowu = board;
await board.boot();
