/**
 * English strings with JupyterLab's `%1` placeholders filled in, as the null
 * translator does (the translation package is ESM, which this jest setup does
 * not load).
 */
import type { TranslationBundle } from '@jupyterlab/translation';

export const trans = {
  __: (text: string, ...args: unknown[]) => fill(text, args),
  _n: (one: string, many: string, n: number, ...args: unknown[]) =>
    fill(n === 1 ? one : many, [n, ...args])
} as unknown as TranslationBundle;

function fill(text: string, args: unknown[]): string {
  return text.replace(/%(\d+)/g, (match, i) =>
    i - 1 < args.length ? String(args[i - 1]) : match
  );
}
