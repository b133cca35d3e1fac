// The coding panel of the rating page: behaviour codes recorded as events on the audio timeline.
//
// A code's key (while "Coding keys" is on, and never in a text field) or its button records an
// event at the current audio time; a segment code starts a segment on the first press and ends
// it on the next. Events are markers (segments: regions) on a waveform drawn from the server's
// peaks; clicking one seeks there and selects it; the selected event can be re-coded, given a
// note, moved by one second or deleted; Ctrl/Cmd-Z undoes the last action. Every change goes through the
// rating page's autosave queue (rating/autosave.js) under the key "event:<client id>":
//
//   event.add    {client_id, code, time_s, end_s, note}   an event the server does not know yet
//                (or, with a base, one changed in several ways while its save was on the way,
//                or whose note changed)
//   event.move   {client_id, time_s, end_s}               only its times changed
//   event.recode {client_id, code}                        only its code changed
//   event.delete {client_id}
//
// each with `base`, the event as the server last had it, so another tab's newer change is never
// overwritten and a retried save never adds an event twice.
import { formatTime, isTypingTarget } from './rating/player.js';

const panel = document.getElementById('coding-panel');
const data = JSON.parse(document.getElementById('coding-state').textContent);
const audio = document.getElementById('audio');
const codes = new Map(data.codes.map((c) => [c.code, c]));
const byKey = new Map(data.codes.map((c) => [c.key.toLowerCase(), c]));
const events = new Map(data.events.map((e) => [e.client_id, plain(e)]));
const $ = (selector) => panel.querySelector(selector);

let saver = null;
let selected = null;
let codingMode = false;
const undoStack = [];
const UNDO_LIMIT = 200;

function plain(e) {
  return { code: e.code, time_s: e.time_s, end_s: e.end_s ?? null, note: e.note || '' };
}

function uuid() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

const round2 = (t) => Math.round(t * 100) / 100;
const now = () => round2(audio.currentTime || 0);
const duration = () => (Number.isFinite(audio.duration) ? audio.duration : Infinity);

// --- saving ------------------------------------------------------------------------------------

function sameTimes(a, b) { return a.time_s === b.time_s && a.end_s === b.end_s; }

function save(cid) {
  if (!saver) return;
  const key = `event:${cid}`;
  const event = events.get(cid) || null;
  const known = saver.server.has(key) ? saver.server.get(key) : null;
  const onTheWay = saver.sending && saver.sending.sent.some((s) => s.key === key);
  if (event === null) {
    if (known === null && !onTheWay) saver.forget(key); // never reached the server
    else saver.queue(key, { op: 'event.delete', client_id: cid }, null);
    return;
  }
  let change = { op: 'event.add', client_id: cid, ...event };
  if (known !== null && known.code === event.code && known.note === event.note && !sameTimes(known, event)) {
    change = { op: 'event.move', client_id: cid, time_s: event.time_s, end_s: event.end_s };
  } else if (known !== null && known.code !== event.code && known.note === event.note && sameTimes(known, event)) {
    change = { op: 'event.recode', client_id: cid, code: event.code };
  }
  saver.queue(key, change, { ...event });
}

// --- actions (each undoable) ------------------------------------------------------------------

function setEvent(cid, value) {
  if (value === null) events.delete(cid);
  else events.set(cid, value);
  save(cid);
  drawMarker(cid);
  scheduleRender();
}

function act(cid, value, record = true) {
  const before = events.has(cid) ? { ...events.get(cid) } : null;
  if (record) {
    undoStack.push({ cid, before });
    if (undoStack.length > UNDO_LIMIT) undoStack.shift();
  }
  setEvent(cid, value);
}

// The segment of this code that was started and not ended yet (point codes have none).
function openSegment(code) {
  if (!codes.get(code)?.segment) return null;
  for (const [cid, e] of events) if (e.code === code && e.end_s === null) return cid;
  return null;
}

function record(code) {
  const def = codes.get(code);
  const t = Math.min(now(), duration());
  if (def.segment) {
    const open = openSegment(code);
    if (open !== null) {
      const e = events.get(open);
      act(open, { ...e, end_s: Math.max(t, e.time_s) });
      select(open);
      return;
    }
  }
  const cid = uuid();
  act(cid, { code, time_s: t, end_s: null, note: '' });
  select(cid);
}

function recode(cid, code) {
  const e = events.get(cid);
  if (e && e.code !== code) act(cid, { ...e, code });
}

function annotate(cid, note) {
  const e = events.get(cid);
  if (e && e.note !== note) act(cid, { ...e, note });
}

function move(cid, delta) {
  const e = events.get(cid);
  if (!e) return;
  const shift = Math.max(-e.time_s, Math.min(delta, duration() - (e.end_s ?? e.time_s)));
  if (shift === 0) return;
  act(cid, { ...e, time_s: round2(e.time_s + shift), end_s: e.end_s === null ? null : round2(e.end_s + shift) });
}

function remove(cid) {
  if (!events.has(cid)) return;
  act(cid, null);
  if (selected === cid) select(null);
}

