/**
 * Membership routes. Operators (`admin`): `GET /cluster/members`, `POST
 * /cluster/members` with `{"url"}`, `DELETE /cluster/members/<node id or
 * URL-encoded URL>`. Peers (`peer`): `POST /sync/members` merges the caller's
 * member list and answers with ours (src/membership/gossip.ts).
 */
import { PeerkvError } from '../errors.ts';
import { type MemberExchange, parseMemberExchange } from '../membership/membership.ts';
import type { MemberRow } from '../store/types.ts';
import type { BodyBudget } from './body-budget.ts';
import { type BodyLimits, readJson } from './read-body.ts';
import { sendJson } from './respond.ts';
import type { Route } from './route.ts';
import { requireObject } from './validate.ts';

export interface MemberView {
  readonly self: { readonly nodeId: string; readonly url: string };
  /** Runtime rows, this node, and the peers it reaches (version null: never changed at runtime). */
  readonly members: {
    readonly nodeId: string;
    readonly url: string;
    readonly state: MemberRow['state'];
    readonly version: string | null;
    readonly self: boolean;
  }[];
}

export interface MemberService {
  view(): MemberView;
  add(url: unknown): Promise<{ url: string; nodeId: string; added: boolean }>;
  remove(id: string): MemberRow;
  merge(exchange: MemberExchange): MemberExchange;
}

const MEMBERS_BODY_BYTES_MAX = 3 * 1024 * 1024;
const ADD_BODY_BYTES_MAX = 16 * 1024;

export function memberRoutes(service: MemberService, budget: BodyBudget): Route[] {
  const listBody: BodyLimits = { bytesMax: MEMBERS_BODY_BYTES_MAX, budget };
  const addBody: BodyLimits = { bytesMax: ADD_BODY_BYTES_MAX, budget };
  return [
    {
      method: 'GET',
      pattern: '/cluster/members',
      permission: 'admin',
      handler: (_req, res) => sendJson(res, 200, service.view()),
    },
    {
      method: 'POST',
      pattern: '/cluster/members',
      permission: 'admin',
      handler: async (req, res) => {
        const body = requireObject(await readJson(req, addBody), 'request body');
        const added = await service.add(body.url);
        sendJson(res, 200, { ...added, ...service.view() });
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
        sendJson(res, 200, { removed: row.url, nodeId: row.nodeId, ...service.view() });
      },
    },
    {
      method: 'POST',
      pattern: '/sync/members',
      permission: 'peer',
      handler: async (req, res) => {
        const exchange = parseMemberExchange(await readJson(req, listBody));
        sendJson(res, 200, service.merge(exchange));
      },
    },
  ];
}
