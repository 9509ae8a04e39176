// The report and comparison pages: everything is drawn from the JSON in
// #data; text goes in through textContent only, never as markup.
'use strict';

const D = JSON.parse(document.getElementById('data').textContent);
// The standard ARC palette, colour 0 to 9 (report.Palette).
const PALETTE = D.palette;
const SVG = 'http://www.w3.org/2000/svg';
// [kind, filter label, whether its filter shows at zero]: the four a reader
// asks about always do ("Solved (0)" is an answer); the rest when a run has any.
const KINDS = [
  ['failed', 'Failed', true], ['unsolved', 'Unsolved', true], ['partial', 'Partly solved', true],
  ['solved', 'Solved', true], ['unscored', 'Unscored', false], ['pending', 'Unfinished', false],
  ['notrun', 'Not run', false],
];

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

const pct = (s) => (s === null || s === undefined ? '–' : (s * 100).toFixed(1) + '%');
const usd = (v) => '$' + (Number(v) < 0.01 && Number(v) > 0 ? Number(v).toPrecision(3) : Number(v).toFixed(Number(v) >= 100 ? 0 : 4));
const int = (n) => Number(n).toLocaleString('en-US');
function duration(s) {
  if (!s) return '–';
  if (s < 90) return s.toFixed(1) + ' s';
  if (s < 5400) return (s / 60).toFixed(1) + ' min';
  return (s / 3600).toFixed(1) + ' h';
}

// tileColour shades a score from red (0) through yellow to green (1).
function tileColour(score) {
  const hue = Math.round(120 * Math.max(0, Math.min(1, score)));
  return `hsl(${hue}, 70%, 45%)`;
}

// grid draws an ARC grid (rows of digits) as SVG, one rect per cell.
function grid(rows, name) {
  if (!rows || rows.length === 0 || rows[0].length === 0) return el('div', { class: 'empty', text: 'empty' });
  const h = rows.length, w = rows[0].length;
  const cell = Math.max(6, Math.min(18, Math.floor(270 / Math.max(h, w))));
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'grid');
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('width', w * cell);
  svg.setAttribute('height', h * cell);
  svg.setAttribute('data-grid', name);
  svg.setAttribute('data-rows', h);
  svg.setAttribute('data-cols', w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < rows[y].length; x++) {
      const r = document.createElementNS(SVG, 'rect');
      r.setAttribute('x', x); r.setAttribute('y', y); r.setAttribute('width', 0.94); r.setAttribute('height', 0.94);
      const c = rows[y][x];
      r.setAttribute('fill', c >= '0' && c <= '9' ? PALETTE[c.charCodeAt(0) - 48] : '#ffffff');
      svg.append(r);
    }
  }
  return svg;
}

function figure(caption, rows, name, mark) {
  const cap = el('figcaption', { text: caption });
  if (mark !== undefined) {
    cap.append(el('span', { class: 'mark ' + (mark ? 'right' : 'wrong'), text: mark ? '\u2713 correct' : '\u2717 wrong' }));
  }
  return el('figure', {}, cap, grid(rows, name));
}

