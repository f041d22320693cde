// The peerkv dashboard: every ~2 s it reads GET /cluster/nodes from the node that served the page
// and draws one row per node; the key browser lists, shows, puts and deletes entries through the
// same node's REST routes. With auth on, a 401 asks for a token, kept in sessionStorage only.
// Untrusted text (keys, values, errors) only ever goes through textContent.

const REFRESH_MS = 2000;
const FETCH_TIMEOUT_MS = 5000;
const PAGE_SIZE = 20;
const TOKEN_KEY = 'peerkv.token';
const VALUE_PREVIEW_CHARS = 80;

const $ = (id) => document.getElementById(id);
const browse = { prefix: '', afters: [''], next: null, selected: null };
let refreshing = false;

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Fetches JSON from this node with the token; a 401 shows the token form. */
async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  const saved = token();
  if (saved) headers.authorization = `Bearer ${saved}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body,
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
  });
  const json = await response.json().catch(() => null);
  if (response.status === 401) showAuth(true);
  if (!response.ok) {
    const error = new Error(json?.error ?? `HTTP ${response.status}`);
    error.status = response.status;
    error.code = json?.code ?? `HTTP_${response.status}`;
    throw error;
  }
  return json;
}

function showAuth(needed) {
  $('auth').hidden = !needed;
  $('forget-token').hidden = !token();
}

function cell(row, text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  row.append(td);
  return td;
}

function ago(iso) {
  if (!iso) return '-';
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m ago`;
  return `${Math.round(seconds / 3600)}h ago`;
}

function drawNodes(overview) {
  const hashes = overview.nodes.map((node) => node.hash).filter((hash) => hash !== null);
  const majority = mostCommon(hashes);
  const rows = overview.nodes.map((node) => {
    const row = document.createElement('tr');
    row.dataset.url = node.url;
    row.dataset.state = node.state;
    cell(row, node.self ? `${node.url} (this node)` : node.url);
    cell(row, node.nodeId ?? '-', 'mono');
    const state = node.resyncing ? `${node.state}, resyncing` : node.state;
    cell(row, state, `state state-${node.state}`);
    cell(row, node.entries === null ? '-' : node.entries.toLocaleString('en-US'), 'num');
    cell(row, node.hash === null ? '-' : node.hash.slice(0, 16), 'mono');
    const agrees = node.hash === null ? '-' : node.hash === majority ? 'yes' : 'NO';
    cell(row, agrees, agrees === 'NO' ? 'agree-no' : '');
    cell(row, node.pendingChanges === null ? '-' : String(node.pendingChanges), 'num');
    cell(row, node.lagMsP99 === null ? '-' : `${Math.round(node.lagMsP99)} ms`, 'num');
    const resync = node.lastResync;
    const outcome = resync ? (resync.error ? 'failed' : (resync.result ?? '')) : '';
    cell(row, resync ? `${ago(resync.at)} ${outcome} (${resync.trigger})` : '-');
    if (node.error) row.title = node.error;
    return row;
  });
  $('nodes').tBodies[0].replaceChildren(...rows);
  const down = overview.nodes.filter((node) => node.state !== 'up').length;
  const summary = $('summary');
  summary.dataset.healthy = String(overview.healthy);
  summary.textContent = [
    `${overview.nodes.length} nodes`,
    down === 0 ? 'all up' : `${down} down`,
    overview.hashesAgree ? 'hashes agree' : 'hashes differ',
  ].join(' · ');
}

function mostCommon(values) {
  const counts = new Map();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  let best = null;
  for (const [value, count] of counts) if (best === null || count > counts.get(best)) best = value;
  return best;
}

async function refresh() {
  if (refreshing) return;
  refreshing = true;
  try {
    drawNodes(await api('GET', '/cluster/nodes'));
    $('nodes-error').hidden = true;
    $('refreshed').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    $('nodes-error').hidden = false;
    $('nodes-error').textContent = `cannot read the cluster: ${error.message}`;
    $('summary').dataset.healthy = 'false';
    $('summary').textContent = error.status === 401 ? 'token needed' : 'not answering';
  } finally {
    refreshing = false;
  }
}

