// The page of `patchscaler serve`: uploads, follows each job's server-sent
// events, shows the before/after slider. Plain JS, no build step.
'use strict';

const $ = (sel, el = document) => el.querySelector(sel);
let info = null;

// A server reachable beyond this machine prints its page's URL with
// ?token=...; every API call carries it: fetches in a header, and what
// cannot send headers (EventSource, <img>, the download link) in the URL.
const token = new URLSearchParams(location.search).get('token');
const api = (path) => (token ? `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}` : path);
const call = (path, init = {}) => fetch(path, token
  ? { ...init, headers: { ...(init.headers || {}), Authorization: `Bearer ${token}` } }
  : init);

const mib = (b) => {
  const m = b / 1048576;
  return m >= 10 || Number.isInteger(m) ? m.toFixed(0) : m.toFixed(1);
};

async function loadInfo() {
  try {
    const r = await call('/api/info');
    info = await r.json();
  } catch (e) {
    $('#queue').textContent = 'cannot reach the server';
    return;
  }
  $('#model').textContent = 'model: ' + info.model;
  const dev = $('#device');
  dev.textContent = '';
  for (const d of info.devices) {
    const o = document.createElement('option');
    o.value = d;
    o.textContent = d;
    dev.append(o);
  }
  if (info.devices.includes('cuda')) dev.value = 'cuda';
  $('#limits').textContent = `up to ${mib(info.max_upload_bytes)} MiB per file and ` +
    `${info.max_input_pixels_x4.toLocaleString('en')} pixels at x4`;
  showQueue(info.queue);
}

function showQueue(queue) {
  const parts = (queue || []).map((q) =>
    `${q.device}: ${q.running ? 'busy' : 'idle'}${q.waiting ? `, ${q.waiting} waiting` : ''}`);
  $('#queue').textContent = parts.join(' · ');
}

async function refreshQueue() {
  try {
    const r = await call('/api/info');
    if (r.ok) showQueue((await r.json()).queue);
  } catch (e) { /* the next refresh tries again */ }
}

function newCard(name) {
  const card = $('#job-template').content.firstElementChild.cloneNode(true);
  $('.name', card).textContent = name;
  $('.remove', card).addEventListener('click', () => {
    if (card.es) card.es.close();
    if (card.jobId) call(`/api/jobs/${card.jobId}`, { method: 'DELETE' }).catch(() => {});
    card.remove();
  });
  $('#jobs').prepend(card);
  return card;
}

function setState(card, state, text) {
  card.dataset.state = state;
  $('.state', card).textContent = text;
}

function fail(card, message) {
  setState(card, 'failed', 'failed');
  const p = $('.error', card);
  p.textContent = message;
  p.hidden = false;
}

async function submit(file, hr) {
  const card = newCard(file.name);
  const limit = info ? info.max_upload_bytes : Infinity;
  for (const f of [file, hr]) {
    if (f && f.size > limit) {
      fail(card, `${f.name}: larger than the upload limit of ${mib(limit)} MiB`);
      return;
    }
  }
  const fd = new FormData();
  for (const k of ['preset', 'scale', 'seed', 'device']) fd.append(k, $('#' + k).value);
  fd.append('image', file, file.name);
  if (hr) fd.append('hr', hr, hr.name);
  setState(card, 'uploading', 'uploading…');
  let r;
  try {
    r = await call('/api/jobs', { method: 'POST', body: fd });
  } catch (e) {
    fail(card, 'cannot reach the server');
    return;
  }
  let body = {};
  try { body = await r.json(); } catch (e) { /* no JSON body */ }
  if (!r.ok) {
    fail(card, body.error || `the server answered ${r.status}`);
    return;
  }
  follow(card, body.id);
}

function follow(card, id) {
  card.jobId = id;
  const es = new EventSource(api(`/api/jobs/${id}/events`));
  card.es = es;
  es.onmessage = (m) => {
    const e = JSON.parse(m.data);
    update(card, id, e);
    if (e.state === 'done' || e.state === 'failed') es.close();
  };
  es.onerror = () => {
    if (card.dataset.state !== 'done' && card.dataset.state !== 'failed') {
      es.close();
      fail(card, 'lost the connection to the server (the job was dropped)');
    }
  };
}