// taskDetail draws one task: its facts, and per test pair the input, the
// expected output and every attempt.
function taskDetail(t, prefix = '') {
  const box = el('div', { class: 'task', 'data-task': t.id });
  const facts = el('div', { class: 'facts' });
  const fact = (label, value) => facts.append(el('span', {}, label + ' ', el('b', { text: value })));
  fact('status', t.status);
  fact('score', t.score === null || t.score === undefined ? (t.kind === 'unscored' ? 'unscored' : '–') : `${pct(t.score)} (${t.pairs_correct} of ${t.pairs} pairs)`);
  fact('attempts', String(t.attempts));
  if (t.cost || t.compute_cost) fact('cost', `${usd(t.cost || 0)} model + ${usd(t.compute_cost || 0)} compute`);
  if (t.tokens_in || t.tokens_out) fact('tokens', `${int(t.tokens_in || 0)} in, ${int(t.tokens_out || 0)} out`);
  box.append(facts);
  if (t.kind === 'failed') {
    box.append(el('div', { class: 'failure', text: `Last error: ${t.reason || 'unknown'}` + (t.exit_code !== undefined ? ` (exit code ${t.exit_code})` : '') }));
  }
  // What the worker itself said, beside Batch's reason.
  if (t.worker_error) box.append(el('div', { class: 'failure worker', text: `The worker recorded: ${t.worker_error}` }));
  if (t.job_error) {
    box.append(el('div', { class: 'failure stopped', text: t.stopped_at_time_limit
      ? `Stopped at the job's time limit: partial answers (${t.job_error})`
      : `Completed, then its job failed: ${t.job_error}` }));
  }
  if (t.unanswered) box.append(el('div', { class: 'note', text: 'No usable answer: the model was paid but gave no grid.' }));
  if (t.note) box.append(el('div', { class: 'note', text: t.note }));
  if (t.reused_from) {
    box.append(el('div', { class: 'note reused', text: `Reused from ${t.reused_from}: its answers and marks are that run's`
      + (t.reused_cost ? `, where it cost ${usd(t.reused_cost)} (not in this run's cost)` : '') }));
  }
  // A task a resume ran again: what it was before, briefly.
  if (t.history) {
    box.append(el('div', { class: 'history' }, el('h3', { text: 'Before each resume ran it again' }),
      el('ul', {}, ...t.history.map((e) => el('li', { text: `${e.status}`
        + (e.attempts ? ` after ${e.attempts === 1 ? '1 attempt' : `${e.attempts} attempts`}` : '')
        + (e.error ? `: ${e.error}` : '') + ` (resumed ${e.at})` })))));
  }
  (t.tests || []).forEach((test, i) => {
    const row = el('div', { class: 'row' });
    row.append(figure('Test input', test.input, `${prefix}test-${i}-input`));
    row.append(test.expected ? figure('Expected output', test.expected, `${prefix}test-${i}-expected`)
      : el('figure', {}, el('figcaption', { text: 'Expected output' }), el('div', { class: 'empty', text: 'withheld' })));
    if (test.answers.length === 0) {
      row.append(el('figure', {}, el('figcaption', { text: 'Answers' }), el('div', { class: 'empty', text: 'none' })));
    }
    test.answers.forEach((a, j) => {
      row.append(figure(a.name.replace('_', ' '), a.grid, `${prefix}test-${i}-${a.name}`, a.correct === null ? undefined : a.correct));
    });
    box.append(el('section', { class: 'test' }, el('h3', { text: `Test pair ${i + 1} of ${t.tests.length}` }), row));
  });
  return box;
}

function openPanel(title, body) {
  const panel = document.getElementById('detail');
  panel.replaceChildren(el('button', { class: 'close', 'aria-label': 'close', text: '\u00d7' }), el('h2', { text: title }), body);
  panel.querySelector('.close').addEventListener('click', closePanel);
  panel.hidden = false;
  panel.scrollTop = 0;
}

function closePanel() {
  document.getElementById('detail').hidden = true;
  document.querySelectorAll('.tile.open').forEach((t) => t.classList.remove('open'));
  if (location.hash) history.replaceState(null, '', location.pathname);
}

