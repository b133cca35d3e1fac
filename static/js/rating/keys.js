// Keyboard-first scoring on the rating page, for any instrument.
//
// Items are found by their wrapper's `data-item` attribute and scored through their radio inputs,
// whatever the values: numbers are typed as themselves (several digits, or "-" then digits, within
// a short pause), an item whose choices are not numbers takes 1, 2, 3… for its first, second, third
// choice, and `x` chooses the radio whose value is "na" (not applicable). The player's keys (Space,
// ←/→, [ ]) and the note key (n) belong to player.js and page.js; this file never uses them.
// Nothing here fires in a text field, a select, or while a dialog other than the key sheet is open.
import { isTypingTarget } from './player.js';

export const KEYS = {
  next: ['j', 'ArrowDown'],
  previous: ['k', 'ArrowUp'],
  notApplicable: ['x'],
  description: ['d'],
  firstMissing: ['m'],
  finish: ['s'],
  sheet: ['?'],
};
const NA_VALUE = 'na';
const DIGIT_PAUSE_MS = 900; // digits typed within this pause form one number (10, -2)

const isNumber = (value) => /^-?\d+$/.test(value);

/** The item's answer inputs: its radios, or (other kinds) its text, number or select fields. */
function fields(item) {
  return [...item.querySelectorAll('input:not([type=hidden]), select, textarea')];
}

/** An item counts as scored when a radio is chosen or a field holds a value. */
export function isScored(item) {
  return fields(item).some((f) => (f.type === 'radio' || f.type === 'checkbox' ? f.checked : f.value.trim() !== ''));
}

export function isRequired(item) {
  return item.dataset.required === 'true' || Boolean(item.querySelector('[required]'));
}

/** The radio a typed number (or N/A) stands for in this item, or null. */
export function radioFor(item, typed) {
  const radios = [...item.querySelectorAll('input[type=radio]')];
  if (typed === NA_VALUE) return radios.find((r) => r.value.toLowerCase() === NA_VALUE) || null;
  const choices = radios.filter((r) => r.value.toLowerCase() !== NA_VALUE);
  if (choices.length && choices.every((r) => isNumber(r.value))) {
    return choices.find((r) => Number(r.value) === Number(typed)) || null;
  }
  const n = Number(typed); // categories: 1 = the first choice … 9, 0 = the tenth
  return choices[(n === 0 ? 10 : n) - 1] || null;
}

