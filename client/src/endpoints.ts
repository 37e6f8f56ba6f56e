// The replicas a RemoteRunStore knows: their URLs as given, checked once at
// construction, and the rotation that hands each call the next healthy one.
// Pure: no I/O, the clock is a parameter, so endpoints.spec.ts tests it alone.

/**
 * How long RemoteRunStore leaves an endpoint out of its rotation after an
 * attempt there failed with UNAVAILABLE or a lost connection. Only used
 * with several base URLs.
 */
export interface FailoverOptions {
  /** The first time out, in ms; it doubles with each failure in a row. Default 1000. */
  downMs?: number;
  /** Cap on the time out, in ms. Default 30000. */
  maxDownMs?: number;
}

/** A FailoverOptions with every default filled in and checked. */
export type FailoverPolicy = Readonly<Required<FailoverOptions>>;

/** The defaults: an endpoint is tried again after 1 s, 2 s, 4 s, … up to 30 s. */
export const DEFAULT_FAILOVER_POLICY: FailoverPolicy = { downMs: 1000, maxDownMs: 30_000 };

/** Fills in defaults and refuses nonsense once, at construction. */
export function failoverPolicy(options: FailoverOptions | undefined): FailoverPolicy {
  const policy = { ...DEFAULT_FAILOVER_POLICY };
  for (const key of ["downMs", "maxDownMs"] as const) {
    const value = options?.[key];
    if (value === undefined) continue;
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      throw new TypeError(`failover.${key} must be a finite number >= 0, got ${String(value)}`);
    }
    policy[key] = value;
  }
  return policy;
}

/**
 * The base URLs of a RemoteRunStore: one URL, or a non-empty list of them,
 * every one http:// or https://, all with the same scheme (they share the
 * TLS options), none repeated (a repeat would get twice the calls). A bad
 * one is a TypeError naming it (`baseUrl[2]`).
 */
export function checkBaseUrls(value: unknown): string[] {
  if (typeof value === "string") return [checkUrl("baseUrl", value)];
  if (!Array.isArray(value)) {
    throw new TypeError(
      `baseUrl must be a URL or a non-empty array of URLs, got ${describe(value)}`,
    );
  }
  if (value.length === 0) {
    throw new TypeError("baseUrl is an empty array: give at least one URL");
  }
  const urls = value.map((url, i) => checkUrl(`baseUrl[${i}]`, url));
  const first = new URL(urls[0] as string);
  urls.forEach((url, i) => {
    const parsed = new URL(url);
    if (parsed.protocol !== first.protocol) {
      throw new TypeError(
        `baseUrl[${i}] is ${parsed.protocol}// but baseUrl[0] is ${first.protocol}//: every endpoint takes the same scheme (they share the TLS options)`,
      );
    }
    const earlier = urls.findIndex((other) => new URL(other).href === parsed.href);
    if (earlier < i) throw new TypeError(`baseUrl[${i}] repeats baseUrl[${earlier}] (${url})`);
  });
  return urls;
}

function checkUrl(field: string, value: unknown): string {
  if (typeof value !== "string") {
    throw new TypeError(`${field} must be a URL string, got ${describe(value)}`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`${field} is not a URL: ${JSON.stringify(value)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`${field} must be an http:// or https:// URL, got ${value}`);
  }
  return value;
}

function describe(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
}

/** What the rotation knows of one endpoint. */
interface Health {
  /** Failures in a row, each one after the endpoint was back in the rotation. */
  failures: number;
  /** Left out of the rotation until then (the clock's ms); 0 when healthy. */
  downUntil: number;
  /** When it was last left out: an answer to an attempt begun earlier proves nothing. */
  downSince: number;
}

/**
 * Round robin over endpoints, leaving out for a while (FailoverPolicy) the
 * ones whose last attempt failed. Never refuses to answer: when every
 * endpoint is out, the one due back first is tried anyway.
 */
export class EndpointRotation<E> {
  private readonly health: Health[];
  private next = 0;

  constructor(
    readonly endpoints: readonly E[],
    private readonly policy: FailoverPolicy,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.health = endpoints.map(() => ({ failures: 0, downUntil: 0, downSince: -1 }));
  }

  /**
   * The endpoints (by index) in the order one attempt may try them: the
   * healthy ones from the rotation's place on, then the ones left out, due
   * back first first. The rotation moves past the first one, so calls
   * spread evenly over the healthy endpoints.
   */
  order(): number[] {
    const now = this.now();
    const n = this.endpoints.length;
    const healthy: number[] = [];
    const out: number[] = [];
    for (let k = 0; k < n; k++) {
      const i = (this.next + k) % n;
      ((this.health[i] as Health).downUntil <= now ? healthy : out).push(i);
    }
    out.sort((a, b) => (this.health[a] as Health).downUntil - (this.health[b] as Health).downUntil);
    const order = healthy.concat(out);
    this.next = ((order[0] as number) + 1) % n;
    return order;
  }

  /** The clock, for `succeeded`'s `startedAt`. */
  time(): number {
    return this.now();
  }

  /**
   * An attempt at endpoint `i` failed with UNAVAILABLE or a lost connection:
   * it is left out for downMs, doubled for each failure in a row. A failure
   * while it is already out (calls that were in flight together) belongs to
   * the same outage and changes nothing.
   */
  failed(i: number): void {
    const health = this.health[i] as Health;
    const now = this.now();
    if (health.downUntil > now) return;
    health.failures++;
    const ms = Math.min(this.policy.maxDownMs, this.policy.downMs * 2 ** (health.failures - 1));
    health.downUntil = now + ms;
    health.downSince = now;
  }

  /** Endpoint `i` answered an attempt begun at `startedAt`: healthy again. */
  succeeded(i: number, startedAt: number): void {
    const health = this.health[i] as Health;
    if (health.failures === 0 || startedAt < health.downSince) return;
    health.failures = 0;
    health.downUntil = 0;
  }

  /** Whether endpoint `i` is in the rotation now. */
  isHealthy(i: number): boolean {
    return (this.health[i] as Health).downUntil <= this.now();
  }
}
