/**
 * BigMaac's status bar item.
 */

export * from './plugin';
export * from './totals';
export * from './widget';
