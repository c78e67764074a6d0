// The inbox list (components/inbox_list.py): the rows arrive as plain data (one prop, a list of small dicts)
// and are drawn here as plain HTML, so a filter switch is one prop update instead of hundreds of NiceGUI
// elements. The rows' ages count on and the SLA badges count down from their due times in the browser (one timer
// per list, which redraws the rows only when an age or a badge's text, colour or icon would change: about once a
// minute, not every second); rows the
// viewport does not show skip layout and paint (`content-visibility: auto` in the CSS); more rows are asked
// for, as data, when the list is scrolled near its end. Events back to the server: open, check, more.
const SPAN = (s) => {
  s = Math.abs(Math.round(s));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : m ? `${m}m` : "<1m";
};

// a row's age as components/inbox_list.py's first draw says it (fmt.ago): now, 5m, 3h, Tue, 12 Nov
const AGO = (at, now) => {
  const t = Date.parse(at), s = (now - t) / 1000;
  if (Number.isNaN(t)) return "";
  if (s < 60) return "now";
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  const day = new Date(t);
  if (s < 6 * 86400) return day.toLocaleDateString("en-US", { weekday: "short" });
  return day.toLocaleDateString("en-GB", { day: "numeric", month: "short" });
};

export default {
  template: `
    <div class="sc-inbox-list" @scroll.passive="scrolled" data-testid="inbox-list">
      <div v-if="!shown.length" class="sc-inbox-empty">
        <i class="q-icon notranslate material-icons" aria-hidden="true" style="font-size: 40px">inbox</i>
        <div>{{ empty }}</div>
      </div>
      <div v-for="(r, i) in shown" :key="r.id" class="sc-ticket-row sc-row" :class="{ 'sc-selected': r.id === selected }"
           tabindex="0" role="button" data-testid="ticket-row" :data-ticket-id="r.id"
           @click="open(r.id)" @keydown="key($event, r.id, i)">
        <label v-if="selecting" class="sc-row-check" @click.stop>
          <input type="checkbox" :checked="r.checked" data-testid="bulk-check" :data-ticket-id="r.id"
                 :aria-label="'Select ' + r.subject" @change="$emit('check', r.id)" />
        </label>
        <div class="sc-row-avatar" :class="'bg-' + r.avatar.color" :title="r.avatar.name">
          <div v-if="r.avatar.url" class="sc-row-img" data-testid="avatar-image"><img :src="r.avatar.url" alt="" /></div>
          <i v-else-if="r.avatar.icon" class="q-icon notranslate material-icons" aria-hidden="true">{{ r.avatar.icon }}</i>
          <span v-else class="sc-initials">{{ r.avatar.initials }}</span>
        </div>
        <div class="sc-row-main">
          <div class="sc-row-line">
            <span class="sc-row-subject" :class="r.unread ? 'sc-unread' : ''">{{ r.subject }}</span>
            <span class="sc-row-age" data-testid="row-age">{{ r.at ? ago(r.at) : r.ago }}</span>
          </div>
          <div class="sc-row-line">
            <span class="sc-row-preview">{{ r.who }}{{ r.preview }}</span>
            <span v-if="r.unread" class="sc-chip sc-unread-count bg-primary" data-testid="unread">{{ r.unread }}</span>
          </div>
          <div class="sc-row-line">
            <span class="sc-chip sc-outline" :class="'text-' + r.status_color">{{ r.status }}</span>
            <span v-if="r.priority" class="sc-chip" :class="'bg-' + r.priority_color">{{ r.priority }}</span>
            <span v-if="r.assignee" class="sc-row-assignee">→ {{ r.assignee }}</span>
            <span v-if="r.sla" class="sc-sla" :class="sla(r.sla).cls" data-testid="sla" :data-state="sla(r.sla).state"
                  :title="r.sla.tip">
              <i class="q-icon notranslate material-icons" aria-hidden="true" style="font-size: 12px">{{ sla(r.sla).icon }}</i>
              <span class="sc-sla-text" :elementtiming="'sla:' + r.id">{{ sla(r.sla).text }}</span>
            </span>
            <span v-if="r.viewers" class="sc-viewers" data-testid="row-viewers" :title="r.viewers.tip">
              <i class="q-icon notranslate material-icons" aria-hidden="true" style="font-size: 14px">visibility</i>
              <span v-for="v in r.viewers.shown" class="sc-viewer" :class="'bg-' + v.color">{{ v.initials }}</span>
              <span v-if="r.viewers.more" class="sc-viewers-more">+{{ r.viewers.more }}</span>
            </span>
          </div>
          <div v-if="r.snoozed" class="sc-row-line sc-row-snoozed" data-testid="row-snoozed">
            <i class="q-icon notranslate material-icons" aria-hidden="true" style="font-size: 14px">snooze</i>
            <span>{{ r.snoozed }}</span>
          </div>
          <div v-if="r.tags.length" class="sc-row-tags">
            <span v-for="t in r.tags" class="sc-tag" :class="{ 'sc-tag-failed': t.failed }" data-testid="tag"
                  :data-tag="t.name" :style="{ background: t.color, color: t.text }" :title="t.failed || null">{{ t.name }}</span>
            <span v-if="r.more_tags" class="sc-tags-more">+{{ r.more_tags }}</span>
          </div>
        </div>
      </div>
      <div v-if="more" class="sc-inbox-more" aria-hidden="true"></div>
    </div>`,
  props: {
    rows: { type: Array, default: () => [] },
    selected: { type: String, default: "" },
    selecting: Boolean,
    more: Boolean,
    empty: { type: String, default: "No tickets here" },
  },
  data() {
    return { now: Date.now(), local: null }; // local: a clicked sidebar entry's prefetched rows, until the server's
  },
  computed: {
    shown() {
      return this.local || this.rows;
    },
  },
  watch: {
    rows() {
      this.local = null; // the server's rows arrived: they are the truth
      clearTimeout(this.unconfirmed);
    },
  },
  created() {
    this.asked = 0; // rows.length when more rows were asked for (not reactive: no redraw)
  },
  mounted() {
    // the server-rendered rows (components/inbox_shell.py) stood in for these until now: gone in the same task
    // that put these in the DOM, so no frame shows both; where this list sits is kept for the next load's shell
    document.getElementById("sc-inbox-shell")?.remove();
    this.placed = setTimeout(() => {
      const r = this.$el.getBoundingClientRect();
      if (r.width > 0) localStorage.setItem("sc-inbox-rect", JSON.stringify({ top: r.top, left: r.left, width: r.width }));
    }, 500);
    // the clock moves (and every row is drawn again) only when a badge or an age would show something else
    this.timer = setInterval(() => {
      const now = Date.now(), was = (s) => this.sla(s, this.now), is = (s) => this.sla(s, now);
      const aged = (r) => r.at && AGO(r.at, this.now) !== AGO(r.at, now);
      if (this.shown.some((r) => aged(r) || (r.sla && (was(r.sla).cls !== is(r.sla).cls || was(r.sla).text !== is(r.sla).text)))) {
        this.now = now;
      }
    }, 1000);
    // a click on a sidebar entry (components/views_bar.py, data-sc-entry) draws that list's prefetched first rows
    // (components/inbox_prefetch.py) at once; the click goes on to the server, whose rows replace these
    this.onEntry = (e) => {
      const entry = e.target instanceof Element ? e.target.closest("[data-sc-entry]") : null;
      const lists = window.scInboxPrefetch ?? {};
      const key = entry?.dataset.scEntry;
      // own keys only: a view named "constructor" or "toString" must not find Object's methods
      const rows = entry && !entry.classList.contains("sc-selected") && Object.hasOwn(lists, key) && lists[key];
      if (!rows) return;
      this.local = rows;
      this.$el.scrollTop = 0;
      clearTimeout(this.unconfirmed);
      this.unconfirmed = setTimeout(() => (this.local = null), 3000); // no answer: what the server last sent
    };
    document.addEventListener("click", this.onEntry, true);
  },
  unmounted() {
    clearInterval(this.timer);
    clearTimeout(this.placed);
    clearTimeout(this.unconfirmed);
    document.removeEventListener("click", this.onEntry, true);
  },
  updated() {
    this.scrolled(); // a short first page may not fill the list: ask for the next one at once
  },
  methods: {
    ago(at) {
      return AGO(at, this.now);
    },
    open(id) {
      this.$emit("open", id);
    },
    key(e, id, i) {
      if (e.target !== e.currentTarget || e.altKey || e.ctrlKey || e.metaKey) return;
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        this.open(id);
      } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const rows = this.$el.querySelectorAll(":scope > .sc-row");
        const next = rows[Math.min(Math.max(i + (e.key === "ArrowDown" ? 1 : -1), 0), rows.length - 1)];
        if (next) next.focus();
      } else if (e.key === "x" && this.selecting) {
        this.$emit("check", id);
      }
    },
    scrolled() {
      const t = this.$el;
      if (this.asked && this.rows.length !== this.asked) this.asked = 0; // the page asked for arrived
      if (this.more && !this.asked && t.scrollTop + t.clientHeight > t.scrollHeight - 800) {
        this.asked = this.rows.length; // once per page of rows
        this.$emit("more");
      }
    },
    sla(s, now = this.now) {
      // state and text follow the clock: the same rules as components/sla_badge.py
      const due = Date.parse(s.due), start = s.start ? Date.parse(s.start) : NaN;
      const left = (due - now) / 1000, total = start ? (due - start) / 1000 : 0;
      const state = left <= 0 ? "breached" : total > 0 && left < total * s.near ? "near" : "ok";
      const paused = s.flip && Date.parse(s.flip) <= now ? !s.paused : s.paused;
      return {
        state,
        icon: paused ? "pause" : "schedule",
        cls: "sc-sla-" + state + (paused ? " sc-sla-paused" : ""),
        text: left <= 0 ? `overdue ${SPAN(left)}` : SPAN(left),
      };
    },
  },
};
