/** prom-client's per-metric modules (CommonJS, untyped): each registers its metrics on a registry. */
type PromClientMetric = (registry: import('prom-client').Registry, config: { prefix?: string; eventLoopMonitoringPrecision?: number }) => void;

declare module 'prom-client/lib/metrics/*' {
  const metric: PromClientMetric;
  export default metric;
}