function undo() {
  const last = undoStack.pop();
  if (!last) return;
  setEvent(last.cid, last.before);
  select(last.before ? last.cid : null);
}

// --- waveform and markers ----------------------------------------------------------------------

let regions = null;
const drawn = new Map(); // cid -> region

// Regions live in the waveform's shadow DOM, where the page's CSS does not reach: inline style.
function markerContent(cid, e) {
  const span = document.createElement('span');
  span.className = `wave-marker${cid === selected ? ' selected' : ''}`;
  span.textContent = codes.get(e.code)?.key || e.code;
  span.title = `${e.code} at ${formatTime(e.time_s)}`;
  Object.assign(span.style, {
    fontSize: '10px', lineHeight: '1', padding: '1px 2px', borderRadius: '2px', color: '#fff',
    background: cid === selected ? '#a15c00' : '#1f5fa8', cursor: 'pointer',
  });
  return span;
}

function drawMarker(cid) {
  if (!regions) return;
  const old = drawn.get(cid);
  if (old) { old.remove(); drawn.delete(cid); }
  const e = events.get(cid);
  if (!e) return;
  const options = { id: cid, start: e.time_s, content: markerContent(cid, e), drag: false, resize: false,
    color: cid === selected ? 'rgba(161, 92, 0, .9)' : 'rgba(31, 95, 168, .8)' };
  if (e.end_s !== null) { options.end = e.end_s; options.color = 'rgba(31, 95, 168, .18)'; }
  drawn.set(cid, regions.addRegion(options));
}

async function setupWaveform() {
  if (!window.WaveSurfer || !window.WaveSurfer.Regions) return;
  let peaks;
  try {
    const response = await fetch(data.peaks, { credentials: 'same-origin' });
    if (!response.ok) return;
    peaks = await response.json();
  } catch (err) {
    return; // no waveform: the list, the tally and the keys still work
  }
  regions = window.WaveSurfer.Regions.create();
  const plugins = [regions];
  if (window.WaveSurfer.Timeline) plugins.push(window.WaveSurfer.Timeline.create({ height: 14 }));
  const wave = window.WaveSurfer.create({
    container: $('#waveform'),
    media: audio,
    peaks: [Float32Array.from(peaks.data, (v) => v / 128)],
    duration: peaks.duration,
    height: 72,
    waveColor: '#9fb3cc',
    progressColor: '#1f5fa8',
    cursorColor: '#b42318',
    normalize: true,
    plugins,
  });
  regions.on('region-clicked', (region, e) => {
    e.stopPropagation();
    audio.currentTime = region.start;
    select(region.id);
  });
  wave.on('ready', () => { for (const cid of events.keys()) drawMarker(cid); });
  for (const cid of events.keys()) drawMarker(cid);
  panel.dataset.waveform = 'true';
}

// --- list, tally, selection --------------------------------------------------------------------

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; render(); });
}

function render() {
  const counts = new Map(data.codes.map((c) => [c.code, 0]));
  for (const e of events.values()) counts.set(e.code, (counts.get(e.code) || 0) + 1);
  panel.querySelectorAll('[data-tally]').forEach((cell) => { cell.textContent = String(counts.get(cell.dataset.tally) || 0); });
  $('#tally-total').textContent = String(events.size);
  // A coding sheet's progress on the page: its events coded (rating/rate.html, progress_of).
  document.querySelectorAll('[data-events-for]').forEach((counter) => {
    const mine = new Set(counter.dataset.codes.split(' '));
    const n = [...events.values()].filter((e) => mine.has(e.code)).length;
    counter.textContent = `${n} ${n === 1 ? 'event' : 'events'} coded`;
  });
  const sorted = [...events.entries()].sort((a, b) => a[1].time_s - b[1].time_s || a[1].code.localeCompare(b[1].code));
  renderList(sorted);
  panel.querySelectorAll('.code-button').forEach((b) => b.classList.toggle('open', openSegment(b.dataset.code) !== null));
  renderTools();
}

// The list's items are updated in place, and moved only when the order changes, and an item is
// chosen when it is pressed: pressing it blurs the note field, whose change is saved and
// re-rendered at once; a click released over an element the render replaced or moved is
// dropped by the browser (seen in CI under load). A click (keyboard, screen reader) chooses too.
function renderList(sorted) {
  const list = $('#event-list');
  const existing = new Map([...list.children].map((li) => [li.dataset.cid, li]));
  const items = sorted.map(([cid, e]) => fillItem(existing.get(cid) || newItem(cid), cid, e));
  const unchanged = items.length === list.children.length && items.every((li, i) => list.children[i] === li);
  if (!unchanged) list.replaceChildren(...items);
}

function newItem(cid) {
  const li = document.createElement('li');
  li.dataset.cid = cid;
  for (const name of ['t', 'label', 'note muted']) {
    const span = document.createElement('span');
    span.className = name;
    li.append(span);
  }
  const choose = () => {
    const e = events.get(cid);
    if (!e) return;
    audio.currentTime = e.time_s;
    select(cid);
  };
  li.addEventListener('pointerdown', choose);
  li.addEventListener('click', choose);
  return li;
}

