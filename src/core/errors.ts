/**
 * Every error nnf-env raises on purpose is an NnfEnvError: it carries a stable `code`
 * (for logs, JSON answers and exit paths) and, where we know one, a `hint` that tells
 * the reader what to do. Modules subclass it per concern (ConfigError, KubeApiError, ...).
 */
/**
 * The mark every NnfEnvError carries. The `nnf-env` bundle and the ES modules it hands commands
 * to are two copies of this class, so `instanceof` fails across them: test the mark instead.
 */
const NNF_ENV_ERROR = Symbol.for('nnf-env.error');

/** Whether `err` is an NnfEnvError of any copy of this module. */
export function isNnfEnvError(err: unknown): err is NnfEnvError {
  return typeof err === 'object' && err !== null && (err as { [NNF_ENV_ERROR]?: unknown })[NNF_ENV_ERROR] === true;
}

export class NnfEnvError extends Error {
  readonly [NNF_ENV_ERROR] = true;
  readonly code: string;
  readonly hint: string | undefined;

  constructor(code: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
  }

  /** One line for a human: message, then what to do. */
  describe(): string {
    return this.hint ? `${this.message} (${this.hint})` : this.message;
  }

  toJSON(): { code: string; message: string; hint?: string } {
    return this.hint ? { code: this.code, message: this.message, hint: this.hint } : { code: this.code, message: this.message };
  }
}

/** Message of anything thrown, without assuming it is an Error. */
export function errorMessage(err: unknown): string {
  if (isNnfEnvError(err)) return err.describe();
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Node's system error code (ENOENT, EBUSY, ...) of anything thrown, if it has one. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
