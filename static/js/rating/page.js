// The rating page: scores, timestamped notes, homework log, difficulties, active time, submit.
// Every change goes through the Autosave queue (autosave.js); the player lives in player.js.
import { Autosave } from './autosave.js';
import { setupKeys } from './keys.js';
import { formatTime, isTypingTarget, setupPlayer } from './player.js';

const ACTIVE_WINDOW_MS = 60000;
const page = document.getElementById('rating-page');
const state = JSON.parse(document.getElementById('rating-state').textContent);
const editable = page.dataset.editable === 'true';
const $ = (selector, root = document) => root.querySelector(selector);

const notes = new Map(state.notes.map((n) => [n.client_id, { seconds: n.seconds, text: n.text }]));
const homework = new Map(state.homework.map((h) => [h.client_id, {
  homework_type: h.homework_type, completion: h.completion, description: h.description,
}]));

function uuid() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function serverState() {
  const server = { difficulties: [...state.difficulties].sort() };
  for (const [code, value] of Object.entries(state.scores)) server[`score:${code}`] = value;
  for (const [cid, n] of notes) server[`note:${cid}`] = { ...n };
  for (const [cid, h] of homework) server[`homework:${cid}`] = { ...h };
  return server;
}

// --- save indicator and messages -----------------------------------------------------------
const indicator = $('#save-state');
const banner = $('#banner');
const STATUS_TEXT = {
  saved: 'All changes saved',
  saving: 'Saving…',
  conflict: 'Not saved — changed in another tab',
  locked: 'Locked — not saved',
  error: 'Not saved — see the message above',
};

function showStatus(status, detail = {}) {
  if (!indicator) return;
  indicator.dataset.state = status;
  indicator.textContent = status === 'retrying'
    ? `Not saved — retrying in ${Math.round(detail.delay / 1000)} s`
    : STATUS_TEXT[status];
}

// Messages appear as a toast in view wherever the rater has scrolled to (role=alert announces
// them); a conflict offers Reload, anything else can be dismissed.
function showBanner(kind, message) {
  banner.hidden = false;
  banner.className = `banner toast ${kind}`;
  const text = document.createElement('span');
  text.className = 'toast-text';
  text.textContent = message;
  const action = document.createElement('button');
  action.type = 'button';
  if (kind === 'conflict') {
    action.textContent = 'Reload the page';
    action.addEventListener('click', () => { saver.discard(); window.location.reload(); });
  } else {
    action.textContent = 'Dismiss';
    action.addEventListener('click', () => { banner.hidden = true; });
  }
  banner.replaceChildren(text, ' ', action);
}

const saver = editable ? new Autosave({
  url: state.urls.autosave,
  storageKey: `rater.autosave.v1.${state.user_id}.${state.rating_id}`,
  version: state.version,
  csrfToken: $('meta[name=csrf-token]').content,
  server: serverState(),
  onStatus: showStatus,
  onBanner: showBanner,
}) : null;

// --- restore unsent changes from a previous visit ------------------------------------------
let startAt = state.position || 0;
const restored = saver ? saver.restored() : [];
for (const { change } of restored) {
  if (change.op === 'score') state.scores[change.item] = change.value;
  else if (change.op === 'note.put') notes.set(change.client_id, { seconds: change.seconds, text: change.text });
  else if (change.op === 'note.delete') notes.delete(change.client_id);
  else if (change.op === 'homework.put') homework.set(change.client_id, { homework_type: change.homework_type, completion: change.completion, description: change.description });
  else if (change.op === 'homework.delete') homework.delete(change.client_id);
  else if (change.op === 'difficulties') state.difficulties = change.values;
  else if (change.op === 'position') startAt = change.seconds;
}

// --- player ----------------------------------------------------------------------------------
const player = setupPlayer({
  root: page,
  startAt,
  onPosition: (seconds) => saver && saver.queue('position', { op: 'position', seconds }),
});

// --- scores: one answer per item, by its kind (templates/rating/_item.html) -------------------
// An answer is a score (ordinal, count), a category code (nominal; a list when several may be
// chosen), a text, or {not_applicable: true}; the input with value "na" is the N/A choice.
const scoring = $('#scoring');
const NA = { not_applicable: true };
const isNA = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);
const fieldOf = (code) => scoring.querySelector(`fieldset[data-item="${CSS.escape(code)}"]`);
const isNAInput = (input) => input.value === 'na' && (input.type === 'radio' || input.type === 'checkbox');

