// Autosave queue for the rating page.
//
// Every change is queued under a key ("score:GHES_1", "note:<uuid>", "difficulties", ...); a
// later change to the same key replaces the earlier one but keeps its `base` (the value the
// server held when the client last knew it), so the server can do a per-field compare-and-set.
// The queue lives in localStorage: closing the tab and coming back restores unsent changes.
// Saves are debounced (at most ~2 s after a change), one request at a time; network errors and
// server errors are retried with exponential backoff; nothing is ever dropped silently.
//
// A save the server refuses as malformed or too large (400, 413) is not retried: sending it
// again would be refused again. The page says which changes and why; they stay on the page, in
// the queue and in localStorage, and saving starts again with the rater's next change (which
// replaces the refused value of its field). The one exception is active time beyond the wall
// time (a clock that jumped): that measured figure is dropped and the rest is sent at once.
//
// Each tab has a client id and numbers its batches 1, 2, 3 ...; a batch, once sent, is frozen
// and resent unchanged (same number) until the server answers it, and changes made meanwhile
// go into the next batch. The server applies a batch number once: a retry whose first copy
// did arrive, or a copy delayed in the network, is answered {"duplicate": true} and never
// applied again (it cannot undo newer changes, nor count active time twice). The frozen batch
// is kept in localStorage with the queue and resent with its own client id after a reload.

import { formatTime } from './player.js';

const DEBOUNCE_MS = 600;
const MAX_WAIT_MS = 1800;
const MAX_BACKOFF_MS = 30000;

export class Autosave {
  constructor({ url, storageKey, version, csrfToken, server, onStatus, onBanner }) {
    this.url = url;
    this.storageKey = storageKey;
    this.version = version;
    this.csrfToken = csrfToken;
    this.server = new Map(Object.entries(server)); // key -> value last known on the server
    this.onStatus = onStatus;
    this.onBanner = onBanner;
    this.pending = new Map(); // key -> {change, seq}
    this.active = 0; // active seconds not yet sent
    this.seq = 0;
    this.client = newClientId();
    this.batchSeq = 0; // number of the last batch this tab built
    this.sending = null; // the frozen batch: {body, sent, active}, until the server answers it
    this.inFlight = false;
    this.stopped = false;
    this.blocked = false; // the last save was refused (400/413): wait for the rater's next change
    this.failures = 0;
    this.timer = null;
    this.firstUnsentAt = null;
    this.restore();
  }

  // Changes left over from a previous visit, oldest first (to re-apply them to the page).
  restored() {
    return [...this.pending.entries()].map(([key, entry]) => ({ key, change: entry.change }));
  }

  queue(key, change, serverValue) {
    if (this.stopped) return;
    this.blocked = false; // a new change may correct what was refused: try again
    const previous = this.pending.get(key);
    const withBase = { ...change };
    if (serverValue !== undefined) {
      withBase.base = previous ? previous.change.base : (this.server.has(key) ? this.server.get(key) : null);
    }
    this.pending.set(key, { change: withBase, seq: ++this.seq, value: serverValue });
    this.persist();
    this.schedule();
  }

  // Drop a change that never reached the server (e.g. a new note deleted before it was sent).
  forget(key) {
    this.pending.delete(key);
    this.persist();
  }

  isKnownToServer(key) {
    return this.server.has(key) && this.server.get(key) !== null;
  }

  addActive(seconds) {
    if (this.stopped) return;
    this.active += seconds;
    this.persist();
  }

  hasUnsent() {
    return this.pending.size > 0 || this.inFlight || this.sending !== null;
  }

