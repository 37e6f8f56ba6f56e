import { useEffect, useState } from "preact/hooks";
import { errorText } from "./format.js";

/** One call's state: its answer, or the error it failed with, or neither while it runs. */
export interface CallState<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
}

/**
 * Runs `call` whenever one of `deps` changes and keeps its latest answer;
 * an answer that arrives after a newer call started is dropped.
 */
export function useCall<T>(
  call: (signal: AbortSignal) => Promise<T>,
  deps: unknown[],
): CallState<T> {
  const [state, setState] = useState<CallState<T>>({ data: null, error: null, loading: true });
  useEffect(() => {
    const abort = new AbortController();
    setState((was) => ({ ...was, loading: true }));
    call(abort.signal).then(
      (data) => {
        if (!abort.signal.aborted) setState({ data, error: null, loading: false });
      },
      (error: unknown) => {
        if (!abort.signal.aborted)
          setState({ data: null, error: errorText(error), loading: false });
      },
    );
    return () => abort.abort();
  }, deps);
  return state;
}