function showAnswer(code, value) {
  const field = fieldOf(code);
  if (!field) return;
  const na = isNA(value);
  field.querySelectorAll('input, textarea').forEach((input) => {
    if (isNAInput(input)) input.checked = na;
    else if (input.type === 'radio') input.checked = !na && value !== null && value !== undefined && String(value) === input.value;
    else if (input.type === 'checkbox') input.checked = !na && Array.isArray(value) && value.includes(input.value);
    else input.value = na || value === null || value === undefined ? '' : String(value);
  });
}

// The answer a change makes (undefined: nothing to save yet, e.g. a half-typed number).
function readAnswer(field, input) {
  const others = [...field.querySelectorAll('input, textarea')].filter((el) => el !== input);
  if (isNAInput(input)) {
    if (!input.checked) return input.type === 'radio' ? undefined : null;
    others.forEach((el) => { if (el.type === 'checkbox' || el.type === 'radio') el.checked = false; else el.value = ''; });
    return NA;
  }
  const na = field.querySelector('input[value="na"]');
  if (na && na.type === 'checkbox') na.checked = false;
  if (input.type === 'radio') return field.dataset.kind === 'ordinal' ? Number(input.value) : input.value;
  if (input.type === 'checkbox') {
    const chosen = [...field.querySelectorAll('input[type=checkbox]:checked')].map((el) => el.value).filter((v) => v !== 'na');
    return chosen.length ? chosen : null;
  }
  if (input.type === 'number') {
    if (input.value.trim() === '') return null;
    const n = Number(input.value);
    return Number.isInteger(n) && n >= 0 ? n : undefined;
  }
  return input.value === '' ? null : input.value;
}

for (const [code, value] of Object.entries(state.scores)) showAnswer(code, value);

function onAnswer(event) {
  const input = event.target;
  const field = input.closest('fieldset[data-item]');
  if (!saver || !field) return;
  if (event.type === 'input' && (input.type === 'radio' || input.type === 'checkbox')) return;
  const value = readAnswer(field, input);
  if (value === undefined) return;
  const code = field.dataset.item;
  state.scores[code] = value;
  field.classList.remove('missing');
  saver.queue(`score:${code}`, { op: 'score', item: code, value }, value);
}
scoring.addEventListener('change', onAnswer);
scoring.addEventListener('input', onAnswer);

// --- notes -----------------------------------------------------------------------------------
const noteList = $('#note-list');
const noteText = $('#note-text');
const noteAt = $('#note-at');
let noteTime = null;

function queueNote(cid) {
  const n = notes.get(cid);
  saver.queue(`note:${cid}`, { op: 'note.put', client_id: cid, seconds: n.seconds, text: n.text }, { ...n });
}

function renderNotes() {
  const sorted = [...notes.entries()].sort((a, b) => a[1].seconds - b[1].seconds);
  noteList.replaceChildren(...sorted.map(([cid, n]) => noteItem(cid, n)));
  $('#notes-empty').hidden = sorted.length > 0;
}

function noteItem(cid, n) {
  const li = document.createElement('li');
  li.className = 'note';
  li.dataset.cid = cid;
  const time = document.createElement('button');
  time.type = 'button';
  time.className = 'note-time';
  time.textContent = formatTime(n.seconds);
  time.setAttribute('aria-label', `Play from ${formatTime(n.seconds)}`);
  time.addEventListener('click', () => player.seekTo(n.seconds));
  li.append(time);
  if (!saver) {
    const p = document.createElement('p');
    p.className = 'note-text';
    p.textContent = n.text;
    li.append(p);
    return li;
  }
  const text = document.createElement('textarea');
  text.className = 'note-text';
  text.rows = 1;
  text.value = n.text;
  text.setAttribute('aria-label', `Note at ${formatTime(n.seconds)}`);
  text.addEventListener('input', () => { n.text = text.value; queueNote(cid); });
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.className = 'note-delete';
  remove.textContent = 'Delete';
  remove.setAttribute('aria-label', `Delete note at ${formatTime(n.seconds)}`);
  remove.addEventListener('click', () => {
    notes.delete(cid);
    saver.queue(`note:${cid}`, { op: 'note.delete', client_id: cid }, null);
    renderNotes();
  });
  li.append(text, remove);
  return li;
}

