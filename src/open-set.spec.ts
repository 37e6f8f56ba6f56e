import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { OpenSet } from "./open-set.js";

describe("OpenSet", () => {
  it("is empty at once when nothing was added", async () => {
    const open = new OpenSet<EventEmitter>();
    expect(open.size).toBe(0);
    await open.empty();
  });

  it("holds each item until its own 'close', and empty() resolves with the last one", async () => {
    const open = new OpenSet<EventEmitter>();
    const first = new EventEmitter();
    const second = new EventEmitter();
    open.add(first);
    open.add(second);
    expect([...open]).toEqual([first, second]);
    let emptied = false;
    const waiting = open.empty().then(() => {
      emptied = true;
    });
    first.emit("close");
    await Promise.resolve();
    expect(open.size).toBe(1);
    expect(emptied).toBe(false);
    second.emit("close");
    await waiting;
    expect(open.size).toBe(0);
    expect(emptied).toBe(true);
  });
});
