import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "../logger.js";

/**
 * One debug line per call: procedure, code and milliseconds, never the
 * message body or headers (which carry the token).
 */
export function requestLog(logger: Logger): Interceptor {
  return (next) => async (req) => {
    if (!logger.isLevelEnabled("debug")) return next(req);
    const began = performance.now();
    const procedure = `${req.service.typeName}/${req.method.name}`;
    try {
      const response = await next(req);
      logger.debug({ procedure, code: "ok", ms: performance.now() - began }, "call");
      return response;
    } catch (error) {
      const code = Code[ConnectError.from(error).code] ?? "unknown";
      logger.debug({ procedure, code, ms: performance.now() - began }, "call");
      throw error;
    }
  };
}