function preview(value) {
  const text = JSON.stringify(value);
  return text.length > VALUE_PREVIEW_CHARS ? `${text.slice(0, VALUE_PREVIEW_CHARS - 1)}…` : text;
}

async function loadPage() {
  const after = browse.afters.at(-1);
  const query = new URLSearchParams({ prefix: browse.prefix, limit: String(PAGE_SIZE) });
  if (after) query.set('after', after);
  try {
    const page = await api('GET', `/kv?${query}`);
    browse.next = page.next;
    const rows = page.items.map((entry) => {
      const row = document.createElement('tr');
      row.dataset.key = entry.key;
      if (entry.key === browse.selected) row.className = 'selected';
      cell(row, entry.key, 'mono');
      cell(row, preview(entry.value), 'mono value');
      cell(row, entry.version, 'mono muted');
      row.addEventListener('click', () => showEntry(entry.key));
      return row;
    });
    $('results').tBodies[0].replaceChildren(...rows);
    const first = (browse.afters.length - 1) * PAGE_SIZE;
    $('page-info').textContent =
      rows.length === 0 ? 'no keys' : `${first + 1}–${first + rows.length}`;
    $('previous').disabled = browse.afters.length <= 1;
    $('next').disabled = browse.next === null;
  } catch (error) {
    say(`listing failed: ${error.message}`, 'error');
  }
}

async function showEntry(key) {
  browse.selected = key;
  for (const row of $('results').tBodies[0].rows) {
    row.classList.toggle('selected', row.dataset.key === key);
  }
  try {
    const entry = await api('GET', `/kv/${encodeURIComponent(key)}`);
    $('entry').hidden = false;
    $('entry-empty').hidden = true;
    $('entry-key').textContent = entry.key;
    $('entry-version').textContent = entry.version;
    $('entry-value').textContent = JSON.stringify(entry.value, null, 2);
  } catch (error) {
    $('entry').hidden = true;
    $('entry-empty').hidden = false;
    say(error.status === 404 ? `${key}: not found` : `read failed: ${error.message}`, 'error');
  }
}

function say(text, kind) {
  $('message').textContent = text;
  $('message').dataset.kind = kind;
}

/** The same rule as `peerkv put`: JSON if it parses, else the text as a string. */
function valueBody(text) {
  try {
    JSON.parse(text);
    return text;
  } catch {
    return JSON.stringify(text);
  }
}

async function put(event) {
  event.preventDefault();
  const key = $('put-key').value;
  try {
    const result = await api(
      'PUT',
      `/kv/${encodeURIComponent(key)}`,
      valueBody($('put-value').value),
    );
    say(`stored ${key} (version ${result.version})`, 'ok');
    await loadPage();
    await showEntry(key);
  } catch (error) {
    say(`put failed: ${error.message} (${error.code})`, 'error');
  }
}

async function remove() {
  const key = browse.selected;
  if (key === null || !window.confirm(`Delete ${key}?`)) return;
  try {
    const result = await api('DELETE', `/kv/${encodeURIComponent(key)}`);
    say(`deleted ${key} (version ${result.version})`, 'ok');
    browse.selected = null;
    $('entry').hidden = true;
    $('entry-empty').hidden = false;
    await loadPage();
  } catch (error) {
    say(`delete failed: ${error.message} (${error.code})`, 'error');
  }
}

function wire() {
  $('search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    browse.prefix = $('prefix').value;
    browse.afters = [''];
    void loadPage();
  });
  $('next').addEventListener('click', () => {
    if (browse.next === null) return;
    browse.afters.push(browse.next);
    void loadPage();
  });
  $('previous').addEventListener('click', () => {
    if (browse.afters.length > 1) browse.afters.pop();
    void loadPage();
  });
  $('put-form').addEventListener('submit', put);
  $('delete').addEventListener('click', remove);
  $('edit').addEventListener('click', () => {
    $('put-key').value = $('entry-key').textContent;
    $('put-value').value = $('entry-value').textContent;
  });
  $('auth-form').addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('token').value);
    $('token').value = '';
    showAuth(false);
    void refresh();
    void loadPage();
  });
  $('forget-token').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showAuth(true);
  });
}

wire();
showAuth(false);
void refresh();
void loadPage();
setInterval(refresh, REFRESH_MS);
