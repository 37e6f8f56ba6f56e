import { describe, expect, it } from "vitest";
import {
  checkBaseUrls,
  DEFAULT_FAILOVER_POLICY,
  EndpointRotation,
  failoverPolicy,
} from "./endpoints.js";

// The pure parts of RemoteRunStore's endpoint list: the URL checks and the
// rotation, on a clock the test moves by hand.

describe("checkBaseUrls", () => {
  it("takes one URL or a list of them", () => {
    expect(checkBaseUrls("http://127.0.0.1:1")).toEqual(["http://127.0.0.1:1"]);
    expect(checkBaseUrls(["https://a:1", "https://b:1/prefix"])).toEqual([
      "https://a:1",
      "https://b:1/prefix",
    ]);
  });

  it.each([
    [42, "baseUrl must be a URL or a non-empty array of URLs, got number"],
    [null, "baseUrl must be a URL or a non-empty array of URLs, got null"],
    [[], "baseUrl is an empty array: give at least one URL"],
    ["127.0.0.1:50051", 'baseUrl is not a URL: "127.0.0.1:50051"'],
    ["ftp://a:1", "baseUrl must be an http:// or https:// URL, got ftp://a:1"],
    [["http://a:1", 7], "baseUrl[1] must be a URL string, got number"],
    [["http://a:1", ""], 'baseUrl[1] is not a URL: ""'],
    [
      ["http://a:1", "http://b:1", "https://c:1"],
      "baseUrl[2] is https:// but baseUrl[0] is http://: every endpoint takes the same scheme (they share the TLS options)",
    ],
    [["http://a:1", "http://b:1", "http://a:1/"], "baseUrl[2] repeats baseUrl[0] (http://a:1/)"],
  ])("refuses %j", (value, message) => {
    expect(() => checkBaseUrls(value)).toThrow(new TypeError(message));
  });
});

describe("failoverPolicy", () => {
  it("1 s doubling up to 30 s unless told otherwise", () => {
    expect(failoverPolicy(undefined)).toEqual({ downMs: 1000, maxDownMs: 30_000 });
    expect(failoverPolicy({ downMs: 5 })).toEqual({ downMs: 5, maxDownMs: 30_000 });
  });

  it.each([
    [{ downMs: -1 }, "failover.downMs must be a finite number >= 0, got -1"],
    [{ maxDownMs: Number.NaN }, "failover.maxDownMs must be a finite number >= 0, got NaN"],
    [{ downMs: "5" }, "failover.downMs must be a finite number >= 0, got 5"],
  ])("refuses %o", (options, message) => {
    expect(() => failoverPolicy(options as never)).toThrow(new TypeError(message));
  });
});

describe("EndpointRotation", () => {
  function rotation(n: number) {
    const clock = { t: 1000 };
    const r = new EndpointRotation(
      Array.from({ length: n }, (_, i) => i),
      { downMs: 100, maxDownMs: 350 },
      () => clock.t,
    );
    return { r, clock, firsts: (k: number) => Array.from({ length: k }, () => r.order()[0]) };
  }

  it("round robin over healthy endpoints, each order listing every endpoint once", () => {
    const { r, firsts } = rotation(3);
    expect(r.order()).toEqual([0, 1, 2]);
    expect(r.order()).toEqual([1, 2, 0]);
    expect(firsts(4)).toEqual([2, 0, 1, 2]);
  });

  it("leaves a failed endpoint out, last in the order, then takes it back after downMs", () => {
    const { r, clock, firsts } = rotation(3);
    r.failed(1);
    expect(r.isHealthy(1)).toBe(false);
    expect(r.order()).toEqual([0, 2, 1]);
    // The healthy two share the calls evenly.
    expect(firsts(4)).toEqual([2, 0, 2, 0]);
    clock.t += 100;
    expect(r.isHealthy(1)).toBe(true);
    expect(firsts(3)).toEqual([1, 2, 0]);
  });

  it("doubles the time out for failures in a row, up to maxDownMs; a success resets it", () => {
    const { r, clock } = rotation(2);
    const outFor = () => {
      r.failed(0);
      const start = clock.t;
      while (!r.isHealthy(0)) clock.t += 1;
      return clock.t - start;
    };
    expect([outFor(), outFor(), outFor(), outFor()]).toEqual([100, 200, 350, 350]);
    r.succeeded(0, clock.t);
    expect(outFor()).toBe(100);
  });

  it("a failure while already out (calls in flight together) is the same outage", () => {
    const { r, clock } = rotation(2);
    r.failed(0);
    r.failed(0);
    r.failed(0);
    clock.t += 100;
    expect(r.isHealthy(0)).toBe(true);
  });

  it("an answer to an attempt begun before the endpoint was left out does not take it back", () => {
    const { r, clock } = rotation(2);
    const began = r.time();
    clock.t += 5;
    r.failed(0);
    r.succeeded(0, began);
    expect(r.isHealthy(0)).toBe(false);
    r.succeeded(0, r.time());
    expect(r.isHealthy(0)).toBe(true);
  });

  it("with every endpoint out, tries the one due back first", () => {
    const { r, clock } = rotation(3);
    r.failed(2);
    clock.t += 10;
    r.failed(0);
    clock.t += 10;
    r.failed(1);
    expect(r.order()).toEqual([2, 0, 1]);
  });

  it("uses the default policy's numbers", () => {
    expect(DEFAULT_FAILOVER_POLICY).toEqual({ downMs: 1000, maxDownMs: 30_000 });
  });
});