export function setupKeys({ root, editable, onMessage = () => {} }) {
  const items = [...root.querySelectorAll('[data-item]')];
  const sheet = document.getElementById('keys-sheet');
  let current = null;
  let reached = -1; // the furthest item the rater has been on: unscored ones above it are marked
  let typed = '';
  let typedAt = 0;
  let typedItem = null;

  const setCurrent = (item) => {
    if (current === item) return;
    if (current) current.classList.remove('is-current');
    current = item;
    if (!item) return;
    item.classList.add('is-current');
    reached = Math.max(reached, items.indexOf(item));
    markPassed();
  };

  const focusItem = (item) => {
    if (!item) return;
    const target = item.querySelector('input[type=radio]:checked') || item.querySelector('input:not([type=hidden]), select, textarea');
    if (target && !target.disabled) target.focus({ preventScroll: true });
    else { item.tabIndex = -1; item.focus({ preventScroll: true }); }
    setCurrent(item);
    item.scrollIntoView({ block: 'nearest' });
  };

  const move = (step) => {
    const at = current ? items.indexOf(current) : -1;
    const next = at < 0 ? (step > 0 ? 0 : items.length - 1) : Math.min(items.length - 1, Math.max(0, at + step));
    focusItem(items[next]);
  };

  function firstMissing() {
    return items.find((item) => isRequired(item) && !isScored(item)) || null;
  }

  function markPassed() {
    items.forEach((item, i) => {
      if (i < reached && isRequired(item) && !isScored(item)) item.classList.add('missing');
    });
  }

  function updateCounts() {
    root.querySelectorAll('[data-count-for]').forEach((counter) => {
      const mine = items.filter((item) => item.closest('[data-instrument]')?.dataset.instrument === counter.dataset.countFor);
      const done = mine.filter(isScored).length;
      counter.textContent = `${done} of ${mine.length} scored`;
      counter.classList.toggle('complete', done === mine.length);
    });
    const missingButton = document.getElementById('first-missing');
    if (missingButton) missingButton.hidden = !editable || !firstMissing();
  }

  const choose = (item, radio) => {
    if (!radio || radio.disabled) return;
    if (!radio.checked) {
      radio.checked = true;
      radio.dispatchEvent(new Event('change', { bubbles: true }));
    }
    radio.focus({ preventScroll: true });
    item.classList.remove('missing');
  };

  const typeDigit = (item, key) => {
    const now = Date.now();
    const continues = typedItem === item && now - typedAt < DIGIT_PAUSE_MS;
    typed = continues ? typed + key : key;
    typedAt = now;
    typedItem = item;
    if (typed === '-') return;
    let radio = radioFor(item, typed);
    if (!radio && continues && key !== '-') { typed = key; radio = radioFor(item, typed); }
    if (radio) choose(item, radio);
    else onMessage(`${item.dataset.item}: no choice ${typed}`);
  };

  const goToFinish = () => {
    const button = document.getElementById('submit-open');
    if (button) { button.focus(); button.scrollIntoView({ block: 'nearest' }); }
  };

  const jumpToMissing = () => {
    const item = firstMissing();
    if (item) { item.classList.add('missing'); focusItem(item); } else goToFinish();
  };

  const toggleDescription = (item) => {
    const details = item && item.querySelector('details');
    if (details) details.open = !details.open;
  };

  /** Keys act on the current item when focus is in it, on the page, or on the player. */
  const mayActOnItem = (target) => !target || target === document.body || target === document.documentElement
    || Boolean(target.closest('[data-item], .player'));

  document.addEventListener('keydown', (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    const { target } = event;
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    const item = target.closest && target.closest('[data-item]');
    if (isTypingTarget(target)) {
      // Esc leaves a text field (a note, a text item) for the item the rater was on.
      if (key !== 'Escape' || target.closest('dialog')) return;
      if (item) { event.preventDefault(); item.tabIndex = -1; item.focus(); } else if (current) { event.preventDefault(); focusItem(current); }
      return;
    }
    if (KEYS.sheet.includes(key) && sheet) {
      event.preventDefault();
      if (sheet.open) sheet.close(); else if (!document.querySelector('dialog[open]')) sheet.showModal();
      return;
    }
    if (document.querySelector('dialog[open]')) return; // a dialog owns the keyboard
    const arrow = key === 'ArrowDown' || key === 'ArrowUp';
    if (arrow && !mayActOnItem(target)) return;
    if (KEYS.next.includes(key)) { event.preventDefault(); move(1); return; }
    if (KEYS.previous.includes(key)) { event.preventDefault(); move(-1); return; }
    if (KEYS.firstMissing.includes(key) && editable) { event.preventDefault(); jumpToMissing(); return; }
    if (KEYS.finish.includes(key) && editable) { event.preventDefault(); goToFinish(); return; }
    const on = item || (mayActOnItem(target) ? current : null);
    if (!on) return;
    if (KEYS.description.includes(key)) { event.preventDefault(); toggleDescription(on); return; }
    if (!editable) return;
    if (/^[0-9]$/.test(key) || key === '-') { event.preventDefault(); typeDigit(on, key); return; }
    if (KEYS.notApplicable.includes(key)) {
      event.preventDefault();
      const radio = radioFor(on, NA_VALUE);
      if (radio) choose(on, radio); else onMessage(`${on.dataset.item} cannot be marked not applicable`);
    }
  });

  root.addEventListener('focusin', (event) => {
    const item = event.target.closest('[data-item]');
    if (item) setCurrent(item);
  });
  root.addEventListener('change', updateCounts);
  root.addEventListener('input', updateCounts);
  document.getElementById('first-missing')?.addEventListener('click', jumpToMissing);
  document.getElementById('keys-open')?.addEventListener('click', () => sheet && sheet.showModal());
  document.getElementById('keys-close')?.addEventListener('click', () => sheet && sheet.close());
  updateCounts();

  return { updateCounts, firstMissing, focusItem, items };
}
