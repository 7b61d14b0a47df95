/**
 * The user's BigMaac settings and the plugin that applies them.
 */

export * from './plugin';
export * from './settings';