function captureNoteTime() {
  noteTime = Math.round(player.currentTime() * 10) / 10;
  noteAt.textContent = formatTime(noteTime);
}

function addNote() {
  const text = noteText.value.trim();
  if (!text) { noteText.focus(); return; }
  if (noteTime === null) captureNoteTime();
  const cid = uuid();
  notes.set(cid, { seconds: noteTime, text });
  queueNote(cid);
  noteText.value = '';
  noteTime = null;
  renderNotes();
}

if (saver) {
  $('#note-add').addEventListener('click', addNote);
  noteText.addEventListener('focus', () => { if (!noteText.value) captureNoteTime(); });
  noteText.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey) { event.preventDefault(); addNote(); }
  });
  player.audio.addEventListener('timeupdate', () => {
    if (document.activeElement !== noteText && !noteText.value) noteAt.textContent = formatTime(player.currentTime());
  });
  document.addEventListener('keydown', (event) => {
    if ((event.key === 'n' || event.key === 'N') && !event.ctrlKey && !event.metaKey && !event.altKey && !isTypingTarget(event.target)) {
      event.preventDefault();
      captureNoteTime();
      noteText.focus({ preventScroll: false });
    }
  });
}
renderNotes();

// --- homework log: reported as completed ------------------------------------------------------
const hwList = $('#hw-list');
const COMPLETION = [['', 'completion?'], ['yes', 'yes'], ['partly', 'partly'], ['no', 'no']];

function select(options, value, label) {
  const el = document.createElement('select');
  el.setAttribute('aria-label', label);
  for (const [v, text] of options) {
    const o = document.createElement('option');
    o.value = v; o.textContent = text; o.selected = (value ?? '') === v;
    el.append(o);
  }
  el.disabled = !saver;
  return el;
}

function homeworkItem(cid, entry, index) {
  const row = document.createElement('div');
  row.className = 'hw-entry';
  row.dataset.cid = cid;
  const n = index + 1;
  const type = select([['', 'choose…'], ...state.homework_types.map((t) => [t, t])], entry.homework_type, `Homework ${n}: type`);
  type.required = true;
  const typeMissing = () => type.setAttribute('aria-invalid', String(!type.value));
  typeMissing();
  const completion = select(COMPLETION, entry.completion, `Homework ${n}: completed?`);
  const text = document.createElement('input');
  text.type = 'text';
  text.value = entry.description;
  text.placeholder = 'What was the homework?';
  text.setAttribute('aria-label', `Homework ${n}: description`);
  text.readOnly = !saver;
  row.append(type, completion, text);
  if (!saver) return row;
  const update = () => {
    entry.homework_type = type.value;
    entry.completion = completion.value || null;
    entry.description = text.value;
    typeMissing();
    // Never saved with a type the rater did not choose: it is kept on the page until then.
    if (entry.homework_type) saver.queue(`homework:${cid}`, { op: 'homework.put', client_id: cid, ...entry }, { ...entry });
  };
  type.addEventListener('change', update);
  completion.addEventListener('change', update);
  text.addEventListener('input', update);
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.textContent = 'Remove';
  remove.setAttribute('aria-label', `Remove homework ${n}`);
  remove.addEventListener('click', () => {
    homework.delete(cid);
    if (saver.isKnownToServer(`homework:${cid}`) || saver.pending.has(`homework:${cid}`)) saver.queue(`homework:${cid}`, { op: 'homework.delete', client_id: cid }, null);
    renderHomework();
  });
  row.append(remove);
  return row;
}

function renderHomework() {
  const rows = [...homework.entries()].map(([cid, e], i) => homeworkItem(cid, e, i));
  if (!rows.length) {
    const p = document.createElement('p');
    p.className = 'muted';
    p.textContent = 'No homework entered.';
    rows.push(p);
  }
  hwList.replaceChildren(...rows);
}

if (saver) {
  $('#hw-add').addEventListener('click', () => {
    const cid = uuid();
    homework.set(cid, { homework_type: '', completion: null, description: '' });
    renderHomework();
    hwList.querySelector(`[data-cid="${cid}"] select`).focus();
  });
}
renderHomework();

