/**
 * How a DNS process binds its listeners when it is one of several workers sharing the port (cluster/primary.ts
 * forks them and says how they share it): what the primary hands each worker in its environment, read here, below
 * the listeners that use it.
 */
import cluster from 'node:cluster';

/** Environment variables the primary hands its workers: how to share the port, and port-0 listen specs resolved. */
export const ENV_SHARE = 'HASHWALL_PORT_SHARING';
export const ENV_LISTEN = 'HASHWALL_LISTEN_PORTS';

export type PortSharing = 'reuseport' | 'cluster';

/** How this process should bind its DNS sockets: 'none' for a single process (and the primary's own tests). */
export function portSharing(): PortSharing | 'none' {
  if (!cluster.isWorker) return 'none';
  return process.env[ENV_SHARE] === 'reuseport' ? 'reuseport' : 'cluster';
}

/** The listen spec a worker binds for configured `spec` (its port-0 resolution from the primary, else itself). */
export function boundSpec(spec: string): string {
  if (!cluster.isWorker) return spec;
  try {
    const map = JSON.parse(process.env[ENV_LISTEN] ?? '{}') as Record<string, string>;
    return map[spec] ?? spec;
  } catch {
    return spec;
  }
}
