import { execFile } from 'node:child_process';
import { pino, type Logger } from 'pino';

/**
 * systemd readiness and watchdog without a native module: Node has no unix datagram sockets,
 * so `systemd-notify` (a child process) sends the messages; the unit needs NotifyAccess=all.
 */
export interface SystemdNotifier {
  /** True when NOTIFY_SOCKET is set (started by systemd with Type=notify). */
  readonly enabled: boolean;
  ready(status?: string): Promise<void>;
  status(text: string): Promise<void>;
  stopping(): Promise<void>;
  /** Starts watchdog pings at half of WATCHDOG_USEC while `healthy()` says so; returns a stop function. */
  startWatchdog(healthy: () => boolean): () => void;
}

export interface NotifierOptions {
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** For tests: the program to run instead of systemd-notify. */
  command?: string;
}

/** Pure: the watchdog ping period (half of WATCHDOG_USEC) in ms, or undefined when not asked for. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid = process.pid): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  // WATCHDOG_PID, when set, names the process the watchdog is meant for.
  if (env.WATCHDOG_PID !== undefined && env.WATCHDOG_PID !== '' && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return Math.max(100, Math.floor(usec / 1000 / 2));
}

export function createSystemdNotifier(opts: NotifierOptions = {}): SystemdNotifier {
  const env = opts.env ?? process.env;
  const logger = opts.logger ?? pino({ level: 'silent' });
  const command = opts.command ?? 'systemd-notify';
  const enabled = typeof env.NOTIFY_SOCKET === 'string' && env.NOTIFY_SOCKET !== '';
  let warned = false;

  const run = (args: string[]): Promise<void> =>
    new Promise((resolve) => {
      if (!enabled) return resolve();
      execFile(command, args, { env, timeout: 5000 }, (err) => {
        if (err && !warned) {
          warned = true;
          logger.warn({ err: err.message, command }, 'systemd-notify failed (is NotifyAccess=all set in the unit?)');
        }
        resolve();
      });
    });

  return {
    enabled,
    ready: (status) => run(['--ready', ...(status ? [`--status=${status}`] : [])]),
    status: (text) => run([`--status=${text}`]),
    stopping: () => run(['STOPPING=1']),
    startWatchdog(healthy) {
      const period = enabled ? watchdogIntervalMs(env) : undefined;
      if (period === undefined) return () => undefined;
      let last = performance.now();
      const timer = setInterval(() => {
        const now = performance.now();
        // The event loop was blocked if this tick came much later than asked.
        const lag = now - last - period;
        last = now;
        if (lag > period) {
          logger.warn({ lagMs: Math.round(lag) }, 'event loop lagging: watchdog ping skipped');
          return;
        }
        if (!healthy()) {
          logger.warn('a watch loop is not running: watchdog ping skipped');
          return;
        }
        void run(['WATCHDOG=1']);
      }, period);
      timer.unref();
      return () => clearInterval(timer);
    },
  };
}