// --- difficulties ---------------------------------------------------------------------------
const difficulties = $('#difficulties');
difficulties.querySelectorAll('input').forEach((box) => { box.checked = state.difficulties.includes(box.value); });
difficulties.addEventListener('change', () => {
  if (!saver) return;
  const values = [...difficulties.querySelectorAll('input:checked')].map((b) => b.value).sort();
  saver.queue('difficulties', { op: 'difficulties', values }, values);
});

// --- active time: visible page and recent interaction (or audio playing) ----------------------
let lastInteraction = Date.now();
['pointerdown', 'keydown', 'input', 'wheel', 'scroll'].forEach((type) => {
  window.addEventListener(type, () => { lastInteraction = Date.now(); }, { passive: true, capture: true });
});
if (saver) {
  let sinceFlush = 0;
  setInterval(() => {
    const recent = Date.now() - lastInteraction < ACTIVE_WINDOW_MS || player.isPlaying();
    if (document.visibilityState !== 'visible' || !recent) return;
    saver.addActive(1);
    sinceFlush += 1;
    if (sinceFlush >= 30 && !saver.hasUnsent()) { sinceFlush = 0; saver.flush(); }
  }, 1000);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') saver.flush({ keepalive: true });
  });
  window.addEventListener('online', () => saver.retryNow());
  window.addEventListener('beforeunload', (event) => {
    if (saver.pending.size > 0) saver.persist(); // kept in localStorage; restored on return
  });
  if (restored.length) saver.schedule(0);
}

// --- submit ---------------------------------------------------------------------------------
const missingBox = $('#missing');
const dialog = $('#submit-dialog');

function missingItems() {
  const answered = (code) => state.scores[code] !== undefined && state.scores[code] !== null;
  return state.items.filter((item) => item.required && !answered(item.code));
}

// A homework entry whose type was never chosen is not saved: name it before submitting.
function untypedHomework() {
  return [...hwList.querySelectorAll('.hw-entry')].map((row) => row.querySelector('select')).filter((type) => !type.value);
}

async function waitUntilSaved(timeoutMs = 8000) {
  const until = Date.now() + timeoutMs;
  saver.flush();
  while (saver.hasUnsent() && Date.now() < until && !saver.stopped && !saver.blocked) {
    await new Promise((resolve) => setTimeout(resolve, 150));
    if (!saver.inFlight && saver.pending.size > 0) saver.flush();
  }
  return !saver.hasUnsent();
}

if (saver) {
  $('#submit-open').addEventListener('click', async () => {
    scoring.querySelectorAll('fieldset.missing').forEach((f) => f.classList.remove('missing'));
    const missing = missingItems();
    if (missing.length) {
      missingBox.hidden = false;
      missingBox.replaceChildren(`Please score every required item before submitting. Missing (${missing.length}): `);
      missing.forEach((item, i) => {
        const a = document.createElement('a');
        a.href = `#item-${item.code}`;
        a.textContent = `${item.code} (${item.label})`;
        missingBox.append(i ? ', ' : '', a);
        fieldOf(item.code).classList.add('missing');
      });
      return;
    }
    const untyped = untypedHomework();
    if (untyped.length) {
      missingBox.hidden = false;
      missingBox.textContent = `Choose the type of every homework entry (${untyped.length} without a type), or remove it.`;
      untyped[0].focus();
      return;
    }
    missingBox.hidden = true;
    if (!(await waitUntilSaved())) {
      missingBox.hidden = false;
      missingBox.textContent = 'Your latest changes are not saved yet. Wait until the indicator shows "All changes saved", then submit.';
      return;
    }
    dialog.showModal();
  });
  $('#submit-cancel').addEventListener('click', () => dialog.close());
}

setupKeys({ root: page, editable: Boolean(saver), onMessage: (text) => showHint(text) });

// Short answers to a key that does nothing here (a number the item does not offer…).
const hint = $('#keys-hint');
let hintTimer = null;
function showHint(text) {
  if (!hint) return;
  hint.textContent = text;
  hint.hidden = false;
  clearTimeout(hintTimer);
  hintTimer = setTimeout(() => { hint.hidden = true; }, 4000);
}

// The coding panel (static/js/coding.js) records events through this page's saver and player.
window.raterRating = { saver, player };
document.dispatchEvent(new CustomEvent('rating:ready'));
page.dataset.ready = 'true'; // for tests and assistive tooling: every handler is in place