  schedule(delay = DEBOUNCE_MS) {
    if (this.stopped) return;
    const now = Date.now();
    if (this.firstUnsentAt === null) this.firstUnsentAt = now;
    const wait = Math.min(delay, Math.max(0, this.firstUnsentAt + MAX_WAIT_MS - now));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), wait);
    this.onStatus('saving');
  }

  async flush({ keepalive = false } = {}) {
    if (this.stopped || this.blocked || this.inFlight) return;
    clearTimeout(this.timer);
    if (this.sending === null) {
      if (this.pending.size === 0 && this.active < 1) {
        this.firstUnsentAt = null;
        return;
      }
      this.sending = this.nextBatch();
      this.persist();
    }
    const { body: batch, sent, active } = this.sending;
    this.inFlight = true;
    this.onStatus('saving');
    let response;
    try {
      response = await fetch(this.url, {
        method: 'POST',
        credentials: 'same-origin',
        keepalive,
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRFToken': this.csrfToken },
        body: JSON.stringify(batch),
      });
    } catch (err) {
      this.inFlight = false;
      return this.retry('network');
    }
    this.inFlight = false;
    let body = {};
    try { body = await response.json(); } catch (err) { body = {}; }
    if (response.ok && body.ok) {
      this.sending = null;
      return this.saved(sent, active, body);
    }
    if (response.status === 409 && body.conflicts) return this.stop('conflict', body.error);
    if (response.status === 423) return this.stop('locked', body.error, true);
    if (response.status === 400 || response.status === 413) return this.refused(response.status, body, batch, active);
    if (response.status === 401) this.onBanner('error', 'Your login has expired. Log in again in another tab; your changes are kept here and will be saved.');
    if (response.status === 403 || response.status === 404) return this.stop('error', body.error || 'This rating can no longer be saved.');
    return this.retry('server');
  }

  // The next batch: every pending change plus the active time, numbered for this tab.
  nextBatch() {
    const sent = [...this.pending.entries()].map(([key, e]) => ({ key, seq: e.seq, value: e.value }));
    const active = Math.floor(this.active);
    const changes = [...this.pending.values()].map((e) => e.change);
    if (active > 0) changes.push({ op: 'active', seconds: active });
    this.batchSeq += 1;
    const body = { client: this.client, seq: this.batchSeq, base_version: this.version, changes };
    return { body: JSON.parse(JSON.stringify(body)), sent, active }; // frozen: a copy
  }

  saved(sent, active, body) {
    this.failures = 0;
    this.version = body.version;
    this.active -= active;
    for (const s of sent) {
      this.server.set(s.key, s.value === undefined ? null : s.value);
      const now = this.pending.get(s.key);
      if (!now) continue;
      if (now.seq === s.seq) this.pending.delete(s.key);
      else if (s.value !== undefined) now.change.base = s.value; // changed again meanwhile
    }
    this.persist();
    if (body.others_changed) this.onBanner('info', 'This rating was also changed in another tab or window. Reload to see those changes.');
    if (this.pending.size > 0) {
      this.firstUnsentAt = null;
      return this.schedule(0);
    }
    this.firstUnsentAt = null;
    this.onStatus('saved');
  }

  // The server refused the batch as it is (400 malformed, 413 too large): never resend it.
  // Its changes are still pending (only an answered save removes them), so the page and
  // localStorage keep them; the next batch is built afresh from the rater's next change.
  refused(status, body, batch, active) {
    this.sending = null;
    const problems = (body.problems || []).map((p) => refusedChange(p, batch.changes));
    if (active > 0 && problems.length && problems.every((p) => p.op === 'active')) {
      this.active -= active; // active time the server cannot count: drop it, send the rest
      this.persist();
      return this.schedule(0);
    }
    this.blocked = true;
    clearTimeout(this.timer);
    this.firstUnsentAt = null;
    this.persist();
    const why = problems.length
      ? problems.map((p) => `${p.what}: ${p.problem}`).join('; ')
      : (body.error || (status === 413 ? 'the save is too large' : 'the save was refused'));
    let fix = 'Correct them (for example, shorten a very long note); saving starts again with your next change.';
    if (status === 413) fix = 'Shorten the longest notes; saving starts again with your next change.';
    else if (!problems.length) fix = 'Reload the page: they are sent again from this browser.'; // e.g. a CSRF token of an old login
    this.onStatus('error');
    this.onBanner('error', `These changes were NOT saved: ${why}. They are still shown on this page and kept in this browser. ${fix}`);
  }

  retry(reason) {
    this.failures += 1;
    const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (this.failures - 1));
    this.onStatus('retrying', { delay, reason });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), delay);
  }

  retryNow() {
    if (this.stopped || this.inFlight || !this.hasUnsent()) return;
    this.failures = 0;
    this.flush();
  }

  stop(state, message, clear = false) {
    this.stopped = true;
    clearTimeout(this.timer);
    if (clear) this.discard();
    this.onStatus(state);
    this.onBanner(state, message);
  }

  discard() {
    this.pending.clear();
    this.sending = null;
    this.active = 0;
    localStorage.removeItem(this.storageKey);
  }

  persist() {
    try {
      if (this.pending.size === 0 && this.active < 1 && this.sending === null) {
        localStorage.removeItem(this.storageKey);
        return;
      }
      localStorage.setItem(this.storageKey, JSON.stringify({
        pending: [...this.pending.entries()].map(([key, e]) => [key, e.change, e.value]),
        active: this.active,
        sending: this.sending,
      }));
    } catch (err) {
      // Storage full or disabled: the in-memory queue still saves; nothing more to do here.
    }
  }

  restore() {
    let stored = null;
    try { stored = JSON.parse(localStorage.getItem(this.storageKey) || 'null'); } catch (err) { stored = null; }
    if (!stored) return;
    for (const [key, change, value] of stored.pending || []) {
      this.pending.set(key, { change, seq: ++this.seq, value });
    }
    this.active = Number(stored.active) || 0;
    const frozen = stored.sending;
    if (frozen && frozen.body && Array.isArray(frozen.sent)) {
      // Resent as it was (with the earlier tab's client id and number), before anything new.
      // A queued change still equal to the frozen one is settled by its answer; one changed
      // since then stays queued (with the frozen value as its base once answered).
      const sent = frozen.sent.map((s, i) => {
        const now = this.pending.get(s.key);
        const same = now && JSON.stringify(now.change) === JSON.stringify(frozen.body.changes[i]);
        return { ...s, seq: same ? now.seq : -1 };
      });
      this.sending = { body: frozen.body, sent, active: Number(frozen.active) || 0 };
    }
  }
}

// "change 3: 'text' is 12000 characters long; ..." -> what the rater knows that change as.
function refusedChange(problem, changes) {
  const match = /^change (\d+): (.*)$/s.exec(problem);
  const change = match ? changes[Number(match[1])] : null;
  if (!change) return { op: null, what: 'this save', problem };
  return { op: change.op, what: describe(change), problem: match[2] };
}

function describe(change) {
  if (change.op === 'score') return `the score of ${change.item}`;
  if (change.op.startsWith('note.')) return typeof change.seconds === 'number' ? `the note at ${formatTime(change.seconds)}` : 'a deleted note';
  if (change.op.startsWith('homework.')) return 'a homework entry';
  if (change.op === 'difficulties') return 'the difficulties';
  if (change.op.startsWith('event.')) return 'a coded event';
  if (change.op === 'position') return 'the audio position';
  return 'the active time';
}

function newClientId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((x) => x.toString(16).padStart(2, '0')).join('');
}
