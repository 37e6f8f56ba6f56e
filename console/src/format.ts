import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import { RunStatus } from "../../client/src/gen/runstore/v1/run_store_pb.js";

/** The statuses a run can have, as the filters offer them. */
export const STATUSES = [
  RunStatus.PENDING,
  RunStatus.RUNNING,
  RunStatus.SUCCESS,
  RunStatus.ERROR,
  RunStatus.TIMEOUT,
  RunStatus.INTERRUPTED,
] as const;

/** The lower-case name of a status ("running"), as the SDKs spell it. */
export function statusName(status: RunStatus): string {
  return (RunStatus[status] ?? "unspecified").toLowerCase();
}

/** A timestamp in the browser's time zone, to the second; "—" when unset. */
export function localTime(ts: Timestamp | undefined): string {
  if (ts === undefined) return "—";
  const date = timestampDate(ts);
  const pad = (n: number) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

/** A count with thousands separators. */
export function count(value: bigint | number): string {
  return value.toLocaleString("en-US");
}

/** The browser's offset from UTC as GetRunStats wants it: "+09:00", "-05:30". */
export function utcOffset(date = new Date()): string {
  const minutes = -date.getTimezoneOffset();
  const sign = minutes < 0 ? "-" : "+";
  const abs = Math.abs(minutes);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** Local midnight of a YYYY-MM-DD date, `days` later. */
export function localMidnight(date: string, days = 0): Date {
  const [y = 0, m = 1, d = 1] = date.split("-").map(Number);
  return new Date(y, m - 1, d + days);
}

/** The local date of a Date as YYYY-MM-DD. */
export function localDate(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** What a failed call says, for the page's error line. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
