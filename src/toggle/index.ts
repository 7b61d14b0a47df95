/**
 * A notebook's own BigMaac toggle: model, views and plugin.
 */

export * from './model';
export * from './plugin';
export * from './serverApi';
export * from './toggle';
export * from './widgets';
