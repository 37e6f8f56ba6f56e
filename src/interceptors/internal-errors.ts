import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

/**
 * Turns any error that is not a ConnectError into a bare INTERNAL, so no SQL
 * text, stack or credential ever reaches a caller (Connect would answer
 * INTERNAL too, but with the original message). `report` sees the original.
 */
export function internalErrors(report: (error: unknown, procedure: string) => void): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (error) {
      if (error instanceof ConnectError) throw error;
      report(error, req.method.name);
      throw new ConnectError("internal error", Code.Internal);
    }
  };
}