function fillItem(li, cid, e) {
  li.setAttribute('aria-selected', String(cid === selected));
  const [t, label, note] = li.children;
  t.textContent = e.end_s === null ? formatTime(e.time_s) : `${formatTime(e.time_s)}–${formatTime(e.end_s)}`;
  const def = codes.get(e.code);
  label.textContent = def ? `${def.label} (${e.code})` : e.code;
  if (def && def.segment && e.end_s === null) label.textContent += ' — open';
  note.textContent = e.note || '';
  note.hidden = !e.note;
  return li;
}

function select(cid) {
  const previous = selected;
  selected = cid;
  if (previous && previous !== cid) drawMarker(previous);
  if (cid) drawMarker(cid);
  scheduleRender();
}

function renderTools() {
  const tools = $('#event-tools');
  if (!tools) return;
  const e = selected ? events.get(selected) : null;
  tools.hidden = !e;
  if (!e) return;
  $('#selected-label').textContent = `Selected: ${e.code} at ${formatTime(e.time_s)}`;
  const recodeSelect = $('#recode');
  const segment = codes.get(e.code)?.segment || false;
  const options = data.codes.filter((c) => c.segment === segment).map((c) => {
    const option = document.createElement('option');
    option.value = c.code;
    option.textContent = `${c.code} — ${c.label}`;
    option.selected = c.code === e.code;
    return option;
  });
  recodeSelect.replaceChildren(...options);
  const note = $('#event-note');
  if (note.dataset.cid !== selected || document.activeElement !== note) {
    note.value = e.note; // never while the coder is typing in it
    note.dataset.cid = selected;
  }
}

// --- keys and buttons --------------------------------------------------------------------------

function setMode(on) {
  codingMode = on;
  const button = $('#coding-mode');
  button.setAttribute('aria-pressed', String(on));
  button.textContent = on ? 'Coding keys: on' : 'Coding keys: off';
}

function onKey(event) {
  if (!codingMode || isTypingTarget(event.target)) return;
  const mod = event.ctrlKey || event.metaKey;
  if (mod && !event.altKey && (event.key === 'z' || event.key === 'Z') && !event.shiftKey) {
    event.preventDefault();
    event.stopImmediatePropagation();
    undo();
    return;
  }
  if (mod || event.altKey) return;
  if ((event.key === 'Delete' || event.key === 'Backspace') && selected) {
    event.preventDefault();
    event.stopImmediatePropagation();
    remove(selected);
    return;
  }
  const def = byKey.get(event.key.toLowerCase());
  if (!def || event.repeat) return;
  event.preventDefault();
  event.stopImmediatePropagation();
  record(def.code);
}

function setupEditing() {
  $('#coding-mode').addEventListener('click', () => {
    setMode(!codingMode);
    // Focus moves to the panel when coding starts, so that Space plays and pauses the audio
    // (the page's key) instead of pressing this button again and turning coding off.
    if (codingMode) panel.focus({ preventScroll: true });
  });
  panel.querySelectorAll('.code-button').forEach((b) => b.addEventListener('click', () => record(b.dataset.code)));
  $('#recode').addEventListener('change', (e) => { if (selected) recode(selected, e.target.value); });
  // A note is saved when the field changes (Enter, or focus leaves it), for the event it was
  // typed for even when another event is being selected.
  $('#event-note').addEventListener('change', (e) => {
    const cid = e.target.dataset.cid;
    if (cid && events.has(cid)) annotate(cid, e.target.value.trim());
  });
  $('#move-back').addEventListener('click', () => selected && move(selected, -1));
  $('#move-on').addEventListener('click', () => selected && move(selected, 1));
  $('#delete-event').addEventListener('click', () => selected && remove(selected));
  window.addEventListener('keydown', onKey, true); // before the page's own keys, in coding mode only
}

// Changes left unsent by a previous visit (kept in localStorage by the autosave queue).
function applyRestored() {
  for (const { change } of saver.restored()) {
    if (!change.op || !change.op.startsWith('event.')) continue;
    const cid = change.client_id;
    const e = events.get(cid);
    if (change.op === 'event.add') events.set(cid, plain(change));
    else if (change.op === 'event.delete') events.delete(cid);
    else if (change.op === 'event.move' && e) events.set(cid, { ...e, time_s: change.time_s, end_s: change.end_s ?? null });
    else if (change.op === 'event.recode' && e) events.set(cid, { ...e, code: change.code });
  }
}

function start(api) {
  saver = panel.dataset.editable === 'true' && api ? api.saver : null;
  if (saver) {
    for (const e of data.events) saver.server.set(`event:${e.client_id}`, plain(e));
    applyRestored();
    setupEditing();
  }
  render();
  setupWaveform().finally(() => { panel.dataset.ready = 'true'; });
}

if (window.raterRating) start(window.raterRating);
else document.addEventListener('rating:ready', () => start(window.raterRating), { once: true });
