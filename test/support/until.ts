import { vi } from "vitest";

/**
 * Waits until `condition` holds, polling every 10 ms: the test waits on the
 * state it needs rather than sleeping a guessed time. Fails after `timeoutMs`
 * naming `what`; the bound is a safety net, not an assertion on speed.
 */
export function until(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  return vi.waitFor(
    () => {
      if (!condition()) throw new Error(`still waiting for ${what}`);
    },
    { timeout: timeoutMs, interval: 10 },
  );
}