function runHeader(r, title) {
  const fig = (label, value, detail, cls) => el('div', { class: 'figure' + (cls ? ' ' + cls : '') },
    el('div', { class: 'label', text: label }), el('div', { class: 'value', text: value }), detail ? el('div', { class: 'detail', text: detail }) : null);
  const h = el('header', { class: 'run' },
    el('h1', {}, document.createTextNode(title), el('span', { class: 'status ' + r.status, text: r.status })),
    el('div', { class: 'sub', text: `${r.run_id} · data source ${r.data_source} · started ${r.created_at} by ${r.triggered_by || 'unknown'}` }));
  const figs = el('div', { class: 'figures' },
    fig('Score', pct(r.score), r.score === null ? 'no task can be scored' : `official ARC-AGI score over ${int(r.scored_tasks)} tasks`
      + (r.not_run_tasks ? ` (tasks not run count 0); over the ${int(r.scored_tasks - r.not_run_tasks)} tasks run: ${pct(r.score_over_run_tasks)}` : ''), 'big score'),
    fig('Tasks', int(r.total_tasks), `${int(r.completed_tasks)} completed · ${int(r.failed_tasks)} failed · ${int(r.unscored_tasks)} unscored`
      + (r.pending_tasks ? ` · ${int(r.pending_tasks)} unfinished` : '') + (r.not_run_tasks ? ` · ${int(r.not_run_tasks)} not run` : '')
      + (r.unanswered_tasks ? ` · ${int(r.unanswered_tasks)} unanswered` : '') + (r.completed_after_job_failure ? ` · ${int(r.completed_after_job_failure)} completed before their job failed` : '')),
    fig('Solved', int(r.solved_tasks), `every test pair right: ${pct(r.strict_score)} of the scored tasks`),
    fig('Cost', usd(r.cost_with_compute_usd) + (r.unreadable_costs ? ` + ${int(r.unreadable_costs)} unreadable` : ''),
      `${usd(r.total_cost_usd)} model (as the worker recorded it) + ${usd(r.compute_cost_usd)} compute (Fargate) · ${usd(r.cost_per_task_usd)} per task`
      + (r.unreadable_costs ? ` · ${int(r.unreadable_costs)} tasks' costs cannot be read` : '') + (r.unpriced_jobs ? ` · ${int(r.unpriced_jobs)} jobs unpriced` : '')),
    fig('Tokens', `${int(r.total_input_tokens)} / ${int(r.total_output_tokens)}`, 'in / out'),
    fig('Wall time', duration(r.wall_seconds)),
    fig('Attempts', int(r.attempts), r.retries === 1 ? '1 retry' : `${int(r.retries)} retries`));
  // A resumed run's wall time spans its stops: its active time is beside it.
  if (r.resumes) {
    figs.append(fig('Resumed', r.resumes === 1 ? 'once' : `${int(r.resumes)} times`,
      `${int(r.executions)} executions · active ${duration(r.active_seconds)} · ${duration(r.span_seconds)} from first start to last end`, 'resumed'));
  }
  if (r.reused_from) {
    figs.append(fig('Reused', int(r.reused_tasks || 0), `${r.reused_tasks === 1 ? "task's result" : "tasks' results"} from ${r.reused_from} · ${usd(r.reused_cost_usd || 0)} paid there, not in this run's cost`, 'reused'));
  }
  h.append(figs);
  if (r.stop_reason) h.append(el('div', { class: 'error-line', text: (r.status === 'STOPPED' ? 'Stopped: ' : 'Budget: ') + r.stop_reason }));
  if (r.last_error) h.append(el('div', { class: 'error-line', text: 'Run failed: ' + r.last_error }));
  if (r.invalid_tasks) h.append(el('div', { class: 'error-line', text: `${r.invalid_tasks} task records hold values that cannot be read (see each task)` }));
  return h;
}

