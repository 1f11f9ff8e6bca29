/** prom-client's per-metric modules (CommonJS, untyped): each registers its metrics on a registry. */
type PromClientMetric = (registry: import('prom-client').Registry, config: { prefix?: string; eventLoopMonitoringPrecision?: number }) => void;

declare module 'prom-client/lib/metrics/*' {
  const metric: PromClientMetric;
  export default metric;
}

/** prom-client's classes, each from its own file (their types are the package's). */
declare module 'prom-client/lib/counter.js' {
  export { Counter as default } from 'prom-client';
}
declare module 'prom-client/lib/gauge.js' {
  export { Gauge as default } from 'prom-client';
}
declare module 'prom-client/lib/histogram.js' {
  export { Histogram as default } from 'prom-client';
}
declare module 'prom-client/lib/registry.js' {
  export { Registry as default } from 'prom-client';
}
