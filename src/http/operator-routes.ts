/**
 * Operator routes: `GET /cluster/nodes`, the whole cluster seen from this
 * node (what `peerkv status` and the dashboard show).
 */
import type { ClusterOverview } from '../client/types.ts';
import type { Route } from './kv-routes.ts';
import { sendJson } from './respond.ts';

export interface OperatorService {
  overview(): Promise<ClusterOverview>;
}

export function operatorRoutes(service: OperatorService): Route[] {
  return [
    {
      method: 'GET',
      pattern: '/cluster/nodes',
      permission: 'admin',
      handler: async (_req, res) => sendJson(res, 200, await service.overview()),
    },
  ];
}
