// Text rules every backend applies the same way before a value is stored.

/** The longest stored model_name, in code points. */
export const MODEL_NAME_MAX = 128;

/** The longest stored last_ai_message / first_human_message, in code points. */
export const MESSAGE_MAX = 2000;

/**
 * Cuts `value` to at most `max` Unicode code points, like Python's
 * `s[:max]`: a surrogate pair is never split and an emoji counts as one.
 */
export function cutCodePoints(value: string, max: number): string {
  if (value.length <= max) return value;
  let units = 0;
  for (let points = 0; points < max && units < value.length; points++) {
    const c = value.charCodeAt(units);
    const pair =
      c >= 0xd800 && c <= 0xdbff && units + 1 < value.length
        ? value.charCodeAt(units + 1) >= 0xdc00 && value.charCodeAt(units + 1) <= 0xdfff
        : false;
    units += pair ? 2 : 1;
  }
  return value.slice(0, units);
}

// What Python's str.strip() strips (str.isspace()); JavaScript's trim() also
// strips U+FEFF and keeps U+001C–U+001F and U+0085.
const PYTHON_WHITESPACE =
  "[\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const STRIP = new RegExp(`^${PYTHON_WHITESPACE}+|${PYTHON_WHITESPACE}+$`, "g");

/** model_name as stored: stripped as Python strips, then cut to 128 code points; null stays null. */
export function normalizeModelName(value: string | null): string | null {
  return value === null ? null : cutCodePoints(value.replace(STRIP, ""), MODEL_NAME_MAX);
}

/** A message as stored: cut to 2000 code points; null stays null. */
export function cutMessage(value: string | null): string | null {
  return value === null ? null : cutCodePoints(value, MESSAGE_MAX);
}

/**
 * Orders strings by Unicode code point, as Python and MySQL's utf8mb4_bin do,
 * rather than by UTF-16 unit as `<` does (they differ above U+FFFF).
 */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return rank(x) - rank(y);
  }
  return a.length - b.length;
}

// Surrogates (U+D800–DFFF) encode code points above U+FFFF, so they must rank
// above U+E000–FFFF: shift them up past that block and the block down.
function rank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}