function renderReport(D) {
  const r = D.run;
  document.title = `${r.config_name} · ${pct(r.score)} · ${r.run_id}`;
  const byId = new Map(D.tasks.map((t) => [t.id, t]));
  const counts = {};
  for (const t of D.tasks) counts[t.kind] = (counts[t.kind] || 0) + 1;
  const kinds = KINDS;

  const tiles = el('div', { id: 'tiles', 'data-show': 'all' });
  const frag = document.createDocumentFragment();
  for (const t of D.tasks) {
    const tile = el('div', { class: 'tile ' + t.kind + (t.reused_from ? ' reused' : ''), 'data-id': t.id, 'data-kind': t.kind, tabindex: '0',
      title: `${t.id} · ${t.kind}` + (t.score !== null && t.score !== undefined ? ` · ${pct(t.score)}` : '') + (t.reused_from ? ` · reused from ${t.reused_from}` : '') });
    if (t.kind !== 'failed' && t.kind !== 'unscored' && t.kind !== 'pending' && t.kind !== 'notrun') tile.style.background = tileColour(t.score || 0);
    frag.append(tile);
  }
  tiles.append(frag);
  const open = (id) => {
    const t = byId.get(id);
    if (!t) return;
    document.querySelectorAll('.tile.open').forEach((x) => x.classList.remove('open'));
    tiles.querySelector(`.tile[data-id="${CSS.escape(id)}"]`)?.classList.add('open');
    openPanel(`Task ${t.id}`, taskDetail(t));
    history.replaceState(null, '', '#task=' + encodeURIComponent(id));
  };
  tiles.addEventListener('click', (e) => { const t = e.target.closest('.tile'); if (t) open(t.dataset.id); });
  tiles.addEventListener('keydown', (e) => { if (e.key === 'Enter') { const t = e.target.closest('.tile'); if (t) open(t.dataset.id); } });

  const filters = el('div', { class: 'filters', role: 'toolbar' });
  const button = (key, label, n) => el('button', { 'data-filter': key, 'aria-pressed': key === 'all' ? 'true' : 'false',
    disabled: n ? undefined : '', text: `${label} (${int(n)})` });
  filters.append(button('all', 'All', D.tasks.length));
  for (const [key, label, always] of kinds) if (always || counts[key]) filters.append(button(key, label, counts[key] || 0));
  filters.append(el('span', { class: 'hint', text: 'What needs a look comes first. Click a task for its grids.' }));
  filters.addEventListener('click', (e) => {
    const b = e.target.closest('button');
    if (!b) return;
    filters.querySelectorAll('button').forEach((x) => x.setAttribute('aria-pressed', x === b ? 'true' : 'false'));
    tiles.dataset.show = b.dataset.filter;
  });
  const legend = el('div', { class: 'legend' });
  for (const [label, colour] of [['score 0', tileColour(0)], ['½', tileColour(0.5)], ['1 (solved)', tileColour(1)], ['failed', '#3a3a3c'], ['unscored', '#c7c7cc']]) {
    const s = el('span', { text: label });
    s.style.setProperty('--c', colour);
    legend.append(s);
  }
  if (r.reused_from) legend.append(el('span', { class: 'reused', text: `reused from ${r.reused_from}` }));
  document.body.append(runHeader(r, r.config_name), el('main', {}, filters, legend, tiles), el('aside', { id: 'detail', hidden: '' }));
  // A link to a task opens it; a malformed or unknown one shows the overview.
  const m = location.hash.match(/^#task=(.+)$/);
  if (m) {
    let id = null;
    try { id = decodeURIComponent(m[1]); } catch (e) { /* not a task: the overview */ }
    if (id !== null && byId.has(id)) open(id);
    else history.replaceState(null, '', location.pathname);
  }
}

// chart plots score against cost per task (log scale), one point per run.
function chart(runs) {
  const W = 640, H = 340, L = 56, R = 20, T = 18, B = 44;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'chart');
  svg.setAttribute('width', W); svg.setAttribute('height', H);
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  const costs = runs.map((r) => r.cost_per_task_usd).filter((c) => c > 0);
  let lo = Math.floor(Math.log10(costs.length ? Math.min(...costs) : 0.001));
  let hi = Math.ceil(Math.log10(costs.length ? Math.max(...costs) : 1));
  if (hi <= lo) hi = lo + 1;
  const x = (c) => L + (W - L - R) * ((Math.log10(Math.max(c, 10 ** lo)) - lo) / (hi - lo));
  const y = (s) => T + (H - T - B) * (1 - s);
  add('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: '#999' });
  add('line', { x1: L, y1: T, x2: L, y2: H - B, stroke: '#999' });
  for (let e = lo; e <= hi; e++) {
    add('line', { x1: x(10 ** e), y1: H - B, x2: x(10 ** e), y2: H - B + 4, stroke: '#999' });
    add('text', { x: x(10 ** e), y: H - B + 16, 'text-anchor': 'middle' }, '$' + (e < 0 ? (10 ** e).toFixed(-e) : String(10 ** e)));
  }
  for (const s of [0, 0.25, 0.5, 0.75, 1]) {
    add('line', { x1: L - 4, y1: y(s), x2: W - R, y2: y(s), stroke: s ? '#eee' : '#999' });
    add('text', { x: L - 8, y: y(s) + 4, 'text-anchor': 'end' }, (s * 100) + '%');
  }
  add('text', { x: (L + W - R) / 2, y: H - 8, 'text-anchor': 'middle' }, 'cost per task, model + compute (USD, log scale)');
  add('text', { x: 14, y: (T + H - B) / 2, 'text-anchor': 'middle', transform: `rotate(-90 14 ${(T + H - B) / 2})` }, 'score');
  for (const r of runs) {
    const px = x(r.cost_per_task_usd || 10 ** lo), py = y(r.score || 0);
    add('circle', { class: 'point', cx: px, cy: py, r: 6, 'data-run': r.run_id }).append(Object.assign(document.createElementNS(SVG, 'title'), { textContent: `${r.config_name}: ${pct(r.score)} at ${usd(r.cost_per_task_usd)} per task` }));
    add('text', { class: 'label', x: px + 9, y: py - 8 }, r.config_name);
  }
  return svg;
}

function renderCompare(D) {
  document.title = 'Comparison: ' + D.runs.map((r) => r.config_name).join(' vs ');
  const header = el('header', { class: 'run' }, el('h1', { text: `Comparison of ${D.runs.length} runs` }),
    el('div', { class: 'sub', text: D.runs.map((r) => `${r.config_name} (${r.run_id})`).join(' · ') }));
  const table = el('table', { class: 'runs' });
  table.append(el('thead', {}, el('tr', {}, ...['Config', 'Run', 'Status', 'Score', 'Cost per task (model + compute)', 'Solved', 'Attempts', 'Tasks'].map((h) => el('th', { text: h })))));
  const body = el('tbody');
  for (const r of D.runs) {
    body.append(el('tr', { 'data-run': r.run_id }, ...[r.config_name, r.run_id, r.status, pct(r.score), usd(r.cost_per_task_usd), int(r.solved_tasks), int(r.attempts), int(r.total_tasks)].map((v) => el('td', { text: v }))));
  }
  table.append(body);

  const diff = el('table', { class: 'diff' });
  diff.append(el('thead', {}, el('tr', {}, el('th', { text: 'Task' }), ...D.runs.map((r) => el('th', { text: r.config_name })))));
  const dbody = el('tbody');
  for (const d of D.differences) {
    const tr = el('tr', { 'data-task': d.id }, el('td', { text: d.id }));
    D.runs.forEach((r) => {
      const t = d.by_run[r.run_id];
      const kind = t ? t.kind : 'missing';
      tr.append(el('td', { class: 'k-' + kind, text: kind === 'solved' ? '\u2713 solved' : kind === 'partial' ? `${pct(t.score)}` : kind }));
    });
    tr.addEventListener('click', () => {
      const box = el('div');
      D.runs.forEach((r, i) => {
        const t = d.by_run[r.run_id];
        box.append(el('section', { class: 'by-run' }, el('h3', { text: `${r.config_name} · ${t ? t.kind : 'not in this run'}` }), t ? taskDetail(t, `run-${i}-`) : null));
      });
      openPanel(`Task ${d.id}`, box);
    });
    dbody.append(tr);
  }
  diff.append(dbody);
  const main = el('main', {},
    el('h2', { class: 'section', text: 'Runs' }), table,
    el('h2', { class: 'section', text: 'Score against cost per task' }), chart(D.runs),
    el('h2', { class: 'section', text: `Tasks one run solved and another did not (${D.differences.length})` }),
    D.differences.length ? diff : el('p', { text: 'None: the runs solved the same tasks.' }));
  document.body.append(header, main, el('aside', { id: 'detail', hidden: '' }));
}

document.addEventListener('keydown', (e) => { if (e.key === 'Escape') closePanel(); });
if (D.kind === 'compare') renderCompare(D); else renderReport(D);
