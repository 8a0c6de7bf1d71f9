// The admin dashboard: log in, see tours on a map and in a table, read why a realtor was
// chosen, and watch it all change live.
import './style.css';
import { ApiError, all, call, follow, forget, login, token } from './api.js';
import { CellMap } from './map.js';

const $ = (id) => document.getElementById(id);

const tours = new Map(); // id -> tour (as `/tours` and the event stream give it)
let selected = null;
let cellMap = null;
let source = null;
let statsTimer = null;

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

const short = (id) => (id ? id.slice(0, 8) : '—');
const when = (t) => (t ? new Date(t).toISOString().replace('T', ' ').slice(0, 16) : '—');

function statusBadge(status) {
  return el('span', status, `badge status-${status}`);
}

function visible(tour) {
  const status = $('filter-status').value;
  const realtor = $('filter-realtor').value.trim().toLowerCase();
  return (!status || tour.status === status) && (!realtor || (tour.realtor_id ?? '').startsWith(realtor));
}

function renderTable() {
  const body = document.querySelector('#tours tbody');
  const rows = [...tours.values()]
    .filter(visible)
    .sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  body.replaceChildren(
    ...rows.map((tour) => {
      const row = el('tr');
      row.dataset.tourId = tour.id;
      row.dataset.status = tour.status;
      if (tour.id === selected) row.classList.add('selected');
      const cells = [
        el('td', short(tour.id), 'mono'),
        el('td'),
        el('td', short(tour.realtor_id), 'mono'),
        el('td', when(tour.start)),
        el('td', tour.listings?.length ?? 0),
        el('td', when(tour.created_at)),
      ];
      cells[1].append(statusBadge(tour.status));
      row.append(...cells);
      row.addEventListener('click', () => select(tour.id));
      return row;
    }),
  );
  $('tour-count').textContent = `${rows.length} of ${tours.size}`;
}

async function refreshStats() {
  const cells = await call('GET', '/assignments/stats?resolution=7');
  cellMap.show(cells);
  $('cell-count').textContent = `· ${cells.length} cells`;
}

function statsSoon() {
  clearTimeout(statsTimer);
  statsTimer = setTimeout(() => refreshStats().catch(report), 300);
}

function candidateRow(c, chosen) {
  const row = el('tr', undefined, c.realtor_id === chosen ? 'winner' : '');
  row.append(
    el('td', short(c.realtor_id), 'mono'),
    el('td', c.distance_km.toFixed(2)),
    el('td', c.outcome),
    el('td', c.rejected ?? (c.earliest_start ? when(c.earliest_start) : '—')),
    el('td', c.score === null || c.score === undefined ? '—' : c.score.toFixed(2)),
  );
  return row;
}

async function select(id) {
  selected = id;
  renderTable();
  const panel = $('explanation');
  panel.replaceChildren(el('p', 'Loading…', 'muted'));
  const answer = await call('GET', `/assignments/${id}/explain`);
  if (selected !== id) return;
  const explanation = answer.explanation;
  const summary = el('dl', undefined, 'summary');
  const fields = [
    ['Tour', answer.tour_id],
    ['Status', answer.status],
    ['Realtor', answer.realtor_id ?? '—'],
    ['Reason', answer.reason ?? explanation?.reason ?? '—'],
    ['Policy', explanation?.policy ?? '—'],
    ['Rings searched', explanation?.rings_searched ?? '—'],
  ];
  for (const [name, value] of fields) summary.append(el('dt', name), el('dd', value));
  const nodes = [summary];
  if (explanation?.candidates?.length) {
    const table = el('table', undefined, 'candidates');
    const head = el('tr');
    for (const h of ['Realtor', 'km', 'Outcome', 'Earliest start / why not', 'Score']) head.append(el('th', h));
    table.append(el('thead'), el('tbody'));
    table.tHead.append(head);
    table.tBodies[0].append(...explanation.candidates.map((c) => candidateRow(c, explanation.chosen)));
    nodes.push(table);
  } else {
    nodes.push(el('p', 'No candidates were looked at.', 'muted'));
  }
  panel.replaceChildren(...nodes);
  panel.dataset.tourId = id;
}

function onTour(tour) {
  const before = tours.get(tour.id);
  if (before && before.version > tour.version) return;
  tours.set(tour.id, tour);
  renderTable();
  const row = document.querySelector(`tr[data-tour-id="${tour.id}"]`);
  if (row) {
    row.classList.add('flash');
    setTimeout(() => row.classList.remove('flash'), 1500);
  }
  statsSoon();
  if (tour.id === selected) select(tour.id).catch(report);
}

async function reload() {
  const items = await all('/tours');
  tours.clear();
  for (const tour of items) tours.set(tour.id, tour);
  renderTable();
  await refreshStats();
}

function setLive(on) {
  const live = $('live');
  live.textContent = on ? 'live' : 'offline';
  live.className = `live ${on ? 'on' : 'off'}`;
  // Reconnected: what happened meanwhile is in the lists.
  if (on && live.dataset.wasOff === 'yes') reload().catch(report);
  live.dataset.wasOff = on ? 'no' : 'yes';
}

function report(error) {
  if (error instanceof ApiError && error.status === 401) {
    logout();
    $('login-error').textContent = 'Your session ended; log in again.';
    return;
  }
  console.error(error);
}

async function enter(me) {
  $('login').hidden = true;
  $('dashboard').hidden = false;
  $('me').textContent = me.email;
  if (!cellMap) cellMap = new CellMap($('map'));
  cellMap.invalidate();
  await reload();
  source = follow(onTour, () => reload().catch(report), setLive);
}

function logout() {
  source?.close();
  source = null;
  forget();
  tours.clear();
  selected = null;
  $('dashboard').hidden = true;
  $('login').hidden = false;
}

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('login-error').textContent = '';
  try {
    await enter(await login($('email').value, $('password').value));
  } catch (error) {
    $('login-error').textContent = error.message;
  }
});
$('logout').addEventListener('click', logout);
$('filter-status').addEventListener('change', renderTable);
$('filter-realtor').addEventListener('input', renderTable);

if (token()) {
  call('GET', '/iam/me')
    .then((me) => (me.role === 'admin' ? enter(me) : logout()))
    .catch(() => logout());
}
