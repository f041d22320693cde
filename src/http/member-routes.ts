/**
 * Membership routes. Operators (`admin`): `GET /cluster/members`, `POST
 * /cluster/members` with `{"url"}`, `DELETE /cluster/members/<node id or
 * URL-encoded URL>`. Peers (`peer`): `POST /sync/members` merges the caller's
 * member list and answers with ours (see src/membership/gossip.ts).
 */
import { PeerkvError } from '../errors.ts';
import { normaliseUrl, parseMemberRows } from '../membership/membership.ts';
import type { MemberRow } from '../store/types.ts';
import type { BodyBudget } from './body-budget.ts';
import { type BodyLimits, readJson } from './read-body.ts';
import { sendJson } from './respond.ts';
import type { Route } from './route.ts';
import { requireObject } from './validate.ts';

export interface MemberService {
  readonly selfUrl: string;
  readonly selfNodeId: string;
  rows(): MemberRow[];
  /** Adds a member; false when it already was one. */
  add(url: string): boolean;
  /** Removes the member named by node id or URL; its row after the change. */
  remove(id: string): MemberRow;
  /** Merges a peer's rows; answers ours. */
  merge(rows: readonly MemberRow[]): MemberRow[];
}

const MEMBERS_BODY_BYTES_MAX = 3 * 1024 * 1024;
const ADD_BODY_BYTES_MAX = 16 * 1024;

export function memberRoutes(service: MemberService, budget: BodyBudget): Route[] {
  const listBody: BodyLimits = { bytesMax: MEMBERS_BODY_BYTES_MAX, budget };
  const addBody: BodyLimits = { bytesMax: ADD_BODY_BYTES_MAX, budget };
  const view = () => ({
    self: { url: service.selfUrl, nodeId: service.selfNodeId },
    members: service.rows().map((row) => ({
      ...row,
      self: row.url === service.selfUrl || row.nodeId === service.selfNodeId,
    })),
  });
  return [
    {
      method: 'GET',
      pattern: '/cluster/members',
      permission: 'admin',
      handler: (_req, res) => sendJson(res, 200, view()),
    },
    {
      method: 'POST',
      pattern: '/cluster/members',
      permission: 'admin',
      handler: async (req, res) => {
        const body = requireObject(await readJson(req, addBody), 'request body');
        const url = normaliseUrl(body.url, 'url');
        const added = service.add(url);
        sendJson(res, 200, { url, added, ...view() });
      },
    },
    {
      method: 'DELETE',
      pattern: '/cluster/members/*',
      permission: 'admin',
      handler: (req, res) => {
        const encoded = req.path.slice('/cluster/members/'.length);
        let id: string;
        try {
          id = decodeURIComponent(encoded);
        } catch (cause) {
          throw new PeerkvError('BAD_REQUEST', 'member id is not valid percent-encoding', {
            cause,
          });
        }
        if (id === '') throw new PeerkvError('BAD_REQUEST', 'name a member by node id or URL');
        const row = service.remove(id);
        sendJson(res, 200, { removed: row.url, nodeId: row.nodeId, ...view() });
      },
    },
    {
      method: 'POST',
      pattern: '/sync/members',
      permission: 'peer',
      handler: async (req, res) => {
        const rows = parseMemberRows(await readJson(req, listBody));
        sendJson(res, 200, { members: service.merge(rows) });
      },
    },
  ];
}
