/**
 * Operator routes: `/healthz` (the process serves), `/readyz` (it can do its
 * job: store open, workers up, start-up digest check done; 503 with the
 * reason otherwise), the way Kubernetes probes expect them, and `/metrics`
 * in the Prometheus text format.
 */
import { PeerkvError } from '../errors.ts';
import { sendJsonText } from './respond.ts';
import type { Route } from './route.ts';

/** What the operator routes need from the node. */
export interface OpsService {
  /** Why the node is not ready, or null when it is. */
  notReadyReason(): string | null;
  readonly metricsContentType: string;
  metricsText(): Promise<string>;
}

export function opsRoutes(service: OpsService): Route[] {
  return [
    {
      method: 'GET',
      pattern: '/healthz',
      permission: 'open',
      handler: (_req, res) => sendJsonText(res, 200, '{"status":"ok"}'),
    },
    {
      method: 'GET',
      pattern: '/readyz',
      permission: 'open',
      handler: (_req, res) => {
        const reason = service.notReadyReason();
        if (reason !== null) throw new PeerkvError('NOT_READY', `not ready: ${reason}`);
        sendJsonText(res, 200, '{"status":"ready"}');
      },
    },
    {
      method: 'GET',
      pattern: '/metrics',
      permission: 'admin',
      handler: async (_req, res) => {
        const text = await service.metricsText();
        res.writeHead(200, {
          'Content-Type': service.metricsContentType,
          'Content-Length': Buffer.byteLength(text),
        });
        res.end(text);
      },
    },
  ];
}
