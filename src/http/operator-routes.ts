/**
 * Operator routes: `GET /cluster/nodes`, the whole cluster seen from this
 * node (what `peerkv status` and the dashboard show), and the dashboard
 * itself: `GET /ui` and its two assets, plain files under `src/ui/` read
 * once at start-up (no build step, nothing from the internet); `GET /`
 * redirects to it.
 */
import { readFileSync } from 'node:fs';
import type { ClusterOverview } from '../client/types.ts';
import { PeerkvError } from '../errors.ts';
import { sendAsset, sendJson, sendRedirect } from './respond.ts';
import type { Route } from './route.ts';

export interface OperatorService {
  overview(): Promise<ClusterOverview>;
}

interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

const UI_FILES: Record<string, { file: string; type: string }> = {
  '/ui': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/ui/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

/** The page may load only its own files and call only its own node. */
const UI_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-cache',
};

function loadAssets(): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const [path, { file, type }] of Object.entries(UI_FILES)) {
    assets.set(path, { type, body: readFileSync(new URL(`../ui/${file}`, import.meta.url)) });
  }
  return assets;
}

export function operatorRoutes(service: OperatorService): Route[] {
  const assets = loadAssets();
  const serve: Route['handler'] = (req, res) => {
    const asset = assets.get(req.path);
    if (!asset) throw new PeerkvError('NOT_FOUND', `no route for ${req.path.slice(0, 200)}`);
    sendAsset(res, asset.type, asset.body, UI_HEADERS);
  };
  return [
    {
      method: 'GET',
      pattern: '/cluster/nodes',
      permission: 'admin',
      handler: async (_req, res) => sendJson(res, 200, await service.overview()),
    },
    // The page itself is open: it holds no data, and asks for a token when the data routes do.
    {
      method: 'GET',
      pattern: '/',
      permission: 'open',
      handler: (_req, res) => sendRedirect(res, '/ui'),
    },
    { method: 'GET', pattern: '/ui', permission: 'open', handler: serve },
    { method: 'GET', pattern: '/ui/*', permission: 'open', handler: serve },
  ];
}
