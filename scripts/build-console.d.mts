/** Where `npm run build` puts the console, and where the server looks by default. */
export const CONSOLE_OUT_DIR: string;
/** Bundles the console into `outdir` (default CONSOLE_OUT_DIR); answers the file names written. */
export function buildConsole(outdir?: string): Promise<string[]>;