function update(card, id, e) {
  if (card.dataset.state !== e.state) refreshQueue();
  const bar = $('.bar', card);
  const fill = $('.fill', bar);
  const secs = (s) => `${Number(s).toFixed(1)} s`;
  switch (e.state) {
    case 'queued':
      setState(card, 'queued', `queued on ${e.device}: ` +
        (e.ahead === 0 ? 'next' : `${e.ahead} job${e.ahead > 1 ? 's' : ''} ahead`));
      bar.classList.remove('busy');
      fill.style.width = '0';
      break;
    case 'loading':
      setState(card, 'loading', `loading… ${secs(e.elapsed_s)}`);
      bar.classList.add('busy');
      break;
    case 'running':
      if (e.progress && e.progress.steps > 0) {
        setState(card, 'running',
          `${e.progress.stage} ${e.progress.step}/${e.progress.steps} · ${secs(e.elapsed_s)}`);
        bar.classList.remove('busy');
        fill.style.width = `${(100 * e.progress.step) / e.progress.steps}%`;
      } else {
        setState(card, 'running', `running… ${secs(e.elapsed_s)}`);
        bar.classList.add('busy');
      }
      break;
    case 'done':
      setState(card, 'done', `done in ${secs(e.elapsed_s)} · ${e.width}×${e.height}`);
      showResult(card, id, e);
      break;
    case 'failed':
      fail(card, e.error);
      break;
  }
}

function showResult(card, id, e) {
  const base = `/api/jobs/${id}/`;
  const box = $('.result', card);
  const cmp = $('.compare', card);
  const after = $('.after', card);
  const before = $('.before', card);
  const overlay = $('.overlay', card);
  const divider = $('.divider', card);
  const slider = $('.slider', card);
  const against = $('.against', card);
  // Small results are shown enlarged (pixelated) so that they can be compared.
  cmp.style.width = `${Math.max(e.width, Math.min(512, e.width * 4))}px`;
  after.style.width = '100%';
  after.onload = () => { card.dataset.loaded = '1'; };
  after.src = api(base + 'result.png');
  before.src = api(base + 'bicubic.png');
  overlay.style.backgroundImage = `url("${api(base + 'qmap.png')}")`;
  if (e.has_hr) {
    const o = document.createElement('option');
    o.value = 'hr';
    o.textContent = 'HR';
    against.append(o);
  }
  against.addEventListener('change', () => {
    before.src = api(base + (against.value === 'hr' ? 'hr.png' : 'bicubic.png'));
    $('.tag.left', card).textContent = against.value === 'hr' ? 'HR' : 'bicubic';
  });
  $('.groups', card).addEventListener('change', (ev) => { overlay.hidden = !ev.target.checked; });
  const move = () => {
    const v = slider.value;
    before.style.clipPath = `inset(0 ${100 - v}% 0 0)`;
    divider.style.left = `${v}%`;
  };
  slider.addEventListener('input', move);
  move();
  const dl = $('.download', card);
  dl.href = api(base + 'result.png?download=1');
  $('.summary', card).textContent = e.summary;
  box.hidden = false;
}

function takeFiles(list) {
  const files = Array.from(list || []);
  if (!files.length) return;
  const hrInput = $('#hr');
  // The HR reference goes with a single image only.
  const hr = files.length === 1 && hrInput.files.length ? hrInput.files[0] : null;
  if (hr) hrInput.value = '';
  for (const f of files) submit(f, hr);
}

document.addEventListener('DOMContentLoaded', () => {
  loadInfo();
  setInterval(refreshQueue, 3000);
  const drop = $('#drop');
  const input = $('#file');
  input.addEventListener('change', () => {
    takeFiles(input.files);
    input.value = '';
  });
  for (const ev of ['dragenter', 'dragover']) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add('over'); });
  }
  for (const ev of ['dragleave', 'drop']) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove('over'); });
  }
  drop.addEventListener('drop', (e) => takeFiles(e.dataTransfer.files));
  drop.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); input.click(); }
  });
});
