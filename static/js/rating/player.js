// Audio player for long recordings: play/pause, seek, jumps, speed and keyboard shortcuts.
// The browser streams the file with HTTP Range requests, so seeking far ahead is cheap.

export const SPEEDS = [0.75, 1, 1.25, 1.5, 1.75, 2];

export function formatTime(seconds) {
  const total = Math.max(0, Math.floor(seconds || 0));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

// Keys typed into text fields, selects and check boxes belong to them, never to the player.
// A score's radio buttons are not among them: on the rating page the digits choose a score
// (keys.js), so Space and ←/→ keep playing and seeking while an item has the focus.
export function isTypingTarget(target) {
  return Boolean(target && target.closest && target.closest('textarea, select, [contenteditable=""], [contenteditable="true"], input:not([type=range]):not([type=radio])'));
}

export function setupPlayer({ root, startAt = 0, onPosition = () => {}, onPlayState = () => {} }) {
  const audio = root.querySelector('#audio');
  const seek = root.querySelector('#seek');
  const elapsed = root.querySelector('#elapsed');
  const total = root.querySelector('#total');
  const play = root.querySelector('#play');
  const speed = root.querySelector('#speed');
  let dragging = false;
  let lastReported = -1;

  const duration = () => (Number.isFinite(audio.duration) ? audio.duration : Number(seek.max) || 0);
  const clamp = (t) => Math.min(Math.max(0, t), duration() || t);
  const report = () => {
    const t = Math.round(audio.currentTime * 10) / 10;
    if (t !== lastReported) { lastReported = t; onPosition(t); }
  };
  const seekTo = (t) => { audio.currentTime = clamp(t); render(); };
  const render = () => {
    elapsed.textContent = formatTime(audio.currentTime);
    if (!dragging) seek.value = String(audio.currentTime);
  };
  const toggle = () => (audio.paused ? audio.play().catch(() => {}) : audio.pause());
  // The menu shows the option of the same rate whatever its spelling ("2" vs "2.0").
  const setSpeed = (rate) => {
    audio.playbackRate = rate;
    const option = [...speed.options].find((o) => Math.abs(Number(o.value) - rate) < 1e-6);
    if (option) option.selected = true;
  };
  const stepSpeed = (dir) => {
    const i = SPEEDS.findIndex((r) => r >= audio.playbackRate - 1e-6);
    setSpeed(SPEEDS[Math.min(SPEEDS.length - 1, Math.max(0, (i < 0 ? 1 : i) + dir))]);
  };

  const onMetadata = () => {
    seek.max = String(duration());
    total.textContent = formatTime(duration());
    if (startAt > 0) audio.currentTime = clamp(startAt);
    lastReported = Math.round(audio.currentTime * 10) / 10;
    render();
  };
  // The metadata may have arrived before this module ran (a cached file): then resume at once.
  if (audio.readyState >= 1) onMetadata();
  else audio.addEventListener('loadedmetadata', onMetadata, { once: true });
  audio.addEventListener('timeupdate', render);
  audio.addEventListener('play', () => { play.textContent = 'Pause'; play.setAttribute('aria-label', 'Pause'); onPlayState(true); });
  audio.addEventListener('pause', () => { play.textContent = 'Play'; play.setAttribute('aria-label', 'Play'); report(); onPlayState(false); });
  audio.addEventListener('seeked', report);
  setInterval(() => { if (!audio.paused) report(); }, 10000);

  seek.addEventListener('input', () => { dragging = true; elapsed.textContent = formatTime(Number(seek.value)); });
  seek.addEventListener('change', () => { dragging = false; seekTo(Number(seek.value)); });
  play.addEventListener('click', toggle);
  root.querySelectorAll('[data-jump]').forEach((button) => {
    button.addEventListener('click', () => seekTo(audio.currentTime + Number(button.dataset.jump)));
  });
  speed.addEventListener('change', () => setSpeed(Number(speed.value)));
  // A mouse click should not leave focus on a player button, so that Space keeps playing/pausing.
  root.querySelectorAll('.controls button').forEach((b) => b.addEventListener('click', (e) => { if (e.detail > 0) b.blur(); }));

  document.addEventListener('keydown', (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || isTypingTarget(event.target)) return;
    const onRange = event.target === seek;
    const onButton = event.target.closest && event.target.closest('button, a, summary');
    if (event.key === ' ' && !onButton) { event.preventDefault(); toggle(); }
    else if ((event.key === 'ArrowLeft' || event.key === 'ArrowRight') && !onRange) {
      event.preventDefault();
      const step = event.shiftKey ? 30 : 5;
      seekTo(audio.currentTime + (event.key === 'ArrowLeft' ? -step : step));
    } else if (event.key === '[') { event.preventDefault(); stepSpeed(-1); }
    else if (event.key === ']') { event.preventDefault(); stepSpeed(1); }
  });

  return { audio, seekTo, currentTime: () => audio.currentTime, toggle, isPlaying: () => !audio.paused };
}
